"""Run overhead benchmark: what assistd adds to a one-step run when the upstream answers instantly.

    python bench/bench_runs.py [--backends sqlite,postgres] [--lengths 10,1000,10000] [--samples 30]
                               [--threads 50] [--runs-per-thread 10] [--baseline bench/results/OLD.json]
                               [--compare-src /path/to/other/checkout/src]

Starts the scripted fake upstream (`python -m assistd.testing.fake_upstream`) as its own process and,
per backend, one `assistd serve` (assistd.testing.server.LiveServer) pointed at it, request log off.
Then:

  latency     for each thread length (10, 1,000, 10,000 seeded messages), `--samples` rounds of,
              interleaved: a streaming run (POST /threads/{id}/runs stream=true, request start to the
              `thread.run.completed` event), the same chat request streamed straight to the fake
              (the body assistd sent, so the same prompt size: its own time), and a polled run
              (POST create, GET every `--poll-interval` until completed). Overhead = stream - direct,
              paired per round. Also completed_at - created_at from the server (1 s resolution).
  throughput  `--threads` threads at once, each running `--runs-per-thread` runs back-to-back, once
              polled (non-streaming create, GET every `--poll-interval`) and once streamed: runs/s,
              p50/p99 latency per run, failures, server CPU ms per run.

With --compare-src DIR, every backend is measured on two servers in the same run, against the same
fake upstream: one from this tree and one started with PYTHONPATH=DIR (another checkout's src/, say
main's before a change), both running at once, each on its own database. Their latency samples take
turns (AB, BA, ...) and their throughput runs follow each other, so that other load on the machine
weighs on both alike; the report adds a table of both with the ratio this/other.

Results are printed as markdown and written to bench/results/runs-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    API_KEY,
    add_backends_arg,
    add_compare_arg,
    add_output_args,
    child_server,
    database_urls,
    fmt,
    heading,
    load_baseline,
    loadavg,
    machine,
    parse_backends,
    process_cpu_seconds,
    ratio,
    result_head,
    settings,
    source_trees,
    summary,
    versions,
    warn_if_loaded,
    write_result,
)

from assistd.testing.server import LiveServer, free_port  # noqa: E402

MODEL = "bench-model"
CONTENT = "What is the weather like in Paris today? Please answer in one short sentence."
HEADERS = {"Authorization": f"Bearer {API_KEY}", "OpenAI-Beta": "assistants=v2"}
SEED_BATCH = 10_000  # POST /threads accepts up to 10,000 messages per request
AIM_SQLITE_OVERHEAD_MS = 10.0
PACKAGES = (
    "assistd",
    "uvicorn",
    "starlette",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "uvloop",
    "httptools",
    "httpx",
    "orjson",
)


# --- shared helpers (bench_stream.py imports these) ---------------------------------------------


@contextlib.contextmanager
def fake_upstream_process(workdir: Path) -> Iterator[int]:
    """The fake upstream in its own process (its own GIL), on a free port; yields the port."""
    port = free_port()
    with child_server(
        "fake upstream",
        [sys.executable, "-m", "assistd.testing.fake_upstream", "--port", str(port)],
        workdir / "fake-upstream.log",
        urllib.request.Request(f"http://127.0.0.1:{port}/_fake/reset", data=b"{}", method="POST"),
    ):
        yield port


def server_env(fake_port: int) -> dict[str, str]:
    return {
        "ASSISTD_API_KEYS": API_KEY,
        "ASSISTD_LOG_REQUESTS": "false",
        "ASSISTD_UPSTREAM_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
        "ASSISTD_UPSTREAM_API_KEY": "sk-fake",
    }


def new_client(base_url: str, connections: int = 20) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers=HEADERS,
        timeout=httpx.Timeout(120.0),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def post_json(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    if response.status_code != 200:
        raise RuntimeError(f"POST {path} -> {response.status_code}: {response.text[:500]}")
    return dict(response.json())


async def create_assistant(client: httpx.AsyncClient) -> str:
    return str((await post_json(client, "/assistants", {"model": MODEL, "name": "bench"}))["id"])


async def create_thread(client: httpx.AsyncClient, messages: int) -> str:
    """A thread seeded with `messages` user/assistant messages, in batches of SEED_BATCH."""
    first = min(messages, SEED_BATCH)
    batch = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"{CONTENT} ({i})"} for i in range(first)]
    thread_id = str((await post_json(client, "/threads", {"messages": batch}))["id"])
    for i in range(first, messages):  # beyond one batch: one by one (unused at the default lengths)
        await post_json(client, f"/threads/{thread_id}/messages", {"role": "user", "content": f"{CONTENT} ({i})"})
    return thread_id


async def stream_events(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any],
) -> list[tuple[float, str, str]]:
    """Read an SSE response; returns (perf_counter, event, data) per event (event '' for data-only)."""
    events: list[tuple[float, str, str]] = []
    event = ""
    async with client.stream(method, path, json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {(await response.aread())[:500]!r}")
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((time.perf_counter(), event, line[6:]))
                event = ""
    return events


async def fake_call(fake_port: int, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    async with httpx.AsyncClient(timeout=60) as c:
        response = await c.request(method, f"http://127.0.0.1:{fake_port}{path}", json=body)
        response.raise_for_status()
        return response.json()


BackendBench = Callable[[LiveServer, int, str, argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]]
TreesBench = Callable[[list[LiveServer], int, str, argparse.Namespace], Coroutine[Any, Any, list[dict[str, Any]]]]


def bench_backends(
    name: str, benchmark: BackendBench, args: argparse.Namespace, compare: TreesBench | None = None
) -> list[dict[str, Any]]:
    """Per backend in `args.backends`: one assistd against one fake upstream, measured by `benchmark`.

    With --compare-src (and a `compare` bench), one server per source tree, all running at once, each
    on its own database, measured by `compare` with their samples interleaved, so that whatever else
    the machine does meanwhile weighs on both alike."""
    results: list[dict[str, Any]] = []
    trees = source_trees(getattr(args, "compare_src", None))
    if len(trees) > 1 and compare is None:
        raise SystemExit(f"bench_{name} cannot compare source trees")
    with (
        tempfile.TemporaryDirectory(prefix=f"assistd-bench-{name}-") as tmp,
        fake_upstream_process(Path(tmp)) as fake_port,
    ):
        for backend in args.backends:
            with database_urls(backend, len(trees)) as urls, contextlib.ExitStack() as stack:
                servers = []
                for i, tree in enumerate(trees):
                    env = {**server_env(fake_port), **tree.env}
                    server = LiveServer(Path(tmp) / f"{backend}-{i}", database_url=urls[i], env=env)
                    servers.append(stack.enter_context(server))
                if compare is not None and len(trees) > 1:
                    found = asyncio.run(compare(servers, fake_port, backend, args))
                else:
                    found = [asyncio.run(benchmark(servers[0], fake_port, backend, args))]
            results += [{**result, "tree": tree.label} for result, tree in zip(found, trees, strict=True)]
    return results


# --- latency ------------------------------------------------------------------------------------


async def streamed_run(client: httpx.AsyncClient, thread_id: str, assistant_id: str) -> tuple[float, dict[str, Any]]:
    """Seconds from request start to `thread.run.completed`, and the completed run."""
    start = time.perf_counter()
    events = await stream_events(
        client, "POST", f"/threads/{thread_id}/runs", {"assistant_id": assistant_id, "stream": True}
    )
    for at, event, data in events:
        if event == "thread.run.completed":
            return at - start, json.loads(data)
    raise RuntimeError(f"no thread.run.completed: {[e for _, e, _ in events]}")


async def polled_run(
    client: httpx.AsyncClient,
    thread_id: str,
    assistant_id: str,
    interval: float,
) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    run = await post_json(client, f"/threads/{thread_id}/runs", {"assistant_id": assistant_id})
    while run["status"] in ("queued", "in_progress"):
        await asyncio.sleep(interval)
        response = await client.get(f"/threads/{thread_id}/runs/{run['id']}")
        run = response.json()
    elapsed = time.perf_counter() - start
    if run["status"] != "completed":
        raise RuntimeError(f"run ended {run['status']}: {run.get('last_error')}")
    return elapsed, run


async def direct_stream(fake: httpx.AsyncClient, body: dict[str, Any]) -> float:
    """The fake's own time for this chat request: request start to `data: [DONE]`."""
    start = time.perf_counter()
    events = await stream_events(fake, "POST", "/v1/chat/completions", body)
    if not events or events[-1][2] != "[DONE]":
        raise RuntimeError("direct stream did not end with [DONE]")
    return events[-1][0] - start


def server_seconds(run: dict[str, Any]) -> float:
    return float(run["completed_at"] - run["created_at"])


@dataclass
class LatencyCell:
    """One server's thread of `length` messages, what assistd sent upstream for it, and its samples."""

    client: httpx.AsyncClient
    assistant_id: str
    thread_id: str
    sent: dict[str, Any]
    seed_s: float
    stream_ms: list[float] = field(default_factory=list)
    direct_ms: list[float] = field(default_factory=list)
    poll_ms: list[float] = field(default_factory=list)
    overhead_ms: list[float] = field(default_factory=list)
    server_s: list[float] = field(default_factory=list)


async def prepare_latency(
    client: httpx.AsyncClient,
    fake: httpx.AsyncClient,
    fake_port: int,
    assistant_id: str,
    length: int,
    args: argparse.Namespace,
) -> LatencyCell:
    seed_start = time.perf_counter()
    thread_id = await create_thread(client, length)
    seed_s = time.perf_counter() - seed_start
    await fake_call(fake_port, "POST", "/_fake/reset", {})
    for _ in range(args.warmup):
        await streamed_run(client, thread_id, assistant_id)
    sent = (await fake_call(fake_port, "GET", "/_fake/requests"))[-1]  # what assistd sent upstream
    await fake_call(fake_port, "POST", "/_fake/reset", {})
    for _ in range(args.warmup):
        await direct_stream(fake, sent)
        await polled_run(client, thread_id, assistant_id, args.poll_interval)
    return LatencyCell(client, assistant_id, thread_id, sent, seed_s)


async def latency_sample(cell: LatencyCell, fake: httpx.AsyncClient, args: argparse.Namespace) -> None:
    """One round: a streamed run, the same chat request straight to the fake, a polled run."""
    s, run = await streamed_run(cell.client, cell.thread_id, cell.assistant_id)
    d = await direct_stream(fake, cell.sent)
    p, prun = await polled_run(cell.client, cell.thread_id, cell.assistant_id, args.poll_interval)
    cell.stream_ms.append(s * 1000)
    cell.direct_ms.append(d * 1000)
    cell.poll_ms.append(p * 1000)
    cell.overhead_ms.append((s - d) * 1000)
    cell.server_s += [server_seconds(run), server_seconds(prun)]


def latency_row(cell: LatencyCell, length: int) -> dict[str, Any]:
    user_msgs = [m for m in cell.sent["messages"] if m["role"] != "system"]
    return {
        "length": length,
        "seed_seconds": round(cell.seed_s, 3),
        "prompt_messages": len(user_msgs),
        "prompt_bytes": len(json.dumps(cell.sent["messages"])),
        "prompt_truncated": len(user_msgs) < length,
        "stream_ms": summary(cell.stream_ms),
        "direct_ms": summary(cell.direct_ms),
        "overhead_ms": summary(cell.overhead_ms),
        "poll_ms": summary(cell.poll_ms),
        "server_completed_minus_created_s": summary(cell.server_s),
        "samples": {
            "stream_ms": cell.stream_ms,
            "direct_ms": cell.direct_ms,
            "poll_ms": cell.poll_ms,
            "server_s": cell.server_s,
        },
    }


async def latency_for_length(
    clients: list[tuple[httpx.AsyncClient, str]],
    fake: httpx.AsyncClient,
    fake_port: int,
    length: int,
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """Per (client, assistant), one server each: `--samples` rounds, the servers taking turns within a
    round, in an order that alternates between rounds (AB, BA, ...)."""
    cells = [await prepare_latency(client, fake, fake_port, assistant, length, args) for client, assistant in clients]
    for i in range(args.samples):
        for cell in cells if i % 2 == 0 else cells[::-1]:
            await latency_sample(cell, fake, args)
    await fake_call(fake_port, "POST", "/_fake/reset", {})
    return [latency_row(cell, length) for cell in cells]


# --- throughput ---------------------------------------------------------------------------------


async def throughput(
    client: httpx.AsyncClient, assistant_id: str, pid: int | None, mode: str, args: argparse.Namespace
) -> dict[str, Any]:
    thread_ids = [await create_thread(client, 1) for _ in range(args.threads)]
    latencies: list[float] = []
    failures: list[str] = []

    async def worker(thread_id: str) -> None:
        for _ in range(args.runs_per_thread):
            try:
                if mode == "stream":
                    seconds, _ = await streamed_run(client, thread_id, assistant_id)
                else:
                    seconds, _ = await polled_run(client, thread_id, assistant_id, args.poll_interval)
                latencies.append(seconds * 1000)
            except Exception as exc:  # noqa: BLE001 - counted, reported
                failures.append(repr(exc)[:300])

    cpu_before = process_cpu_seconds(pid) if pid else None
    start = time.perf_counter()
    await asyncio.gather(*(worker(t) for t in thread_ids))
    wall = time.perf_counter() - start
    cpu_after = process_cpu_seconds(pid) if pid else None
    done = len(latencies)
    return {
        "mode": mode,
        "threads": args.threads,
        "runs_per_thread": args.runs_per_thread,
        "completed": done,
        "failed": len(failures),
        "failures": failures[:10],
        "wall_s": round(wall, 3),
        "runs_per_s": done / wall if wall else 0.0,
        "latency_ms": summary(latencies),
        "server_cpu_ms_per_run": (
            (cpu_after - cpu_before) * 1000 / done
            if cpu_before is not None and cpu_after is not None and done
            else None
        ),
    }


# --- the run ------------------------------------------------------------------------------------


async def bench_backend_async(
    server: LiveServer, fake_port: int, backend: str, args: argparse.Namespace
) -> dict[str, Any]:
    return (await bench_servers_async([server], fake_port, backend, args))[0]


async def bench_servers_async(
    servers: list[LiveServer], fake_port: int, backend: str, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Every measurement on each server (one per source tree), interleaved: latency samples take turns,
    throughput runs one server after the other in an order that alternates between modes."""
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(new_client(server.base_url, connections=args.threads + 10))
            for server in servers
        ]
        fake = await stack.enter_async_context(httpx.AsyncClient(base_url=f"http://127.0.0.1:{fake_port}", timeout=60))
        assistants = [await create_assistant(client) for client in clients]
        pids = [server.process.pid if server.process else None for server in servers]
        latency: list[list[dict[str, Any]]] = [[] for _ in servers]
        for length in args.lengths:
            print(f"[{backend}] latency, thread of {length} messages ...", file=sys.stderr, flush=True)
            rows = await latency_for_length(list(zip(clients, assistants, strict=True)), fake, fake_port, length, args)
            for found, row in zip(latency, rows, strict=True):
                found.append(row)
        through: list[list[dict[str, Any]]] = [[] for _ in servers]
        for m, mode in enumerate(args.modes):
            order = list(range(len(servers)))
            for i in order if m % 2 == 0 else order[::-1]:
                print(
                    f"[{backend}] throughput, {args.threads} threads x {args.runs_per_thread} runs, {mode} ...",
                    file=sys.stderr,
                    flush=True,
                )
                through[i].append(await throughput(clients[i], assistants[i], pids[i], mode, args))
                await fake_call(fake_port, "POST", "/_fake/reset", {})
    return [{"backend": backend, "latency": lat, "throughput": thr} for lat, thr in zip(latency, through, strict=True)]


def render(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    out: list[str] = []
    for res in results:
        tree = f" [{res['tree']}]" if getattr(args, "compare_src", None) else ""
        out.append(f"\n### {res['backend']}{tree}: one-step run latency (sequential, {args.samples} samples, ms)\n")
        out.append(
            "| thread msgs | prompt msgs sent | stream p50 | p99 | fake direct p50 | p99 "
            "| **overhead p50** | overhead p99 | polled p50 | p99 | server completed-created s p50 / max |"
        )
        out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for row in res["latency"]:
            s, d, o, p, srv = (
                row["stream_ms"],
                row["direct_ms"],
                row["overhead_ms"],
                row["poll_ms"],
                row["server_completed_minus_created_s"],
            )
            trunc = " (truncated)" if row["prompt_truncated"] else ""
            out.append(
                f"| {row['length']:,} | {row['prompt_messages']:,}{trunc} | {fmt(s['p50'])} | {fmt(s['p99'])} "
                f"| {fmt(d['p50'])} | {fmt(d['p99'])} | **{fmt(o['p50'])}** | {fmt(o['p99'])} "
                f"| {fmt(p['p50'])} | {fmt(p['p99'])} | {fmt(srv['p50'], 0)} / {fmt(srv['max'], 0)} |"
            )
        out.append(
            f"\n### {res['backend']}{tree}: throughput ({args.threads} threads at once, "
            f"{args.runs_per_thread} runs each, back-to-back)\n"
        )
        out.append("| mode | completed | failed | wall s | runs/s | latency p50 ms | p99 ms | server CPU ms/run |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for row in res["throughput"]:
            lat = row["latency_ms"]
            mode = row["mode"] + (f" ({args.poll_interval * 1000:.0f} ms)" if row["mode"] == "poll" else "")
            out.append(
                f"| {mode} | {row['completed']} | {row['failed']} | {fmt(row['wall_s'])} "
                f"| {fmt(row['runs_per_s'], 1)} | {fmt(lat['p50'])} | {fmt(lat['p99'])} "
                f"| {fmt(row['server_cpu_ms_per_run'])} |"
            )
    return "\n".join(out)


def render_comparison(results: list[dict[str, Any]], baseline: dict[str, Any], name: str) -> str:
    """`results` beside `baseline`'s, per backend (the first result of each), with the ratio new/old."""
    old: dict[str, dict[str, Any]] = {}
    for r in baseline["results"]:
        old.setdefault(r["backend"], r)
    out = [
        f"\n### compared with {name} (new / old)\n",
        "| backend | cell | new p50 ms | old | new/old | new p99 ms | old | new/old | new runs/s | old | new/old |",
        "|---|---|" + "---:|" * 9,
    ]
    for res in results:
        o = old.get(res["backend"])
        if o is None:
            continue
        olat = {r["length"]: r for r in o["latency"]}
        for row in res["latency"]:
            orow = olat.get(row["length"])
            if orow is None:
                continue
            a, b = row["overhead_ms"], orow["overhead_ms"]
            out.append(
                f"| {res['backend']} | overhead, {row['length']:,} msgs | {fmt(a['p50'])} | {fmt(b['p50'])} "
                f"| {ratio(a['p50'], b['p50'])} | {fmt(a['p99'])} | {fmt(b['p99'])} "
                f"| {ratio(a['p99'], b['p99'])} | — | — | — |"
            )
        othr = {r["mode"]: r for r in o["throughput"]}
        for row in res["throughput"]:
            orow = othr.get(row["mode"])
            if orow is None:
                continue
            a, b = row["latency_ms"], orow["latency_ms"]
            out.append(
                f"| {res['backend']} | throughput, {row['mode']} | {fmt(a['p50'])} | {fmt(b['p50'])} "
                f"| {ratio(a['p50'], b['p50'])} | {fmt(a['p99'])} | {fmt(b['p99'])} "
                f"| {ratio(a['p99'], b['p99'])} | {fmt(row['runs_per_s'], 1)} | {fmt(orow['runs_per_s'], 1)} "
                f"| {ratio(row['runs_per_s'], orow['runs_per_s'])} |"
            )
    return "\n".join(out)


def render_aims(results: list[dict[str, Any]]) -> str:
    out = ["\n### aims\n"]
    for res in results:
        if res["backend"] != "sqlite":
            continue
        for row in res["latency"]:
            p50 = row["overhead_ms"]["p50"]
            ok = p50 <= AIM_SQLITE_OVERHEAD_MS
            out.append(
                f"- {'met ' if ok else 'MISSED'} median overhead <= {AIM_SQLITE_OVERHEAD_MS:.0f} ms per "
                f"one-step run: sqlite, thread of {row['length']:,} messages: {p50:.2f} ms"
            )
    for res in results:
        for row in res["latency"]:
            if row["prompt_truncated"]:
                out.append(
                    f"- note: {res['backend']}, thread of {row['length']:,}: the prompt was cut to the "
                    f"newest {row['prompt_messages']:,} messages ({row['prompt_bytes']:,} bytes of messages) "
                    "by the default 8,192-token context window (ASSISTD_UPSTREAM_CONTEXT_WINDOW)"
                )
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_backends_arg(parser, "sqlite,postgres")
    parser.add_argument("--lengths", default="10,1000,10000", help="thread lengths (messages) for the latency part")
    parser.add_argument("--samples", type=int, default=30, help="latency rounds per thread length")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up runs per thread length")
    parser.add_argument("--poll-interval", type=float, default=0.01, help="seconds between GETs when polling")
    parser.add_argument("--threads", type=int, default=50, help="threads running at once (throughput)")
    parser.add_argument("--runs-per-thread", type=int, default=10, help="runs back-to-back per thread (throughput)")
    parser.add_argument("--modes", default="poll,stream", help="throughput modes: poll, stream")
    add_compare_arg(parser)
    add_output_args(parser, "runs")
    args = parser.parse_args(argv)
    parse_backends(parser, args)
    args.lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not set(args.modes) <= {"poll", "stream"}:
        parser.error("--modes takes poll and/or stream")
    return args


Results = list[dict[str, Any]]


def fake_upstream_main(
    name: str,
    title: str,
    args: argparse.Namespace,
    benchmark: BackendBench,
    render: Callable[[Results, argparse.Namespace], str],
    render_comparison: Callable[[Results, dict[str, Any], str], str],
    render_aims: Callable[[Results], str],
    compare: TreesBench | None = None,
) -> int:
    """Run `benchmark` on every backend, write bench/results/<name>-<time>.json, print the report (bench_stream too)."""
    baseline = load_baseline(args.baseline)
    started = time.time()
    load_before = loadavg()
    warn_if_loaded(f"bench_{name}", load_before)
    results = bench_backends(name, benchmark, args, compare)
    result = {
        **result_head(name, started, machine(load_before), versions(PACKAGES)),
        "settings": settings(args),
        "results": results,
    }
    output = write_result(result, args.output, started)
    print(heading(title, result))
    print(render(results, args))
    this = [r for r in results if r.get("tree", "this").startswith("this")]
    if baseline is not None:
        print(render_comparison(this, baseline, str(args.baseline)))
    compared = [r for r in results if r.get("tree", "").startswith("compare")]
    if compared:
        name = f"{compared[0]['tree']}, in the same run (new = {this[0]['tree']})"
        print(render_comparison(this, {"results": compared}, name))
    print(render_aims(this))
    print(f"\nJSON: {output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return fake_upstream_main(
        "runs",
        "run overhead benchmark",
        args,
        bench_backend_async,
        render,
        render_comparison,
        render_aims,
        compare=bench_servers_async,
    )


if __name__ == "__main__":
    sys.exit(main())
