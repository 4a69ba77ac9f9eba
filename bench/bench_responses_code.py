"""Responses code_interpreter: what a response with a code cell costs, against an Assistants run's.

    python bench/bench_responses_code.py [--backends sqlite] [--samples 10]

Needs root and bubblewrap (the real sandbox) and the sandbox Python the tests build
(ASSISTD_TEST_SANDBOX_PYTHON). One `assistd serve` per backend on the fake upstream, whose model calls
code_interpreter with `print(1)` and then answers "ok". Non-streaming requests, request to answer (ms):

  response, new container   `container: {"type": "auto"}` without a chain: a new container, its
                            kernel started by the cell (no warm pool)
  response, chained         `auto` with previous_response_id: the chain's container, kernel running
  run, same thread          an Assistants run on a thread whose kernel is running (create + poll)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runs import MODEL, bench_backends, fake_call, new_client, post_json  # noqa: E402
from common import add_backends_arg, fmt, loadavg, machine, parse_backends, pct, warn_if_loaded  # noqa: E402

from assistd.testing.server import LiveServer  # noqa: E402

SANDBOX_PYTHON = Path(
    os.environ.get("ASSISTD_TEST_SANDBOX_PYTHON", Path.home() / ".cache" / "assistd-tests" / "sandbox-python")
)
CELL = [{"tool_calls": [{"name": "code_interpreter", "arguments": {"code": "print(1)"}}]}, {"text": "ok"}]
AUTO = [{"type": "code_interpreter", "container": {"type": "auto"}}]


async def script(fake_port: int, rounds: int) -> None:
    await fake_call(fake_port, "POST", "/_fake/script", {"model": MODEL, "replies": CELL * rounds})


async def response(client: httpx.AsyncClient, previous: str | None) -> tuple[float, dict[str, Any]]:
    body: dict[str, Any] = {"model": MODEL, "input": "Run it.", "tools": AUTO}
    if previous is not None:
        body["previous_response_id"] = previous
    start = time.perf_counter()
    made = await post_json(client, "/responses", body)
    assert made["status"] == "completed" and made["output"][0]["type"] == "code_interpreter_call", made
    return (time.perf_counter() - start) * 1000, made


async def run(client: httpx.AsyncClient, thread_id: str, assistant_id: str) -> float:
    start = time.perf_counter()
    made = await post_json(client, f"/threads/{thread_id}/runs", {"assistant_id": assistant_id})
    while made["status"] in ("queued", "in_progress"):
        await asyncio.sleep(0.01)
        made = (await client.get(f"/threads/{thread_id}/runs/{made['id']}")).json()
    assert made["status"] == "completed", made
    return (time.perf_counter() - start) * 1000


async def bench_backend(server: LiveServer, fake_port: int, backend: str, args: argparse.Namespace) -> dict[str, Any]:
    new: list[float] = []
    chained: list[float] = []
    runs: list[float] = []
    async with new_client(server.base_url) as client:
        await script(fake_port, args.samples * 3 + 1)
        previous = None
        for _ in range(args.samples):
            ms, _made = await response(client, None)
            new.append(ms)
        _, first = await response(client, None)
        previous = first["id"]
        for _ in range(args.samples):
            ms, made = await response(client, previous)
            chained.append(ms)
            previous = made["id"]
        assistant = await post_json(client, "/assistants", {"model": MODEL, "tools": [{"type": "code_interpreter"}]})
        thread = await post_json(client, "/threads", {})
        for i in range(args.samples + 1):
            await post_json(client, f"/threads/{thread['id']}/messages", {"role": "user", "content": "Run it."})
            ms = await run(client, thread["id"], assistant["id"])
            if i:  # the first starts the thread's kernel
                runs.append(ms)
    return {
        "backend": backend,
        **{
            name: {"p50": pct(v, 50), "p99": pct(v, 99)}
            for name, v in (("new", new), ("chained", chained), ("run", runs))
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_backends_arg(parser, "sqlite")
    parser.add_argument("--samples", type=int, default=10)
    args = parser.parse_args(argv)
    parse_backends(parser, args)
    os.environ.setdefault("ASSISTD_SANDBOX_PYTHON", str(SANDBOX_PYTHON))  # the servers inherit it
    os.environ.setdefault("ASSISTD_SANDBOX_POOL_SIZE", "0")  # every new container starts its kernel
    load_before = loadavg()
    warn_if_loaded("bench_responses_code", load_before)
    results = bench_backends("responses-code", bench_backend, args)
    print(f"\ncode_interpreter cell `print(1)`, non-streaming, {args.samples} samples (ms)\n")
    print("| backend | response, new container p50 / p99 | response, chained p50 / p99 | run, same thread p50 / p99 |")
    print("|---|---:|---:|---:|")
    for r in results:
        cells = " | ".join(f"{fmt(r[k]['p50'])} / {fmt(r[k]['p99'])}" for k in ("new", "chained", "run"))
        print(f"| {r['backend']} | {cells} |")
    print(f"\n{machine(load_before)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
