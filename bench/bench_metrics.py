"""What a Prometheus scrape of GET /metrics costs, with many runs in the database (issue 15, item 6).

    python bench/bench_metrics.py                                 # 0 and 10,000 runs, sqlite and postgres
    python bench/bench_metrics.py --runs 0,10000,100000 --vacuum  # the table in docs/deployment.md#metrics

For each backend and run count: a real `assistd serve` (LiveServer) on a fresh SQLite file or
PostgreSQL database (pgserver), `--runs` rows inserted straight into `runs` (8 statuses, 20 models, 10 of them queued;
`--vacuum`: then VACUUM ANALYZE on PostgreSQL, as autovacuum would), then `--scrapes` sequential
GET /metrics after 3 warm-up scrapes. The table shows the scrape's wall time (p50, p95, from the
client) and the exposition's size. Since the gauges are
read from the database at each scrape, the 0-run row is the floor (process metrics, histograms).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from common import loadavg, pct

STATUSES = ["completed"] * 12 + ["failed", "cancelled", "expired", "incomplete", "requires_action", "in_progress"]
MODELS = [f"model-{i}" for i in range(20)]


async def insert_runs(database_url: str, count: int, vacuum: bool) -> None:
    from sqlalchemy import insert

    from assistd.db import tables as t
    from assistd.db.database import create_engine

    engine = create_engine(database_url, pool_size=1)
    now = int(time.time())
    rows = [
        {
            "id": f"run_{uuid.uuid4().hex}",
            "project_id": "proj_default",
            "thread_id": f"thread_{i % 500}",
            "assistant_id": "asst_bench",
            "created_at": now - i,
            "status": "queued" if i < 10 else STATUSES[i % len(STATUSES)],
            "model": MODELS[i % len(MODELS)],
            "tools": [],
            "metadata": {},
            "truncation_strategy": {"type": "auto", "last_messages": None},
            "tool_choice": "auto",
            "parallel_tool_calls": True,
            "response_format": "auto",
        }
        for i in range(count)
    ]
    async with engine.begin() as conn:
        for start in range(0, len(rows), 1000):
            await conn.execute(insert(t.runs), rows[start : start + 1000])
    if vacuum and not database_url.startswith("sqlite"):
        # What autovacuum does to a table in use: the visibility map lets the grouped count read the index alone.
        async with engine.connect() as conn:
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).exec_driver_sql("VACUUM ANALYZE runs")
    await engine.dispose()


def measure(url: str, scrapes: int) -> tuple[list[float], int]:
    times: list[float] = []
    size = 0
    with httpx.Client(timeout=60) as client:
        for i in range(scrapes + 3):
            started = time.perf_counter()
            response = client.get(f"{url}/metrics")
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            assert b"assistd_metrics_database_up 1.0" in response.content, response.text[:500]
            size = len(response.content)
            if i >= 3:
                times.append(elapsed)
    return times, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--runs", default="0,10000", help="comma-separated run counts")
    parser.add_argument("--scrapes", type=int, default=30)
    parser.add_argument("--vacuum", action="store_true", help="VACUUM ANALYZE runs after inserting (PostgreSQL)")
    args = parser.parse_args()

    from assistd.testing.server import LiveServer

    load_before = loadavg()
    postgres = None
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        try:
            for backend in args.backends.split(","):
                for runs in [int(n) for n in args.runs.split(",")]:
                    data_dir = Path(tmp) / f"{backend}-{runs}"
                    database_url = f"sqlite+aiosqlite:///{data_dir / 'assistd.db'}"
                    if backend == "postgres":
                        if postgres is None:
                            from assistd.testing.postgres import TestPostgres

                            postgres = TestPostgres()
                        database_url = postgres.new_database()
                    env = {"ASSISTD_LOCAL_ENABLED": "false", "ASSISTD_LOG_REQUESTS": "false"}
                    server = LiveServer(
                        data_dir, database_url=database_url if backend == "postgres" else None, env=env
                    ).start()
                    try:
                        asyncio.run(insert_runs(database_url, runs, args.vacuum))
                        times, size = measure(server.url, args.scrapes)
                    finally:
                        server.stop()
                    ms = [t * 1000 for t in times]
                    rows.append(f"| {backend} | {runs:,} | {pct(ms, 50):.1f} | {pct(ms, 95):.1f} | {size:,} |")
                    print(rows[-1], file=sys.stderr)
        finally:
            if postgres is not None:
                postgres.close()
    print(f"\nGET /metrics, {args.scrapes} sequential scrapes each (load {load_before[0]:.2f} -> {loadavg()[0]:.2f})\n")
    print("| backend | runs in the database | scrape p50 (ms) | scrape p95 (ms) | exposition bytes |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
