"""List messages in process: one request through the whole app against the raw-SQL floor (issue 18).

    python bench/bench_list.py                                      # sqlite and postgres, this tree
    python bench/bench_list.py --compare-src /work/main/src         # this tree and another, same run
    python bench/bench_list.py --backends sqlite --rounds 5 --calls 500

Per round, per backend and per tree (interleaved, so load on the machine hits each alike), a child
process builds the app (`create_app`, its lifespan run, request log off, an API key set) over a fresh
database (SQLite file, or a PostgreSQL database of pgserver), seeds one thread of 1,000 messages, and
times, after a warm-up, `--calls` of:

- **app**: `GET /v1/threads/{id}/messages?limit=20` called as ASGI in process (middleware, auth,
  routing, service, SQL, JSON; no HTTP server, no socket);
- **raw floor**: what that request needs with the bare driver (sqlite3 / asyncpg) and orjson: the
  thread looked up by id and project, the page of 21 rows ordered by `coalesce(sort_key, id)` desc,
  JSON columns decoded, the list object encoded.

Both in the same process on the same database. Figures are wall µs per call (the loop is the only
work of the process; PostgreSQL waits count, as they do for a client); the table shows the median
over rounds and app/floor.
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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import API_KEY, add_compare_arg, database_urls, source_trees  # noqa: E402

SEED = 1000
LIMIT = 20
COLUMNS = (
    "id, thread_id, created_at, role, status, content, attachments, metadata, incomplete_details, "
    "completed_at, incomplete_at, assistant_id, run_id"
)
THREAD_COLUMNS = "id, project_id, created_at, tool_resources, metadata"
JSON_COLUMNS = ("content", "attachments", "metadata", "incomplete_details")
AIM_FLOOR_RATIO = 2.0


async def _call_app(app: Any, path: str, query: str) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {API_KEY}".encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "app": app,
    }
    status = 0
    body = bytearray()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            body.extend(message.get("body", b""))

    await app(scope, receive, send)
    return status, bytes(body)


def _row_json(row: Any) -> dict[str, Any]:
    import orjson

    out: dict[str, Any] = {}
    for name, value in zip(COLUMNS.split(", "), row, strict=True):
        out[name] = orjson.loads(value) if name in JSON_COLUMNS and value is not None else value
    out["object"] = "thread.message"
    return out


def _page_json(rows: list[Any]) -> bytes:
    import orjson

    data = [_row_json(r) for r in rows[:LIMIT]]
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(rows) > LIMIT,
        }
    )


def sqlite_floor(path: str, thread_id: str, project: str) -> Callable[[], Awaitable[bytes]]:
    import sqlite3

    conn = sqlite3.connect(path)
    thread_sql = f"SELECT {THREAD_COLUMNS} FROM threads WHERE id = ? AND project_id = ?"
    page_sql = (
        f"SELECT {COLUMNS} FROM messages WHERE thread_id = ? ORDER BY coalesce(sort_key, id) DESC LIMIT {LIMIT + 1}"
    )

    async def call() -> bytes:
        assert conn.execute(thread_sql, (thread_id, project)).fetchone() is not None
        return _page_json(conn.execute(page_sql, (thread_id,)).fetchall())

    return call


async def postgres_floor(url: str, thread_id: str, project: str) -> Callable[[], Awaitable[bytes]]:
    import asyncpg
    from sqlalchemy.engine import make_url

    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    for kind in ("json", "jsonb"):  # text, as SQLAlchemy's dialect reads them before decoding
        await conn.set_type_codec(kind, encoder=str, decoder=str, schema="pg_catalog", format="text")
    thread_sql = f"SELECT {THREAD_COLUMNS} FROM threads WHERE id = $1 AND project_id = $2"
    page_sql = (
        f"SELECT {COLUMNS} FROM messages WHERE thread_id = $1 ORDER BY coalesce(sort_key, id) DESC LIMIT {LIMIT + 1}"
    )
    thread_stmt = await conn.prepare(thread_sql)
    page_stmt = await conn.prepare(page_sql)

    async def call() -> bytes:
        assert await thread_stmt.fetchrow(thread_id, project) is not None
        return _page_json(await page_stmt.fetch(thread_id))

    return call


async def child(backend: str, url: str | None, calls: int, profile: bool = False) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(
            {
                "ASSISTD_DATA_DIR": tmp,
                "ASSISTD_API_KEYS": API_KEY,
                "ASSISTD_LOG_REQUESTS": "false",
                "ASSISTD_LOCAL_ENABLED": "false",
                "ASSISTD_CONSOLE_ENABLED": "false",
            }
        )
        if url is not None:
            os.environ["ASSISTD_DATABASE_URL"] = url
        from assistd.app import create_app
        from assistd.protocol.messages import MessageCreate
        from assistd.protocol.threads import ThreadCreate
        from assistd.settings import Settings

        settings = Settings()
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            services = app.state.services
            project = "proj_default"
            messages = [MessageCreate(role="user", content=f"message {i} " + "text " * 20) for i in range(SEED)]
            thread = await services.threads.create(project, ThreadCreate(messages=messages))
            path = f"/v1/threads/{thread.id}/messages"
            status, body = await _call_app(app, path, f"limit={LIMIT}")
            assert status == 200 and len(json.loads(body)["data"]) == LIMIT, body[:300]
            if backend == "sqlite":
                floor = sqlite_floor(str(Path(tmp) / "assistd.db"), thread.id, project)
            else:
                assert url is not None
                floor = await postgres_floor(url, thread.id, project)
            assert json.loads(await floor())["data"][0]["id"] == json.loads(body)["data"][0]["id"]

            async def app_call() -> Any:
                return await _call_app(app, path, f"limit={LIMIT}")

            timings: dict[str, float] = {}
            for name, call in (("app", app_call), ("floor", floor)):
                for _ in range(max(20, calls // 10)):
                    await call()
                batch: list[float] = []
                for _ in range(5):  # the median of 5 batches: a neighbour's burst spoils one, not the figure
                    started = time.perf_counter()
                    for _ in range(calls // 5):
                        await call()
                    batch.append((time.perf_counter() - started) / (calls // 5) * 1e6)
                timings[name] = statistics.median(batch)
            if profile:
                await _profile(app_call, calls)
            return timings


async def _profile(call: Callable[[], Awaitable[Any]], calls: int) -> None:
    """Where the app's time goes: the heaviest functions by own and cumulative time, µs per request, on stderr."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        await call()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(45)
    print(f"profile of {calls} requests (divide times by {calls}):", out.getvalue(), file=sys.stderr)


def run_child(env: dict[str, str], backend: str, url: str | None, calls: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", "--backend", backend, "--calls", str(calls)]
    if url is not None:
        command += ["--url", url]
    out = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=500)
    add_compare_arg(parser)
    parser.add_argument("--profile", action="store_true", help="profile this tree's app on the first backend")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.backend, args.url, args.calls, args.profile))))
        return
    if args.profile:  # one child of this tree, its profile shown
        backend = args.backends.split(",")[0]
        with database_urls(backend, 1) as urls:
            command = [sys.executable, __file__, "--child", "--profile", "--backend", backend]
            subprocess.run(command + ["--calls", str(args.calls)] + (["--url", urls[0]] if urls[0] else []))
        return
    trees = source_trees(args.compare_src)
    load = os.getloadavg()[0]
    print(f"load average {load:.1f}; {args.rounds} rounds x {args.calls} calls; wall µs per call (median of rounds)\n")
    for tree in trees:
        print(f"- {tree.label}")
    print("\n| backend | tree | app µs | raw floor µs | app / floor |")
    print("|---|---|---:|---:|---:|")
    for backend in args.backends.split(","):
        with database_urls(backend, len(trees) * args.rounds) as urls:
            samples: dict[str, list[dict[str, float]]] = {t.label: [] for t in trees}
            for r in range(args.rounds):
                order = trees if r % 2 == 0 else trees[::-1]
                for i, tree in enumerate(order):
                    url = urls[r * len(trees) + i]
                    samples[tree.label].append(run_child(tree.env, backend, url, args.calls))
            for tree in trees:
                app = statistics.median(s["app"] for s in samples[tree.label])
                floor = statistics.median(s["floor"] for s in samples[tree.label])
                name = tree.label.split(":")[0]
                print(f"| {backend} | {name} | {app:.0f} | {floor:.0f} | {app / floor:.2f} |")
    print(f"\naim: app / floor <= {AIM_FLOOR_RATIO}")


if __name__ == "__main__":
    main()
