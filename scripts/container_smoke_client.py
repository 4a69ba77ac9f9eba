"""Drives a running assistd (the container of scripts/container_smoke.sh) with the openai SDK.

    python scripts/container_smoke_client.py --base-url http://127.0.0.1:18000/v1 --api-key KEY \
        [--expect "Hello from the fake upstream."] [--search]

Creates an assistant, a thread and a run and polls it to `completed` (with --expect, the reply must
be that text; without, any non-empty text: the bundled local model's), uploads a file and reads it
back, and with --search puts the file in a vector store, waits for its ingestion and searches it
(the bundled embedding model). Prints one line per check and exits non-zero at the first failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
import warnings

import openai

warnings.filterwarnings("ignore", category=DeprecationWarning)


def check(what: str, ok: bool, detail: object = "") -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {what}{': ' + str(detail) if detail != '' else ''}", flush=True)
    if not ok:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--expect", default=None, help="the exact reply text (fake upstream)")
    parser.add_argument("--search", action="store_true", help="also ingest the file and search it")
    parser.add_argument(
        "--code-interpreter",
        metavar="FAKE_UPSTREAM_URL",
        help="only run code_interpreter: script the fake upstream at this URL to call it, check the output",
    )
    args = parser.parse_args()
    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=120)

    if args.code_interpreter:
        code_interpreter(client, args.code_interpreter)
        return
    started = time.monotonic()
    assistant = client.beta.assistants.create(model="gpt-4o-mini", instructions="Answer in one short sentence.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Say hello."}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, timeout=300)
    check(
        "run completed",
        run.status == "completed",
        f"{run.status} {run.last_error or ''} in {time.monotonic() - started:.1f} s",
    )
    messages = client.beta.threads.messages.list(thread_id=thread.id, order="asc")
    reply = messages.data[-1]
    text = reply.content[0].text.value if reply.content and reply.content[0].type == "text" else ""
    check("assistant replied", reply.role == "assistant" and bool(text.strip()), repr(text[:80]))
    if args.expect is not None:
        check("reply is the scripted one", text == args.expect, repr(text))

    body = b"The container smoke test's file: the launch code is 7341.\n" * 50
    uploaded = client.files.create(file=("smoke.txt", body), purpose="user_data")
    check("file uploaded", uploaded.bytes == len(body), uploaded.id)
    content = client.files.content(uploaded.id).read()
    check("file downloaded intact", content == body, f"{len(content)} bytes")

    if args.search:
        store = client.vector_stores.create(name="smoke")
        vs_file = client.vector_stores.files.create_and_poll(vector_store_id=store.id, file_id=uploaded.id)
        check("file ingested", vs_file.status == "completed", f"{vs_file.status} {vs_file.last_error or ''}")
        results = client.vector_stores.search(vector_store_id=store.id, query="launch code")
        hits = list(results)
        check("search found it", bool(hits) and "7341" in hits[0].content[0].text, f"{len(hits)} hits")


def code_interpreter(client: openai.OpenAI, fake_upstream: str) -> None:
    """A run whose (scripted) model calls code_interpreter: the sandbox must run the code."""
    script = {
        "model": "gpt-4o-mini",
        "replies": [
            {
                "tool_calls": [
                    {"name": "code_interpreter", "arguments": {"code": "import os\nprint(6 * 7, os.getuid())"}}
                ]
            },
            {"text": "Done."},
        ],
    }
    request = urllib.request.Request(
        f"{fake_upstream.rstrip('/')}/_fake/script",
        data=json.dumps(script).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).close()
    assistant = client.beta.assistants.create(model="gpt-4o-mini", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Compute 6 * 7."}])
    started = time.monotonic()
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, timeout=300)
    check(
        "code_interpreter run completed",
        run.status == "completed",
        f"{run.status} {run.last_error.message if run.last_error else ''} in {time.monotonic() - started:.1f} s",
    )
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
    outputs = [
        output.logs
        for step in steps.data
        if step.step_details.type == "tool_calls"
        for call in step.step_details.tool_calls
        if call.type == "code_interpreter"
        for output in call.code_interpreter.outputs
        if output.type == "logs"
    ]
    check("the sandbox ran the code", any(log.startswith("42") for log in outputs), repr(outputs))


if __name__ == "__main__":
    main()
