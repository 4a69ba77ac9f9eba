"""Upstream chunk path benchmark: CPU per streamed token of the OpenAI-compatible provider alone.

    python bench/bench_provider.py [--streams 40] [--tokens 200] [--concurrent 1,50] [--repeat 3]
                                   [--compare-src /path/to/other/checkout/src]

Starts the scripted fake upstream (`python -m assistd.testing.fake_upstream`) as its own process, then
calls `OpenAICompatProvider.complete` in this process for `--streams` chat completions of `--tokens`
words each (no pacing: the fake writes as fast as it can), `--concurrent` of them at once, and reads
this process's CPU time (user+system, every thread) around them: CPU µs per token is the cost of
receiving, decoding and typing one chunk (the chunk as the engine gets it, `providers.base.Chunk`).
Each cell is measured `--repeat` times; the table shows the median.

With --compare-src DIR the same measurement runs in a child process importing assistd from DIR
(another checkout's src/, main's before a change), in turns with this tree's, against the same fake;
the table shows both and their ratio.

Results are printed as markdown and written to bench/results/provider-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runs import fake_call, fake_upstream_process  # noqa: E402
from common import (  # noqa: E402
    add_compare_arg,
    add_output_args,
    fmt,
    heading,
    loadavg,
    machine,
    ratio,
    result_head,
    settings,
    source_trees,
    versions,
    warn_if_loaded,
    write_result,
)

MODEL = "bench-provider"


async def measure(port: int, streams: int, tokens: int, concurrent: int) -> dict[str, Any]:
    """`streams` completions through the provider, `concurrent` at a time: CPU and wall per token."""
    from assistd.providers.base import ChatRequest
    from assistd.providers.openai_compat import OpenAICompatProvider

    text = " ".join(f"w{i}" for i in range(tokens))
    async with httpx.AsyncClient(timeout=60) as fake:
        response = await fake.post(
            f"http://127.0.0.1:{port}/_fake/script", json={"model": MODEL, "replies": [{"text": text}] * streams}
        )
        response.raise_for_status()
    provider = OpenAICompatProvider(
        "bench", base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-fake", context_window=8192, timeout=60
    )
    request = ChatRequest(model=MODEL, messages=[{"role": "user", "content": "Say the words."}])
    received = 0
    gate = asyncio.Semaphore(concurrent)

    async def one() -> None:
        nonlocal received
        async with gate:
            async for chunk in provider.complete(request):
                if chunk.text:
                    received += 1

    try:
        await one()  # warm-up: a connection, imports, first-call caches
        received = 0
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(streams - 1)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await provider.close()
    expected = (streams - 1) * tokens
    if received != expected:
        raise RuntimeError(f"received {received} tokens, expected {expected}")
    return {"tokens": received, "cpu_s": cpu, "wall_s": wall, "cpu_us_per_token": cpu / received * 1e6}


def child_main(args: argparse.Namespace) -> int:
    """One cell in this process (started by the parent, possibly with another tree's PYTHONPATH)."""
    found = asyncio.run(measure(args.port, args.streams, args.tokens, args.cell))
    import assistd

    found["assistd"] = assistd.__file__
    print(json.dumps(found))
    return 0


def run_cell(port: int, env: dict[str, str], args: argparse.Namespace, concurrent: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--port", str(port), "--cell", str(concurrent)]
    cmd += ["--streams", str(args.streams), "--tokens", str(args.tokens)]
    done = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child failed: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    trees = source_trees(args.compare_src)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="assistd-bench-provider-") as tmp, fake_upstream_process(Path(tmp)) as port:
        for concurrent in args.concurrent:
            samples: list[list[dict[str, Any]]] = [[] for _ in trees]
            for r in range(args.repeat):
                order = list(range(len(trees)))
                for i in order if r % 2 == 0 else order[::-1]:
                    print(f"{trees[i].label}: {concurrent} at once, round {r + 1} ...", file=sys.stderr, flush=True)
                    samples[i].append(run_cell(port, trees[i].env, args, concurrent))
                    asyncio.run(fake_call(port, "POST", "/_fake/reset", {}))
            for tree, found in zip(trees, samples, strict=True):
                rows.append(
                    {
                        "tree": tree.label,
                        "concurrent": concurrent,
                        "cpu_us_per_token": statistics.median(s["cpu_us_per_token"] for s in found),
                        "wall_s": statistics.median(s["wall_s"] for s in found),
                        "tokens": found[0]["tokens"],
                        "samples": found,
                    }
                )
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    out = [
        "\n| tree | streams at once | tokens | CPU µs / token (median) | wall s |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        out.append(
            f"| {row['tree']} | {row['concurrent']} | {row['tokens']} | {fmt(row['cpu_us_per_token'], 1)} "
            f"| {fmt(row['wall_s'], 3)} |"
        )
    this = {r["concurrent"]: r for r in rows if r["tree"].startswith("this")}
    other = {r["concurrent"]: r for r in rows if r["tree"].startswith("compare")}
    if other:
        out += ["\n| streams at once | CPU µs / token this / compare |", "|---:|---:|"]
        for concurrent, row in this.items():
            out.append(f"| {concurrent} | {ratio(row['cpu_us_per_token'], other[concurrent]['cpu_us_per_token'])} |")
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--streams", type=int, default=40, help="completions per cell (the first warms up)")
    parser.add_argument("--tokens", type=int, default=200, help="words per completion")
    parser.add_argument("--concurrent", default="1,50", help="comma-separated: completions at once")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per cell and tree")
    add_compare_arg(parser)
    add_output_args(parser, "provider")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cell", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.child:
        args.concurrent = [int(c) for c in args.concurrent.split(",") if c.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    started = time.time()
    load_before = loadavg()
    warn_if_loaded("bench_provider", load_before)
    rows = bench(args)
    result = {
        **result_head("provider", started, machine(load_before), versions(("assistd", "openai", "httpx", "orjson"))),
        "settings": settings(args, "child", "port", "cell"),
        "results": rows,
    }
    output = write_result(result, args.output, started)
    print(heading("upstream chunk path benchmark", result))
    print(render(rows))
    print(f"\nJSON: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
