"""Broken upstreams and Retry-After: how each run ends, with what last_error, after how many attempts.

    python bench/bench_upstream_faults.py [--attempts 3] [--mode poll|stream]

Starts the scripted fake upstream in this process and one `assistd serve` (SQLite) pointed at it with
ASSISTD_UPSTREAM_MAX_ATTEMPTS=--attempts. Each row scripts one fault (repeated on every attempt) or a
429/503 with Retry-After followed by a good answer, runs it through the official SDK, and prints the
run's final status, last_error, the attempts the fake saw, the wait between the first two attempts
and the run's wall time, as a markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import openai

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import LiveServer

TEXT = "The answer is forty two, as everybody knows."

CASES: list[tuple[str, list[Reply]]] = [
    ("no finish_reason, after text", [Reply(text=TEXT, fault="no_finish")]),
    ("no finish_reason, before text", [Reply(fault="no_finish")]),
    ("empty event stream", [Reply(fault="empty_stream")]),
    ("200 with an HTML body", [Reply(fault="not_json")]),
    ("an event that is not JSON", [Reply(fault="bad_event")]),
    ("connection cut before text", [Reply(text=TEXT, fault="cut_after", cut_after=0)]),
    ("connection cut after 3 words", [Reply(text=TEXT, fault="cut_after", cut_after=3)]),
    ("tool call cut mid-arguments", [Reply.call("get_weather", {"city": "Paris"}, fault="cut_after", cut_after=3)]),
    ("429 Retry-After: 1, then OK", [Reply.fail(429, retry_after="1"), Reply.say(TEXT)]),
    ("503 retry-after-ms: 1500, then OK", [Reply.fail(503, retry_after_ms="1500"), Reply.say(TEXT)]),
    ("429 Retry-After: 600 (past expiry)", [Reply.fail(429, retry_after="600"), Reply.say(TEXT)]),
]
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


def run_case(client: Any, fake: FakeUpstream, name: str, replies: list[Reply], attempts: int, mode: str) -> list[str]:
    model = f"bench-{abs(hash(name))}-{time.time_ns()}"
    # A fault repeats on every attempt; a Retry-After case is scripted as given.
    fake.script(model, *(replies * (attempts + 1) if len(replies) == 1 else replies))
    assistant = client.beta.assistants.create(model=model, tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "What is the answer?"}])
    started = time.monotonic()
    if mode == "poll":
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    else:
        try:
            with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
                stream.until_done()
        except openai.APIError:
            pass  # a failed run ends the stream with an error event
        (latest,) = client.beta.threads.runs.list(thread.id, limit=1)
        run = latest
    seconds = time.monotonic() - started
    times = fake.request_times(model)
    gap = f"{times[1] - times[0]:.2f}" if len(times) > 1 else "-"
    error = f"`{run.last_error.code}`: {run.last_error.message}" if run.last_error else "-"
    return [name, run.status, error, str(len(times)), gap, f"{seconds:.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=3)
    parser.add_argument("--mode", choices=["poll", "stream"], default="poll")
    args = parser.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's notice on every Assistants call
    with FakeUpstream() as fake, tempfile.TemporaryDirectory() as tmp:
        env = {
            "ASSISTD_UPSTREAM_BASE_URL": fake.base_url,
            "ASSISTD_UPSTREAM_MAX_ATTEMPTS": str(args.attempts),
            "ASSISTD_UPSTREAM_RETRY_BASE_SECONDS": "0.05",
            "ASSISTD_RUN_EXPIRES_SECONDS": "60",
            "ASSISTD_LOCAL_ENABLED": "false",
            "ASSISTD_LOG_REQUESTS": "false",
        }
        with LiveServer(Path(tmp), env=env) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="bench", max_retries=0)
            rows = [run_case(client, fake, name, replies, args.attempts, args.mode) for name, replies in CASES]
    print(f"ASSISTD_UPSTREAM_MAX_ATTEMPTS={args.attempts}, backoff base 0.05 s, run expiry 60 s, {args.mode}ed runs\n")
    print("| upstream | run status | last_error | attempts | 1st→2nd attempt (s) | run (s) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
