"""HTTP API benchmark: assistd against a bare Starlette app that returns the same bytes.

    python bench/bench_api.py [--backends sqlite,postgres] [--duration 3] [--repeat 3]
                              [--log-requests off,on] [--baseline bench/results/OLD.json]

For each backend it starts one `assistd serve` per request-log setting (a real process, through
assistd.testing.server.LiveServer) and one bare app (bench/bare_app.py, same uvicorn settings),
then drives each with wrk (bench/wrk_report.lua) for:

  create-message  POST /v1/threads/{id}/messages  (a fresh thread per target and concurrency)
  list-messages   GET  /v1/threads/{id}/messages?limit=20 on a thread seeded with 1,000 messages

at concurrency 1 (wrk -t1 -c1) and 32 (wrk -t2 -c32). Each cell gets a warm-up, then `--repeat`
measurements interleaved across the targets (so drift hits all of them alike); the tables report
the median of each figure. The bare app's bodies are captured from assistd first, so both send
responses of the same size. Results are printed as markdown and written to bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    API_KEY,
    BENCH_DIR,
    add_backends_arg,
    add_compare_arg,
    add_output_args,
    child_server,
    database_urls,
    load_baseline,
    machine,
    parse_backends,
    process_cpu_seconds,
    result_head,
    source_trees,
    versions,
    warn_if_loaded,
    write_result,
)

from assistd.testing.server import LiveServer, free_port  # noqa: E402

LUA = BENCH_DIR / "wrk_report.lua"
CONTENT = "What is the weather like in Paris today? Please answer in one short sentence."
POST_BODY = json.dumps({"role": "user", "content": CONTENT})
SEED_MESSAGES = 1000
CONCURRENCY = {1: 1, 32: 2}  # connections -> wrk threads
OPERATIONS = ("create-message", "list-messages")
AIM_LIST_RATIO = {"sqlite": 0.2, "postgres": 0.1}  # list-messages rps / bare rps (issue 18)
AIM_SQLITE_P50_MS = 5.0


# --- servers ------------------------------------------------------------------------------------


class Client:
    """A keep-alive JSON client for setup (seeding, capturing bodies); never used for measuring."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method: str, path: str, body: str | None = None) -> bytes:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path} -> {response.status}: {data[:500]!r}")
        return data

    def close(self) -> None:
        self.conn.close()


@dataclass
class Target:
    name: str  # "assistd" or "bare"
    port: int
    pid: int | None = None
    log_requests: bool | None = None  # None for the bare app
    list_path: str = ""
    threads: dict[int, str] = field(default_factory=dict)  # concurrency -> create-message thread
    tree: str = "this"  # which source tree (--compare-src): "this" or "compare"

    @property
    def key(self) -> str:
        if self.log_requests is None:
            return self.name
        return f"{self.name}[{self.tree}](log={'on' if self.log_requests else 'off'})"


def seed_assistd(target: Target) -> tuple[bytes, bytes]:
    """A thread of SEED_MESSAGES messages to list; returns (list response, create response)."""
    client = Client(target.port)
    try:
        thread_id = json.loads(client.request("POST", "/v1/threads", "{}"))["id"]
        path = f"/v1/threads/{thread_id}/messages"
        created = b""
        for _ in range(SEED_MESSAGES):
            created = client.request("POST", path, POST_BODY)
        target.list_path = path + "?limit=20"
        listed = client.request("GET", target.list_path)
        page = json.loads(listed)
        assert len(page["data"]) == 20 and page["has_more"], page
        return listed, created
    finally:
        client.close()


def fresh_thread(port: int) -> str:
    client = Client(port)
    try:
        return str(json.loads(client.request("POST", "/v1/threads", "{}"))["id"])
    finally:
        client.close()


@contextlib.contextmanager
def bare_server(bodies: dict[str, str], workdir: Path) -> Iterator[Target]:
    bodies_file = workdir / "bare-bodies.json"
    bodies_file.write_text(json.dumps(bodies))
    port = free_port()
    with child_server(
        "bare app",
        [sys.executable, str(BENCH_DIR / "bare_app.py"), "--port", str(port), "--bodies", str(bodies_file)],
        workdir / "bare.log",
        f"http://127.0.0.1:{port}/healthz",
    ) as process:
        yield Target("bare", port, pid=process.pid)


# --- wrk ----------------------------------------------------------------------------------------


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    errors: int
    cpu_ms_per_request: float | None  # server process CPU (all threads, user+system) / requests


def run_wrk(port: int, path: str, method: str, connections: int, seconds: int, pid: int | None = None) -> Sample:
    env = {**os.environ, "BENCH_METHOD": method, "BENCH_BODY": POST_BODY, "BENCH_AUTH": API_KEY}
    cmd = [
        "wrk",
        f"-t{CONCURRENCY[connections]}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}{path}",
    ]
    cpu_before = process_cpu_seconds(pid) if pid else None
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    cpu_after = process_cpu_seconds(pid) if pid else None
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no BENCH_JSON line:\n{out}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    lat = data["latency_us"]
    return Sample(
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=lat["p50"] / 1000,
        p75_ms=lat["p75"] / 1000,
        p90_ms=lat["p90"] / 1000,
        p99_ms=lat["p99"] / 1000,
        errors=sum(data["errors"].values()),
        cpu_ms_per_request=(
            (cpu_after - cpu_before) * 1000 / data["requests"]
            if cpu_before is not None and cpu_after is not None and data["requests"]
            else None
        ),
    )


def median_sample(samples: list[Sample]) -> dict[str, Any]:
    return {
        "rps": statistics.median(s.rps for s in samples),
        "p50_ms": statistics.median(s.p50_ms for s in samples),
        "p99_ms": statistics.median(s.p99_ms for s in samples),
        "errors": sum(s.errors for s in samples),
        "cpu_ms_per_request": (
            statistics.median(s.cpu_ms_per_request for s in samples if s.cpu_ms_per_request is not None)
            if any(s.cpu_ms_per_request is not None for s in samples)
            else None
        ),
        "samples": [asdict(s) for s in samples],
    }


def measure_cell(
    targets: list[Target], operation: str, connections: int, args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """Warm each target up, then `repeat` interleaved rounds; returns target key -> medians."""
    paths: dict[str, str] = {}
    for target in targets:
        if operation == "list-messages":
            paths[target.key] = target.list_path or "/v1/threads/thread_bare/messages?limit=20"
        elif target.name == "bare":
            paths[target.key] = "/v1/threads/thread_bare/messages"
        else:
            thread_id = fresh_thread(target.port)  # a fresh thread per target and concurrency
            target.threads[connections] = thread_id
            paths[target.key] = f"/v1/threads/{thread_id}/messages"
    method = "POST" if operation == "create-message" else "GET"
    for target in targets:
        run_wrk(target.port, paths[target.key], method, connections, args.warmup)
    samples: dict[str, list[Sample]] = {t.key: [] for t in targets}
    for _ in range(args.repeat):
        for target in targets:
            sample = run_wrk(target.port, paths[target.key], method, connections, args.duration, target.pid)
            samples[target.key].append(sample)
    return {key: median_sample(found) for key, found in samples.items()}


# --- the run ------------------------------------------------------------------------------------


def bench_backend(backend: str, args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    modes: list[bool] = args.log_requests
    rows: list[dict[str, Any]] = []
    workdir.mkdir(parents=True, exist_ok=True)
    trees = args.trees
    setups = [(tree, mode) for tree in trees for mode in modes]
    with database_urls(backend, len(setups)) as urls, contextlib.ExitStack() as stack:
        targets: list[Target] = []
        captured: dict[str, str] = {}
        for (tree, mode), url in zip(setups, urls, strict=True):
            tree_name = tree.label.split(":")[0]
            data_dir = workdir / f"{backend}-{tree_name}-log-{'on' if mode else 'off'}"
            server = LiveServer(
                data_dir,
                database_url=url,
                env={**tree.env, "ASSISTD_API_KEYS": API_KEY, "ASSISTD_LOG_REQUESTS": "true" if mode else "false"},
            )
            stack.enter_context(server)
            target = Target(
                "assistd",
                server.port,
                pid=server.process.pid if server.process else None,
                log_requests=mode,
                tree=tree_name,
            )
            print(f"[{backend}] seeding {SEED_MESSAGES} messages into {target.key} ...", file=sys.stderr, flush=True)
            listed, created = seed_assistd(target)
            captured.setdefault("get", listed.decode())
            captured.setdefault("post", created.decode())
            targets.append(target)
        targets.append(stack.enter_context(bare_server(captured, workdir)))
        sizes = {
            "list_response_bytes": len(captured["get"].encode()),
            "create_response_bytes": len(captured["post"].encode()),
        }
        for operation in args.operations:
            for connections in args.concurrency:
                print(f"[{backend}] {operation} c={connections} ...", file=sys.stderr, flush=True)
                cell = measure_cell(targets, operation, connections, args)
                bare = cell["bare"]
                for target in targets[:-1]:
                    mine = cell[target.key]
                    rows.append(
                        {
                            "backend": backend,
                            "operation": operation,
                            "concurrency": connections,
                            "log_requests": target.log_requests,
                            "tree": target.tree,
                            "assistd": mine,
                            "bare": bare,
                            "ratio": mine["rps"] / bare["rps"] if bare["rps"] else None,
                            **sizes,
                        }
                    )
    return rows


def row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return row["backend"], row["operation"], row["concurrency"], row["log_requests"], row.get("tree", "this")


def fmt_rps(value: float) -> str:
    return f"{value:,.0f}"


def fmt_ms(value: float) -> str:
    return f"{value:.2f}"


def fmt_cpu(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def render_tables(rows: list[dict[str, Any]], modes: list[bool]) -> str:
    out: list[str] = []
    show_log = len(modes) > 1
    show_tree = len({r.get("tree", "this") for r in rows}) > 1
    for backend in dict.fromkeys(r["backend"] for r in rows):
        out.append(f"\n### {backend}\n")
        head = (
            ["operation", "conc"]
            + (["tree"] if show_tree else [])
            + (["request log"] if show_log else [])
            + [
                "assistd rps",
                "p50 ms",
                "p99 ms",
                "bare rps",
                "p50 ms",
                "p99 ms",
                "ratio (rps)",
                "assistd CPU ms/req",
                "bare CPU ms/req",
            ]
        )
        out.append("| " + " | ".join(head) + " |")
        labels = 2 + show_log + show_tree
        out.append("|" + "|".join("---" if i < labels else "---:" for i in range(len(head))) + "|")
        for r in (r for r in rows if r["backend"] == backend):
            a, b = r["assistd"], r["bare"]
            cells = [r["operation"], str(r["concurrency"])]
            if show_tree:
                cells.append(r.get("tree", "this"))
            if show_log:
                cells.append("on" if r["log_requests"] else "off")
            cells += [
                fmt_rps(a["rps"]),
                fmt_ms(a["p50_ms"]),
                fmt_ms(a["p99_ms"]),
                fmt_rps(b["rps"]),
                fmt_ms(b["p50_ms"]),
                fmt_ms(b["p99_ms"]),
                f"{r['ratio']:.2f}",
            ]
            if a["errors"] or b["errors"]:
                cells[-1] += f" (errors: assistd {a['errors']}, bare {b['errors']})"
            cells += [fmt_cpu(a.get("cpu_ms_per_request")), fmt_cpu(b.get("cpu_ms_per_request"))]
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def render_comparison(rows: list[dict[str, Any]], baseline: dict[str, Any], name: str) -> str:
    old = {row_key(r): r for r in baseline["rows"]}
    out = [
        f"\n### compared with {name} (new / old)\n",
        "| backend | operation | conc | log | assistd rps new | old | new/old | p50 new | old | new/old "
        "| p99 new | old | new/old | ratio new | old | CPU ms/req new | old |",
        "|---|---|---|---|" + "---:|" * 13,
    ]
    for r in rows:
        o = old.get(row_key(r))
        log = "on" if r["log_requests"] else "off"
        if o is None:
            out.append(
                f"| {r['backend']} | {r['operation']} | {r['concurrency']} | {log} | "
                f"{fmt_rps(r['assistd']['rps'])} | — | — | — | — | — | — | — | — | {r['ratio']:.2f} | — | "
                f"{fmt_cpu(r['assistd'].get('cpu_ms_per_request'))} | — |"
            )
            continue
        a, oa = r["assistd"], o["assistd"]
        out.append(
            f"| {r['backend']} | {r['operation']} | {r['concurrency']} | {log} | "
            f"{fmt_rps(a['rps'])} | {fmt_rps(oa['rps'])} | {a['rps'] / oa['rps']:.2f} | "
            f"{fmt_ms(a['p50_ms'])} | {fmt_ms(oa['p50_ms'])} | {a['p50_ms'] / oa['p50_ms']:.2f} | "
            f"{fmt_ms(a['p99_ms'])} | {fmt_ms(oa['p99_ms'])} | {a['p99_ms'] / oa['p99_ms']:.2f} | "
            f"{r['ratio']:.2f} | {o['ratio']:.2f} | "
            f"{fmt_cpu(a.get('cpu_ms_per_request'))} | {fmt_cpu(oa.get('cpu_ms_per_request'))} |"
        )
    return "\n".join(out)


def render_aims(rows: list[dict[str, Any]]) -> str:
    out = ["\n### aims\n"]
    for r in rows:
        log = f", log={'on' if r['log_requests'] else 'off'}"
        where = f"{r['backend']} {r['operation']} c={r['concurrency']}{log} [{r.get('tree', 'this')}]"
        if r["operation"] == "list-messages":
            aim = AIM_LIST_RATIO.get(r["backend"], 0.1)
            ok = r["ratio"] >= aim
            out.append(f"- {'met ' if ok else 'MISSED'} ratio >= {aim}: {where}: {r['ratio']:.2f}")
        if r["backend"] == "sqlite" and r["concurrency"] == 1:
            p50 = r["assistd"]["p50_ms"]
            ok = p50 < AIM_SQLITE_P50_MS
            out.append(f"- {'met ' if ok else 'MISSED'} p50 < {AIM_SQLITE_P50_MS} ms: {where}: {p50:.2f} ms")
    return "\n".join(out)


def api_versions() -> dict[str, str]:
    found = versions(
        (
            "assistd",
            "uvicorn",
            "starlette",
            "pydantic",
            "sqlalchemy",
            "aiosqlite",
            "asyncpg",
            "uvloop",
            "httptools",
            "orjson",
        )
    )
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    found["wrk"] = (wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else "?"
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_backends_arg(parser, "sqlite,postgres")
    parser.add_argument("--duration", type=int, default=3, help="seconds per measurement (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per target and cell")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per cell; medians are reported")
    parser.add_argument(
        "--log-requests", default="off", help="assistd request logging to measure: off, on, or off,on (one server each)"
    )
    parser.add_argument("--operations", default=",".join(OPERATIONS))
    parser.add_argument("--concurrency", default="1,32")
    add_compare_arg(parser)
    add_output_args(parser, "api")
    args = parser.parse_args(argv)
    parse_backends(parser, args)
    args.log_requests = [{"on": True, "off": False}[m.strip()] for m in args.log_requests.split(",")]
    args.operations = [o.strip() for o in args.operations.split(",")]
    if not set(args.operations) <= set(OPERATIONS):
        parser.error(f"--operations takes {', '.join(OPERATIONS)}")
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if not set(args.concurrency) <= set(CONCURRENCY):
        parser.error(f"--concurrency takes {', '.join(map(str, CONCURRENCY))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench_api: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    args.trees = source_trees(args.compare_src)
    baseline = load_baseline(args.baseline)
    started = time.time()
    load_before = os.getloadavg()
    warn_if_loaded("bench_api", load_before, " (interleaved rounds keep the ratios fairer)")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="assistd-bench-") as tmp:
        for backend in args.backends:
            rows += bench_backend(backend, args, Path(tmp) / backend)
    result = {
        **result_head("api", started, machine(load_before, os.getloadavg()), api_versions()),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "repeat": args.repeat,
            "seed_messages": SEED_MESSAGES,
            "wrk_threads": CONCURRENCY,
            "post_body": POST_BODY,
            "trees": [tree.label for tree in args.trees],
        },
        "rows": rows,
    }
    output = write_result(result, args.output, started)
    print(
        f"## assistd API benchmark ({result['git']}, {result['started_at']}, {args.duration}s x {args.repeat}, medians)"
    )
    for tree in args.trees:
        print(f"- {tree.label}")
    print(render_tables(rows, args.log_requests))
    if baseline is not None:
        print(render_comparison(rows, baseline, str(args.baseline)))
    print(render_aims(rows))
    print(f"\nJSON: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
