"""What fitting a long thread's history costs in process: adapters/prompt.py `history` read from a real
database and fitted by engine/prompt.py `fit` (the 8,192-token default window, the upstream's default
counter: cl100k + 20 %), one call per model call, on threads of 10, 1,000 and 10,000 messages.

    PYTHONPATH=src python bench/bench_history_fit.py [--backends sqlite,postgres] [--lengths 10,1000,10000]
                                                     [--rounds 30] [--compare-src /path/to/main/src]

Per backend and source tree, one database seeded with one thread per length (the messages of
bench_runs.py), then per length a child process (PYTHONPATH = the tree) that fits the thread `--rounds`
times: `first` is the first call (it counts the messages, and a tree that keeps counts writes them;
the tokenizer is loaded before),
p50/p99 the calls after it. With --compare-src, each tree has its own database, seeded alike, and the
children take turns per length. Prints a markdown table; the ratio is this tree / the other.
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
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_backends_arg, add_compare_arg, database_urls, loadavg, parse_backends, pct, source_trees  # noqa: E402

CONTENT = "What is the weather like in Paris today? Please answer in one short sentence."
WINDOW = 8192
MARGIN = 0.2


async def seed(url: str, lengths: list[int]) -> None:
    from assistd.db import tables as t
    from assistd.db.database import create_engine
    from assistd.db.migrate import upgrade

    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            for n in lengths:
                rows = [
                    {
                        "id": f"msg_{n:06d}_{i:08d}",
                        "thread_id": f"thread_{n}",
                        "created_at": 1,
                        "role": "user" if i % 2 == 0 else "assistant",
                        "status": "completed",
                        "content": [{"type": "text", "text": {"value": f"{CONTENT} ({i})", "annotations": []}}],
                        "attachments": [],
                        "metadata": {},
                    }
                    for i in range(n)
                ]
                await conn.execute(t.messages.insert(), rows)
    finally:
        await engine.dispose()


async def child(url: str, length: int, rounds: int) -> dict[str, Any]:
    from assistd.adapters.prompt import history
    from assistd.db.database import Database
    from assistd.engine.items import Conversation, TurnSettings
    from assistd.engine.prompt import Window, fit
    from assistd.providers.counting import Tiktoken

    async def no_image(file_id: str) -> str | None:
        return None

    db = Database(url)
    try:
        run: Any = types.SimpleNamespace(thread_id=f"thread_{length}", id="run_bench")
        conversation = Conversation("", history(db, run, no_image), (), TurnSettings())
        window = Window("bench-model", WINDOW, 0, 0, [])
        counter = Tiktoken(MARGIN)
        await counter.messages([{"role": "user", "content": CONTENT}])  # the encoding loaded: not timed
        times = []
        sent = 0
        for _ in range(rounds + 1):
            started = time.perf_counter()
            prompt = await fit(conversation, window, counter)
            times.append((time.perf_counter() - started) * 1000)
            sent = len(prompt.request.messages)
        return {"sent": sent, "first": times[0], "p50": statistics.median(times[1:]), "p99": pct(times[1:], 99)}
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_backends_arg(parser, "sqlite")
    add_compare_arg(parser)
    parser.add_argument("--lengths", default="10,1000,10000")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--child", nargs=2, metavar=("URL", "LENGTH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child[0], int(args.child[1]), args.rounds))))
        return
    parse_backends(parser, args)
    lengths = [int(n) for n in args.lengths.split(",")]
    trees = source_trees(args.compare_src)
    print(f"load average before: {loadavg()}", file=sys.stderr)
    lines = [
        "| backend | thread msgs | prompt msgs | tree | first ms | p50 ms | p99 ms | p50 / other tree |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="assistd-bench-history-") as tmp:
        for backend in args.backends:
            with database_urls(backend, len(trees)) as urls:
                found_urls = [url or f"sqlite:///{Path(tmp) / f'{backend}-{i}.db'}" for i, url in enumerate(urls)]
                for url in found_urls:
                    asyncio.run(seed(url, lengths))
                for n in lengths:
                    results = []
                    for tree, url in zip(trees, found_urls, strict=True):
                        out = subprocess.run(
                            [sys.executable, __file__, "--child", url, str(n), "--rounds", str(args.rounds)],
                            env={**os.environ, **tree.env},
                            capture_output=True,
                            text=True,
                            check=True,
                        )
                        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
                    for i, (tree, found) in enumerate(zip(trees, results, strict=True)):
                        other = results[1 - i]["p50"] if len(results) == 2 else None
                        ratio = f"{found['p50'] / other:.2f}" if other else "—"
                        lines.append(
                            f"| {backend} | {n:,} | {found['sent']} | {tree.label} | {found['first']:.2f} | "
                            f"{found['p50']:.2f} | {found['p99']:.2f} | {ratio} |"
                        )
    print(f"load average after: {loadavg()}", file=sys.stderr)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
