"""Run path benchmark: SQL statements, write transactions and server CPU per one-step run, and per run retrieve.

    python bench/bench_run_path.py [--backends sqlite,postgres] [--runs 60] [--retrieves 1500] [--rounds 3]
                                   [--compare-src /path/to/other/checkout/src]

Each measurement runs the real app in a child process (ASGI in process, no HTTP server: what is measured
is the app's own work), against the scripted fake upstream in a process of its own:

  statements   a streamed run (POST stream=true to its lease handed back), a polled run (POST to its lease
               handed back) and a run retrieve, counted on the database connection: SQLite's trace callback
               sees every statement however it is sent; on PostgreSQL SQLAlchemy's cursor events plus the
               compiled reads (`Database.reader()`); transactions are the COMMITs.
  CPU          the child's CPU time (`time.process_time`, the ASGI client's work included, the fake's not)
               per streamed run, per polled run (created, then retrieved until completed), per retrieve.

With --compare-src DIR, every child runs once per source tree, the trees taking turns within each round
(AB, BA, ...), so that other load on the machine weighs on both alike; the table gives the median over the
rounds and the ratio this/compare. Results are printed as markdown and written to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    add_backends_arg,
    add_compare_arg,
    add_output_args,
    database_urls,
    heading,
    loadavg,
    machine,
    parse_backends,
    ratio,
    result_head,
    settings,
    source_trees,
    versions,
    warn_if_loaded,
    write_result,
)

KEY = "sk-bench-0123456789abcdef0123456789abcdef"
MODEL = "run-path-model"
FIGURES = (
    ("stream_statements", "statements / streamed run", 0),
    ("stream_commits", "write transactions / streamed run", 0),
    ("poll_statements", "statements / polled run (no retrieves)", 0),
    ("poll_commits", "write transactions / polled run", 0),
    ("retrieve_statements", "statements / retrieve", 0),
    ("stream_cpu_ms", "CPU ms / streamed run", 2),
    ("poll_cpu_ms", "CPU ms / polled run", 2),
    ("retrieve_cpu_us", "CPU µs / retrieve", 0),
)


# --- the child: one app, measured in process -----------------------------------------------------


class Counter:
    def __init__(self) -> None:
        self.on = False
        self.statements = 0
        self.commits = 0

    def start(self) -> None:
        self.on, self.statements, self.commits = True, 0, 0

    def stop(self) -> tuple[int, int]:
        self.on = False
        return self.statements, self.commits

    def sqlite(self, statement: str) -> None:
        if not self.on:
            return
        word = statement.lstrip().split(" ", 1)[0].upper()
        if word == "COMMIT":
            self.commits += 1
        elif word not in ("BEGIN", "ROLLBACK"):
            self.statements += 1


def install(counter: Counter, postgres: bool) -> None:
    from sqlalchemy import Engine, event

    import assistd.db.database as database

    if not postgres:

        def connect(dbapi_conn: Any, _record: Any) -> None:
            if isinstance(dbapi_conn, sqlite3.Connection):
                dbapi_conn.set_trace_callback(counter.sqlite)

        event.listen(Engine, "connect", connect)
        return

    def before(*_: Any) -> None:
        if counter.on:
            counter.statements += 1

    def commit(*_: Any) -> None:
        if counter.on:
            counter.commits += 1

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "commit", commit)
    reader = getattr(database, "_AsyncpgReader", None)
    if reader is not None:  # compiled reads go to the driver itself
        fetch = reader.fetch

        async def counted(self: Any, prepared: Any, values: Any) -> Any:
            if counter.on:
                counter.statements += 1
            return await fetch(self, prepared, values)

        reader.fetch = counted


async def child(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    counter = Counter()
    install(counter, args.database_url is not None)
    from assistd.app import create_app
    from assistd.settings import Settings

    app = create_app(Settings())
    result: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        worker = app.state.services.worker
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://t/v1", headers=headers) as client:
            assistant = (await client.post("/assistants", json={"model": MODEL})).json()["id"]

            async def thread() -> str:
                body = {"messages": [{"role": "user", "content": "What is the weather in Paris?"}] * 10}
                return str((await client.post("/threads", json=body)).json()["id"])

            fake = httpx.AsyncClient(base_url=os.environ["ASSISTD_UPSTREAM_BASE_URL"].removesuffix("/v1"))

            async def model_calls() -> int:
                return len((await fake.get("/_fake/requests")).json())

            async def idle(calls: int | None = None) -> None:
                """Until the fake saw `calls` requests (the run's model call was made) and the worker executes
                nothing: no database statement is made to find out."""
                deadline = time.monotonic() + 60
                while (calls is not None and await model_calls() < calls) or worker.jobs.running():
                    if time.monotonic() > deadline:
                        raise RuntimeError("a run did not end")
                    await asyncio.sleep(0.005)

            async def streamed(thread_id: str) -> None:
                body = {"assistant_id": assistant, "stream": True}
                response = await client.post(f"/threads/{thread_id}/runs", json=body)
                if "thread.run.completed" not in response.text:
                    raise RuntimeError(response.text[-500:])
                await idle()

            async def polled(thread_id: str) -> dict[str, Any]:
                run = (await client.post(f"/threads/{thread_id}/runs", json={"assistant_id": assistant})).json()
                while run["status"] in ("queued", "in_progress"):
                    await asyncio.sleep(0.001)
                    run = (await client.get(f"/threads/{thread_id}/runs/{run['id']}")).json()
                if run["status"] != "completed":
                    raise RuntimeError(f"run ended {run['status']}")
                await idle()
                return dict(run)

            for _ in range(5):  # warm-up: caches, compiled statements, pools
                await streamed(await thread())
                await polled(await thread())

            # statements: one run each, nothing else going on (the worker's poll is an hour away)
            thread_id = await thread()
            await asyncio.sleep(0.2)
            counter.start()
            await streamed(thread_id)
            await asyncio.sleep(0.2)
            result["stream_statements"], result["stream_commits"] = counter.stop()
            thread_id = await thread()
            await asyncio.sleep(0.2)
            calls = await model_calls()
            counter.start()
            run = (await client.post(f"/threads/{thread_id}/runs", json={"assistant_id": assistant})).json()
            await idle(calls + 1)
            await asyncio.sleep(0.2)
            result["poll_statements"], result["poll_commits"] = counter.stop()
            counter.start()
            await client.get(f"/threads/{thread_id}/runs/{run['id']}")
            result["retrieve_statements"], _ = counter.stop()

            threads = [await thread() for _ in range(args.runs)]
            cpu = time.process_time()
            for thread_id in threads:
                await streamed(thread_id)
            result["stream_cpu_ms"] = (time.process_time() - cpu) * 1000 / args.runs
            threads = [await thread() for _ in range(args.runs)]
            cpu = time.process_time()
            for thread_id in threads:
                await polled(thread_id)
            result["poll_cpu_ms"] = (time.process_time() - cpu) * 1000 / args.runs
            path = f"/threads/{run['thread_id']}/runs/{run['id']}"
            cpu = time.process_time()
            for _ in range(args.retrieves):
                await client.get(path)
            result["retrieve_cpu_us"] = (time.process_time() - cpu) * 1e6 / args.retrieves
            await fake.aclose()
    return result


def count_poll_statements_note() -> str:
    return (
        "a polled run's statements are those of its creation and of its execution to its lease handed back, "
        "without retrieves (one retrieve is counted on its own); CPU includes the in-process ASGI client"
    )


# --- the parent: trees, backends, rounds ---------------------------------------------------------


def run_child(tree_env: dict[str, str], backend: str, url: str | None, fake_port: int, args: argparse.Namespace) -> Any:
    with tempfile.TemporaryDirectory(prefix="assistd-bench-runpath-") as tmp:
        env = {
            **os.environ,
            **tree_env,
            "ASSISTD_DATA_DIR": tmp,
            "ASSISTD_API_KEYS": KEY,
            "ASSISTD_KEY_CACHE_SECONDS": "3600",
            "ASSISTD_LOCAL_ENABLED": "false",
            "ASSISTD_LOG_REQUESTS": "false",
            "ASSISTD_UPSTREAM_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
            "ASSISTD_UPSTREAM_API_KEY": "sk-fake",
            "ASSISTD_WORKER_POLL_SECONDS": "3600",
            "ASSISTD_LEASE_SECONDS": "3600",
            "ASSISTD_SANDBOX_POOL_SIZE": "0",
        }
        env.pop("ASSISTD_DATABASE_URL", None)
        if url is not None:
            env["ASSISTD_DATABASE_URL"] = url
        command = [sys.executable, __file__, "--child", "--runs", str(args.runs), "--retrieves", str(args.retrieves)]
        if url is not None:
            command += ["--database-url", url]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise RuntimeError(f"{backend} child failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_backends_arg(parser, "sqlite,postgres")
    parser.add_argument("--runs", type=int, default=60, help="runs per CPU figure (streamed, then polled)")
    parser.add_argument("--retrieves", type=int, default=1500, help="retrieves for the CPU figure")
    parser.add_argument("--rounds", type=int, default=3, help="children per tree and backend (median taken)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default=None, help=argparse.SUPPRESS)
    add_compare_arg(parser)
    add_output_args(parser, "run-path")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(child(args))))
        return 0
    parse_backends(parser, args)
    from bench_runs import fake_upstream_process

    started = time.time()
    load_before = loadavg()
    warn_if_loaded("bench_run_path", load_before)
    trees = source_trees(getattr(args, "compare_src", None))
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="assistd-bench-runpath-") as tmp, fake_upstream_process(Path(tmp)) as port:
        for backend in args.backends:
            samples: list[list[dict[str, Any]]] = [[] for _ in trees]
            for i in range(args.rounds):
                order = list(range(len(trees)))
                for t in order if i % 2 == 0 else order[::-1]:
                    print(f"[{backend}] round {i + 1}, {trees[t].label} ...", file=sys.stderr, flush=True)
                    with database_urls(backend, 1) as urls:
                        samples[t].append(run_child(trees[t].env, backend, urls[0], port, args))
            for t, tree in enumerate(trees):
                median = {key: statistics.median(s[key] for s in samples[t]) for key, _, _ in FIGURES}
                results.append({"backend": backend, "tree": tree.label, "median": median, "samples": samples[t]})
    result = {**result_head("run-path", started, machine(load_before), versions(("assistd",)))}
    result |= {"settings": settings(args), "results": results}
    output = write_result(result, args.output, started)
    print(heading("run path benchmark", result))
    labels = [tree.label for tree in trees]
    head = "| backend | figure | " + " | ".join(labels) + (" | this/compare |" if len(trees) > 1 else " |")
    print(f"\nmedian of {args.rounds} children per tree ({args.runs} runs, {args.retrieves} retrieves each)\n")
    print(head)
    print("|---|---|" + "---:|" * (len(trees) + (1 if len(trees) > 1 else 0)))
    for backend in args.backends:
        rows = [r for r in results if r["backend"] == backend]
        for key, name, digits in FIGURES:
            values = [r["median"][key] for r in rows]
            cells = " | ".join(f"{v:.{digits}f}" for v in values)
            extra = f" | {ratio(values[0], values[1])}" if len(values) > 1 else ""
            print(f"| {backend} | {name} | {cells}{extra} |")
    print(f"\nNote: {count_poll_statements_note()}.")
    print(f"\nJSON: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
