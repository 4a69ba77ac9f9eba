"""Requests lost to HTTP keep-alive: streamed runs over reused connections, per server keep-alive.

    python bench/bench_keep_alive.py                       # keep-alive 5 s (uvicorn's default) and 75 s
    python bench/bench_keep_alive.py --keep-alive 5,75 --runs 200 --concurrency 20 --clients sdk,raw

For each keep-alive value it starts a real `assistd serve` (SQLite, the scripted fake upstream) with
ASSISTD_KEEP_ALIVE_SECONDS set; `--concurrency` threads then run `--runs` streamed runs between them
(`POST /v1/threads/runs`, stream true), pausing a random `--pause-min`..`--pause-max` seconds after
each, with one of two clients:

- `sdk`: one shared openai SDK client, `max_retries=0` (a retry would hide a lost request). Its httpx
  pool drops connections idle for 5 s and checks that a pooled connection is still open before
  reusing it, so it loses a request only in the instant the server closes one it is about to reuse.
- `raw`: a persistent `http.client` connection per thread, reused whatever its idle time, as clients
  and proxies with longer idle timeouts do (Node's agents, nginx upstream keepalive: 60 s).

A run is lost when the client raises or the stream ends without `thread.run.completed`.
Prints one table row per client and keep-alive value.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from openai import OpenAI

from assistd.testing.fake_upstream import FakeUpstream
from assistd.testing.server import LiveServer


def _raw_run(conn: http.client.HTTPConnection, assistant_id: str) -> list[str]:
    body = json.dumps(
        {"assistant_id": assistant_id, "thread": {"messages": [{"role": "user", "content": "hi"}]}, "stream": True}
    )
    headers = {"Content-Type": "application/json", "Authorization": "Bearer x", "OpenAI-Beta": "assistants=v2"}
    conn.request("POST", "/v1/threads/runs", body=body, headers=headers)
    response = conn.getresponse()
    text = response.read().decode()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}")
    return [line[len("event: ") :] for line in text.splitlines() if line.startswith("event: ")]


def burst(
    base_url: str, port: int, client_kind: str, runs: int, concurrency: int, pause: tuple[float, float]
) -> tuple[int, Counter[str], float]:
    client = OpenAI(base_url=base_url, api_key="x", max_retries=0)
    assistant = client.beta.assistants.create(model="bench-keep-alive")
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    share = [runs // concurrency + (1 if i < runs % concurrency else 0) for i in range(concurrency)]

    def work(index: int) -> None:
        rng = random.Random(index)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(share[index]):
            try:
                if client_kind == "raw":
                    events = _raw_run(conn, assistant.id)
                else:
                    stream = client.beta.threads.create_and_run(
                        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "hi"}]}, stream=True
                    )
                    events = [e.event for e in stream]
                if "thread.run.completed" not in events:
                    raise RuntimeError("stream ended without thread.run.completed")
            except Exception as exc:
                conn.close()  # the next request opens a new connection
                with lock:
                    errors[f"{type(exc).__name__}: {str(exc)[:60]}"] += 1
            time.sleep(rng.uniform(*pause))
        conn.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(work, range(concurrency)))
    return sum(errors.values()), errors, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep-alive", default="5,75", help="server keep-alive values (seconds), comma-separated")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--clients", default="sdk,raw", help="sdk, raw or both (see above)")
    parser.add_argument("--pause-min", type=float, default=4.5)
    parser.add_argument("--pause-max", type=float, default=6.0)
    args = parser.parse_args()
    rows = []
    with FakeUpstream() as fake, tempfile.TemporaryDirectory() as tmp:
        for value in [int(v) for v in args.keep_alive.split(",")]:
            env = {
                "ASSISTD_UPSTREAM_BASE_URL": fake.base_url,
                "ASSISTD_LOCAL_ENABLED": "false",
                "ASSISTD_LOG_REQUESTS": "false",
                "ASSISTD_POLL_AFTER_MS": "20",
                "ASSISTD_KEEP_ALIVE_SECONDS": str(value),
            }
            with LiveServer(Path(tmp) / f"ka-{value}", env=env) as server:
                for kind in args.clients.split(","):
                    pause = (args.pause_min, args.pause_max)
                    n, workers = args.runs, args.concurrency
                    lost, errors, seconds = burst(server.base_url, server.port, kind, n, workers, pause)
                    rows.append((kind, value, lost, errors, seconds))
                    print(
                        f"{kind} client, keep-alive {value} s: {lost} of {args.runs} lost ({seconds:.0f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
    print(
        f"\n{args.runs} streamed runs from {args.concurrency} threads, pauses {args.pause_min}-{args.pause_max} s "
        "between runs\n"
    )
    print("| client | server keep-alive | runs | lost | errors | seconds |")
    print("|---|---:|---:|---:|---|---:|")
    for kind, value, lost, errors, seconds in rows:
        shown = "; ".join(f"{n}x {e}" for e, n in errors.most_common(2)) or "-"
        print(f"| {kind} | {value} s | {args.runs} | {lost} | {shown} | {seconds:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
