"""CPU per query embedding with onnxruntime's worker threads spinning (its default) or sleeping (assistd's).

    python bench/bench_embedding.py [--queries 40] [--gap 0.1] [--blocks 2] [--threads 0]

Each variant runs in a subprocess of its own (so one session's spinning threads do not bill the
other), in blocks taking turns (ABAB...). A subprocess loads MiniLMEmbedder(spinning=...), warms it
up, then embeds `--queries` short queries one at a time, sleeping `--gap` seconds after each, as a
server does between searches. Reported per variant (medians over blocks):

  wall ms     the median `embed_sync()` call
  CPU ms      the process's user+system time over the whole loop (gaps included: spinning happens
              after a call returns) divided by the queries
  ingest      one ingestion-sized batch (32 texts of ~250 wordpieces): wall s and CPU s

Results are printed as markdown and written to bench/results/embedding-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    add_output_args,
    fmt,
    heading,
    loadavg,
    machine,
    ratio,
    result_head,
    settings,
    versions,
    warn_if_loaded,
    write_result,
)

PACKAGES = ["onnxruntime", "numpy", "tokenizers"]
QUERY = "How do I rotate the API keys of a project without downtime?"
PASSAGE = (
    "The committee met on Tuesday to review the quarterly budget, the hiring plan and the travel policy. "
    "Several members asked for more detail about costs, and the report notes that the new process saved time. "
) * 5


def child(spinning: bool, queries: int, gap: float, threads: int) -> dict[str, Any]:
    from assistd.retrieval.embedding import MiniLMEmbedder

    embedder = MiniLMEmbedder(spinning=spinning, threads=threads or None)
    embedder.load()
    for _ in range(3):
        embedder.embed_sync([QUERY])
    time.sleep(gap)
    walls: list[float] = []
    cpu_started = time.process_time()
    for i in range(queries):
        started = time.perf_counter()
        embedder.embed_sync([f"{QUERY} {i}"])
        walls.append((time.perf_counter() - started) * 1000)
        time.sleep(gap)
    cpu_ms = (time.process_time() - cpu_started) * 1000 / queries
    started, cpu_started = time.perf_counter(), time.process_time()
    embedder.embed_sync([f"{i} {PASSAGE}" for i in range(32)])
    ingest_wall, ingest_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "wall_ms": statistics.median(walls),
        "cpu_ms": cpu_ms,
        "ingest_wall_s": ingest_wall,
        "ingest_cpu_s": ingest_cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--gap", type=float, default=0.1, help="seconds of idle after each query")
    parser.add_argument("--blocks", type=int, default=2, help="subprocesses per variant, taking turns")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: assistd's default)")
    parser.add_argument("--child", choices=["spin", "sleep"], help=argparse.SUPPRESS)
    add_output_args(parser, "embedding")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child == "spin", args.queries, args.gap, args.threads)))
        return 0
    load_before = loadavg()
    warn_if_loaded("bench_embedding", load_before)
    started = time.time()
    runs: dict[str, list[dict[str, Any]]] = {"sleep": [], "spin": []}
    for block in range(args.blocks):
        for variant in ("sleep", "spin") if block % 2 == 0 else ("spin", "sleep"):
            command = [sys.executable, __file__, "--child", variant, "--queries", str(args.queries)]
            command += ["--gap", str(args.gap), "--threads", str(args.threads)]
            out = subprocess.run(command, env=os.environ, capture_output=True, text=True, check=True).stdout
            runs[variant].append(json.loads(out.strip().splitlines()[-1]))
    medians = {v: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for v, rs in runs.items()}
    result = {
        **result_head("embedding", started, machine(load_before), versions(PACKAGES)),
        "settings": settings(args, "child"),
        "cpus": os.cpu_count(),
        "runs": runs,
        "medians": medians,
    }
    lines = [heading("query embedding CPU, onnxruntime spinning vs not", result), ""]
    lines.append("| workers | wall ms/query | CPU ms/query | CPU/wall | ingest batch wall s | ingest CPU s |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    for variant, label in (("spin", "spinning (onnxruntime default, before)"), ("sleep", "not spinning (now)")):
        m = medians[variant]
        lines.append(
            f"| {label} | {fmt(m['wall_ms'])} | {fmt(m['cpu_ms'])} | {ratio(m['cpu_ms'], m['wall_ms'])} "
            f"| {fmt(m['ingest_wall_s'])} | {fmt(m['ingest_cpu_s'])} |"
        )
    s, p = medians["sleep"], medians["spin"]
    lines.append("")
    lines.append(
        f"now/before: wall {ratio(s['wall_ms'], p['wall_ms'])}, CPU per query {ratio(s['cpu_ms'], p['cpu_ms'])}, "
        f"ingest wall {ratio(s['ingest_wall_s'], p['ingest_wall_s'])}, ingest CPU "
        f"{ratio(s['ingest_cpu_s'], p['ingest_cpu_s'])}; {args.queries} queries x {args.blocks} blocks, "
        f"gap {args.gap} s."
    )
    print("\n".join(lines))
    output = write_result(result, args.output, started)
    print(f"\nwritten to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
