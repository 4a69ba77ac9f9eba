"""Responses benchmark: a streamed response against a streamed run on the same fake upstream, and the
cost of a long `previous_response_id` chain.

    python bench/bench_responses.py [--backends sqlite] [--tokens 40] [--interval 0.01] [--samples 20]
                                    [--chain 100]

Per backend, one `assistd serve` pointed at the fake upstream (its own process), request log off:

  stream  `--samples` rounds of, interleaved: a streamed run (POST /threads/{id}/runs stream=true on a
          fresh one-message thread: request start to the first `thread.message.delta`, then the gaps
          between deltas) and a streamed response with the same input (POST /responses stream=true:
          to the first `response.output_text.delta`, then the gaps). The upstream streams `--tokens`
          words one every `--interval` seconds. Added = response - run, paired by round and token.
  chain   `--chain` responses, each continuing the one before (previous_response_id, non-streaming),
          then the time to create one more (p50 of 5 attempts, each on a copy of the chain's end).

Prints a markdown table and writes bench/results/responses-<time>.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runs import (  # noqa: E402
    CONTENT,
    MODEL,
    bench_backends,
    create_assistant,
    fake_call,
    new_client,
    post_json,
    stream_events,
)
from common import (  # noqa: E402
    add_backends_arg,
    add_output_args,
    fmt,
    loadavg,
    machine,
    parse_backends,
    result_head,
    summary,
    warn_if_loaded,
    write_result,
)

from assistd.testing.server import LiveServer  # noqa: E402


def reply_text(tokens: int) -> str:
    return " ".join(f"w{i}" for i in range(tokens))


async def script(fake_port: int, replies: list[dict[str, Any]]) -> None:
    await fake_call(fake_port, "POST", "/_fake/script", {"model": MODEL, "replies": replies})


async def streamed_run(client: httpx.AsyncClient, assistant_id: str) -> list[float]:
    thread = await post_json(client, "/threads", {"messages": [{"role": "user", "content": CONTENT}]})
    start = time.perf_counter()
    events = await stream_events(
        client, "POST", f"/threads/{thread['id']}/runs", {"assistant_id": assistant_id, "stream": True}
    )
    return [at - start for at, event, _ in events if event == "thread.message.delta"]


async def streamed_response(client: httpx.AsyncClient) -> list[float]:
    start = time.perf_counter()
    events = await stream_events(client, "POST", "/responses", {"model": MODEL, "input": CONTENT, "stream": True})
    return [at - start for at, event, _ in events if event == "response.output_text.delta"]


def gaps(tokens: list[float]) -> list[float]:
    return [(b - a) * 1000 for a, b in zip(tokens, tokens[1:], strict=False)]


async def stream_phase(client: httpx.AsyncClient, fake_port: int, args: argparse.Namespace) -> dict[str, Any]:
    assistant_id = await create_assistant(client)
    reply = {"text": reply_text(args.tokens), "interval": args.interval}
    await script(fake_port, [reply] * 4)
    for _ in range(2):  # warm-up
        await streamed_run(client, assistant_id)
        await streamed_response(client)
    ttft: dict[str, list[float]] = {"run": [], "response": [], "added": []}
    gap: dict[str, list[float]] = {"run": [], "response": [], "added": []}
    mismatch = 0
    for i in range(args.samples):
        await script(fake_port, [reply] * 2)
        if i % 2:  # alternate which goes first
            run = await streamed_run(client, assistant_id)
            response = await streamed_response(client)
        else:
            response = await streamed_response(client)
            run = await streamed_run(client, assistant_id)
        if len(run) != args.tokens or len(response) != args.tokens:
            mismatch += 1
            continue
        ttft["run"].append(run[0] * 1000)
        ttft["response"].append(response[0] * 1000)
        ttft["added"].append((response[0] - run[0]) * 1000)
        g_run, g_resp = gaps(run), gaps(response)
        gap["run"] += g_run
        gap["response"] += g_resp
        gap["added"] += [b - a for a, b in zip(g_run, g_resp, strict=False)]
    return {
        "mismatch": mismatch,
        "ttft_ms": {k: summary(v) for k, v in ttft.items()},
        "gap_ms": {k: summary(v) for k, v in gap.items()},
    }


async def chain_phase(client: httpx.AsyncClient, fake_port: int, args: argparse.Namespace) -> dict[str, Any]:
    await script(fake_port, [{"text": "ok"}] * (args.chain + 1))
    previous = None
    created: list[float] = []
    for i in range(args.chain):
        body: dict[str, Any] = {"model": MODEL, "input": f"{CONTENT} ({i})"}
        if previous is not None:
            body["previous_response_id"] = previous
        start = time.perf_counter()
        previous = (await post_json(client, "/responses", body))["id"]
        created.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    await post_json(client, "/responses", {"model": MODEL, "input": "one more", "previous_response_id": previous})
    last = (time.perf_counter() - start) * 1000
    return {"chain": args.chain, "first_ms": created[0], "tenth_ms": created[min(9, len(created) - 1)], "next_ms": last}


async def bench_backend(server: LiveServer, fake_port: int, backend: str, args: argparse.Namespace) -> dict[str, Any]:
    async with new_client(server.base_url) as client:
        stream = await stream_phase(client, fake_port, args)
        chain = await chain_phase(client, fake_port, args)
    return {"backend": backend, "stream": stream, "chain": chain}


def render(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"\nStreamed: {args.tokens} tokens, one every {args.interval * 1000:.0f} ms, {args.samples} pairs (ms)\n",
        "| backend | run TTFT p50 | response TTFT p50 | added p50 | added p99 | run gap p50 | response gap p50 "
        "| added gap p50 | added gap p99 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        t, g = r["stream"]["ttft_ms"], r["stream"]["gap_ms"]
        lines.append(
            f"| {r['backend']} | {fmt(t['run']['p50'])} | {fmt(t['response']['p50'])} | {fmt(t['added']['p50'])} "
            f"| {fmt(t['added']['p99'])} | {fmt(g['run']['p50'])} | {fmt(g['response']['p50'])} "
            f"| {fmt(g['added']['p50'])} | {fmt(g['added']['p99'])} |"
        )
    lines += [
        f"\nprevious_response_id chain (non-streaming create, ms; reply 'ok', {args.chain} responses)\n",
        "| backend | 1st | 10th | one more after the chain |",
        "|---|---:|---:|---:|",
    ]
    for r in results:
        c = r["chain"]
        lines.append(f"| {r['backend']} | {fmt(c['first_ms'])} | {fmt(c['tenth_ms'])} | {fmt(c['next_ms'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_backends_arg(parser, "sqlite")
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--chain", type=int, default=100)
    add_output_args(parser, "responses")
    args = parser.parse_args(argv)
    parse_backends(parser, args)
    started = time.time()
    load_before = loadavg()
    warn_if_loaded("bench_responses", load_before)
    results = bench_backends("responses", bench_backend, args)
    result = {**result_head("responses", started, machine(load_before), {}), "results": results}
    path = write_result(result, args.output, started)
    print(render(results, args))
    print(f"\n{machine(load_before)}\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
