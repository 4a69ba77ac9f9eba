"""Runs completed when the model gets its tool calls wrong (issue 14, item 3).

    python bench/bench_tool_repair.py [--runs 20] [--backends sqlite] [--compare-src /other/checkout/src]

The Investor Assistant flow (a `get_price` function the client runs) against the scripted fake
upstream playing an imperfect model, `--runs` times per fault, half polled and half streamed
(`runs.stream`, then `submit_tool_outputs_stream`):

  malformed-json      the call's arguments are not quite JSON (`{'ticker': 'AAPL',`)
  unknown-tool        the model first calls `get_stock`, which it was not offered, then `get_price`
  invalid-then-valid  the model first sends arguments that are no JSON at all, then good ones

then the answer. A run counts as completed when it ends `completed` and every call the client was
asked to run named an offered function with arguments that parse as a JSON object (a client cannot
answer anything else: such a run is cancelled and counted as `unanswerable`). With --compare-src,
each backend is measured on a server from this tree and one from the other tree (before/after).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
from common import add_compare_arg, database_urls, source_trees

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import LiveServer

PRICE = {
    "type": "function",
    "function": {
        "name": "get_price",
        "description": "The last price of a stock",
        "parameters": {"type": "object", "properties": {"ticker": {"type": "string"}}, "required": ["ticker"]},
    },
}
GOOD = {"ticker": "AAPL"}
ANSWER = Reply.say("AAPL last traded at 190.12.")
FAULTS: dict[str, list[Reply]] = {
    "malformed-json": [Reply.call("get_price", "{'ticker': 'AAPL',"), ANSWER],
    "unknown-tool": [Reply.call("get_stock", GOOD), Reply.call("get_price", GOOD), ANSWER],
    "invalid-then-valid": [Reply.call("get_price", "ticker: AAPL"), Reply.call("get_price", GOOD), ANSWER],
}


def answerable(run: Any) -> dict[str, str] | None:
    """The outputs a client would submit, or None when it cannot run a call it was given."""
    outputs = {}
    for call in run.required_action.submit_tool_outputs.tool_calls:
        if call.function.name != "get_price":
            return None
        try:
            arguments = json.loads(call.function.arguments)
        except ValueError:
            return None
        if not isinstance(arguments, dict):
            return None
        outputs[call.id] = json.dumps({"ticker": arguments.get("ticker"), "price": 190.12})
    return outputs


def streamed(client: openai.OpenAI, thread_id: str, assistant_id: str) -> Any:
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id) as stream:
        stream.until_done()
        return stream.get_final_run()


def one_run(client: openai.OpenAI, fake: FakeUpstream, fault: str, stream: bool) -> tuple[str, int]:
    """How the run ended (`completed`, `unanswerable`, or `failed: <last_error>`), and its model calls."""
    model = f"bench-{uuid.uuid4().hex[:8]}"
    fake.script(model, *FAULTS[fault])
    assistant = client.beta.assistants.create(model=model, instructions="You quote prices.", tools=[PRICE])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "What is Apple trading at?"}])
    runs = client.beta.threads.runs
    if stream:
        try:
            run = streamed(client, thread.id, assistant.id)
        except openai.APIError:  # the SDK raises on thread.run.failed: read the run back
            run = runs.list(thread_id=thread.id).data[0]
    else:
        run = runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    while run.status == "requires_action":
        outputs = answerable(run)
        if outputs is None:
            runs.cancel(run.id, thread_id=thread.id)
            return "unanswerable", len(fake.requests(model))
        tool_outputs: Any = [{"tool_call_id": k, "output": v} for k, v in outputs.items()]
        if stream:
            with (
                contextlib.suppress(openai.APIError),  # raised on thread.run.failed
                runs.submit_tool_outputs_stream(
                    run_id=run.id, thread_id=thread.id, tool_outputs=tool_outputs
                ) as events,
            ):
                events.until_done()
            run = runs.retrieve(run.id, thread_id=thread.id)
        else:
            run = runs.submit_tool_outputs_and_poll(
                run_id=run.id, thread_id=thread.id, tool_outputs=tool_outputs, poll_interval_ms=50
            )
    calls = len(fake.requests(model))
    if run.status == "failed":
        return f"failed: {run.last_error.message}", calls
    return run.status, calls


@contextlib.contextmanager
def server(tmp: Path, backend: str, url: str | None, env: dict[str, str], fake: FakeUpstream) -> Iterator[LiveServer]:
    settings = {"ASSISTD_UPSTREAM_BASE_URL": fake.base_url, "ASSISTD_UPSTREAM_API_KEY": "sk-fake", **env}
    with LiveServer(tmp / backend, database_url=url, env=settings) as live:
        yield live


def measure(live: LiveServer, fake: FakeUpstream, runs: int) -> dict[str, dict[str, Any]]:
    client = openai.OpenAI(base_url=live.base_url, api_key="x", max_retries=0)
    found: dict[str, dict[str, Any]] = {}
    for fault in FAULTS:
        ends: dict[str, int] = {}
        calls = 0
        for i in range(runs):
            end, made = one_run(client, fake, fault, stream=i % 2 == 1)
            ends[end] = ends.get(end, 0) + 1
            calls += made
        found[fault] = {"runs": runs, "ends": ends, "model_calls": calls}
    client.close()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="runs per fault (half polled, half streamed)")
    parser.add_argument("--backends", default="sqlite", help="comma-separated: sqlite,postgres")
    add_compare_arg(parser)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's, on every Assistants call
    trees = source_trees(args.compare_src)
    rows = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="assistd-bench-repair-") as tmp, FakeUpstream() as fake:
        for backend in args.backends.split(","):
            with database_urls(backend, len(trees)) as urls:
                for i, tree in enumerate(trees):
                    with server(Path(tmp) / str(i), backend, urls[i], tree.env, fake) as live:
                        for fault, result in measure(live, fake, args.runs).items():
                            rows.append((backend, tree.label, fault, result))
    print(f"\n## Imperfect tool calls: runs completed ({args.runs} per fault, {time.monotonic() - started:.0f} s)\n")
    print("| backend | tree | fault | runs | completed | unanswerable | failed | model calls |")
    print("|---|---|---|---|---|---|---|---|")
    for backend, label, fault, result in rows:
        ends = result["ends"]
        failed = sum(n for end, n in ends.items() if end.startswith("failed"))
        print(
            f"| {backend} | {label} | {fault} | {result['runs']} | {ends.get('completed', 0)} | "
            f"{ends.get('unanswerable', 0)} | {failed} | {result['model_calls']} |"
        )
    reasons = sorted({end for *_, result in rows for end in result["ends"] if end.startswith("failed")})
    for reason in reasons:
        print(f"\n- {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
