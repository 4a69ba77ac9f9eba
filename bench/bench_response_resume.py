"""Resumable background responses: what keeping a background response's stream events costs, and how
fast a finished one replays.

    python bench/bench_response_resume.py [--backends sqlite] [--tokens 40] [--interval 0.01] [--samples 10]

Per backend, one `assistd serve` pointed at the fake upstream (its own process):

  stream  `--samples` rounds of, interleaved: a streamed response (POST /responses stream=true) and the
          same with background=true (its events also written to `response_events`, batched): request
          start to the first `response.output_text.delta`, then the gaps between deltas. The upstream
          streams `--tokens` words one every `--interval` seconds. Added = background - plain.
  replay  per round, once the background response ended: GET /responses/{id}?stream=true (all its
          events from the database) to the final event, and the same with starting_after at its middle.

Prints a markdown table and writes bench/results/response-resume-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_responses import gaps, reply_text, script  # noqa: E402
from bench_runs import CONTENT, MODEL, bench_backends, new_client, stream_events  # noqa: E402
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


async def streamed(client: httpx.AsyncClient, background: bool) -> tuple[list[float], str, int]:
    """(token times, the response id, how many events) of one streamed response."""
    body = {"model": MODEL, "input": CONTENT, "stream": True, "background": background}
    start = time.perf_counter()
    events = await stream_events(client, "POST", "/responses", body)
    tokens = [at - start for at, event, _ in events if event == "response.output_text.delta"]
    first = json.loads(next(data for _, event, data in events if event == "response.created"))
    return tokens, str(first["response"]["id"]), len(events)


async def replay(client: httpx.AsyncClient, response_id: str, after: int | None) -> tuple[float, int]:
    query = "stream=true" + ("" if after is None else f"&starting_after={after}")
    start = time.perf_counter()
    events = await stream_events(client, "GET", f"/responses/{response_id}?{query}", {})
    return (time.perf_counter() - start) * 1000, len(events)


async def bench_backend(server: LiveServer, fake_port: int, backend: str, args: argparse.Namespace) -> dict[str, Any]:
    reply = {"text": reply_text(args.tokens), "interval": args.interval}
    ttft: dict[str, list[float]] = {"plain": [], "background": [], "added": []}
    gap: dict[str, list[float]] = {"plain": [], "background": [], "added": []}
    full: list[float] = []
    half: list[float] = []
    mismatch = 0
    async with new_client(server.base_url) as client:
        await script(fake_port, [reply] * 2)
        await streamed(client, False)  # warm-up
        await streamed(client, True)
        for i in range(args.samples):
            await script(fake_port, [reply] * 2)
            if i % 2:
                plain, _, _ = await streamed(client, False)
                kept, response_id, count = await streamed(client, True)
            else:
                kept, response_id, count = await streamed(client, True)
                plain, _, _ = await streamed(client, False)
            if len(plain) != args.tokens or len(kept) != args.tokens:
                mismatch += 1
                continue
            ttft["plain"].append(plain[0] * 1000)
            ttft["background"].append(kept[0] * 1000)
            ttft["added"].append((kept[0] - plain[0]) * 1000)
            g_plain, g_kept = gaps(plain), gaps(kept)
            gap["plain"] += g_plain
            gap["background"] += g_kept
            gap["added"] += [b - a for a, b in zip(g_plain, g_kept, strict=False)]
            took, replayed = await replay(client, response_id, None)
            if replayed != count:
                mismatch += 1
            full.append(took)
            half.append((await replay(client, response_id, count // 2))[0])
    return {
        "backend": backend,
        "mismatch": mismatch,
        "events": count,
        "ttft_ms": {k: summary(v) for k, v in ttft.items()},
        "gap_ms": {k: summary(v) for k, v in gap.items()},
        "replay_ms": summary(full),
        "replay_half_ms": summary(half),
    }


def render(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"\nStreamed responses: {args.tokens} tokens, one every {args.interval * 1000:.0f} ms, "
        f"{args.samples} pairs (ms)\n",
        "| backend | plain TTFT p50 | background TTFT p50 | added p50 | plain gap p50 | background gap p50 "
        "| added gap p50 | added gap p99 | replay all p50 | replay from middle p50 | events | mismatches |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        t, g = r["ttft_ms"], r["gap_ms"]
        lines.append(
            f"| {r['backend']} | {fmt(t['plain']['p50'])} | {fmt(t['background']['p50'])} | {fmt(t['added']['p50'])} "
            f"| {fmt(g['plain']['p50'])} | {fmt(g['background']['p50'])} | {fmt(g['added']['p50'])} "
            f"| {fmt(g['added']['p99'])} | {fmt(r['replay_ms']['p50'])} | {fmt(r['replay_half_ms']['p50'])} "
            f"| {r['events']} | {r['mismatch']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_backends_arg(parser, "sqlite")
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--samples", type=int, default=10)
    add_output_args(parser, "response-resume")
    args = parser.parse_args(argv)
    parse_backends(parser, args)
    started = time.time()
    load_before = loadavg()
    warn_if_loaded("bench_response_resume", load_before)
    results = bench_backends("response-resume", bench_backend, args)
    result = {**result_head("response-resume", started, machine(load_before), {}), "results": results}
    path = write_result(result, args.output, started)
    print(render(results, args))
    print(f"\n{machine(load_before)}\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
