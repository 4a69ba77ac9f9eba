"""Listing a 1,000-message thread as conversation items vs as thread messages: latency per request.

    python bench/bench_conversations.py                       # sqlite and postgres, 300 requests per cell
    python bench/bench_conversations.py --backends sqlite --requests 100

One assistd per backend (a real `assistd serve`, its own SQLite file or PostgreSQL database); one
thread of 1,000 user messages made through POST /v1/conversations/{id}/items (20 at a time). Then,
sequentially on one keep-alive connection and interleaved request by request (so drift hits both
alike), `GET /v1/threads/{id}/messages` and `GET /v1/conversations/{id}/items`, at limit 20 and 100,
from the newest and from a cursor in the middle. Prints one table per backend: p50 and p99 in ms
and the items/messages ratio of the p50s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import API_KEY, database_urls, fmt, loadavg, pct, warn_if_loaded

from assistd.testing.server import LiveServer

MESSAGES = 1000


def seed(http: httpx.Client) -> tuple[str, list[str]]:
    conv = http.post("/conversations", json={}).raise_for_status().json()
    ids: list[str] = []
    for start in range(0, MESSAGES, 20):
        items = [{"role": "user", "content": f"message {n}: " + "words " * 20} for n in range(start, start + 20)]
        page = http.post(f"/conversations/{conv['id']}/items", json={"items": items}).raise_for_status().json()
        ids += [item["id"] for item in page["data"]]
    return conv["id"], ids


def measure(backend: str, requests: int) -> list[tuple[str, float, float, float, float]]:
    with tempfile.TemporaryDirectory() as tmp, database_urls(backend, 1) as (url,):
        server = LiveServer(Path(tmp), database_url=url, env={"ASSISTD_API_KEYS": API_KEY}).start()
        try:
            headers = {"Authorization": f"Bearer {API_KEY}"}
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
                thread_id, ids = seed(http)
                middle = ids[len(ids) // 2]
                cases = [
                    ("newest 20", {"limit": 20}),
                    ("newest 100", {"limit": 100}),
                    ("20 after a cursor mid-thread", {"limit": 20, "after": middle}),
                ]
                rows = []
                for label, query in cases:
                    times: dict[str, list[float]] = {"messages": [], "items": []}
                    paths = {"messages": f"/threads/{thread_id}/messages", "items": f"/conversations/{thread_id}/items"}
                    for path in paths.values():  # warm up
                        for _ in range(10):
                            http.get(path, params=query).raise_for_status()
                    for _ in range(requests):
                        for name, path in paths.items():
                            began = time.perf_counter()
                            response = http.get(path, params=query)
                            times[name].append((time.perf_counter() - began) * 1000)
                            assert response.status_code == 200 and len(response.json()["data"]) == query["limit"]
                    m, i = times["messages"], times["items"]
                    rows.append((label, pct(m, 50), pct(m, 99), pct(i, 50), pct(i, 99)))
                return rows
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    warn_if_loaded("bench_conversations", loadavg())
    for backend in args.backends.split(","):
        rows = measure(backend, args.requests)
        print(f"\n{backend}: {MESSAGES}-message thread, {args.requests} requests per cell, load {loadavg()[0]:.2f}\n")
        print("| list | messages p50 ms | messages p99 ms | items p50 ms | items p99 ms | items/messages p50 |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, mp50, mp99, ip50, ip99 in rows:
            print(f"| {label} | {fmt(mp50)} | {fmt(mp99)} | {fmt(ip50)} | {fmt(ip99)} | {fmt(ip50 / mp50)} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
