"""Fault timings: how fast a run stops when its model call hangs (issue 12, items 3, 5 and 6).

    python bench/bench_faults.py [--backends sqlite,postgres] [--tries 10] [--expires 2]

Starts the scripted fake upstream in this process and, per backend, one `assistd serve`
(assistd.testing.server.LiveServer) pointed at it with `ASSISTD_RUN_EXPIRES_SECONDS=--expires`.
Every try starts a run whose model call hangs, then:

  cancel, polled, before headers   the upstream never answers; POST /cancel, then GET every 5 ms:
                                   time from sending the cancel to the first GET showing `cancelled`
  cancel, polled, mid-stream       the same, the upstream having sent one chunk then nothing
  cancel, streamed                 a streamed run; time from sending the cancel to reading the
                                   `thread.run.cancelled` event
  delete thread, streamed          a streamed run; time from sending DELETE /threads/{id} to reading
                                   `thread.run.cancelled`
  expiry, polled                   nothing sent; time from `expires_at` (wall clock) to the first GET
                                   showing `expired`

After each try it waits until no connection to the upstream is left open (the abandoned call was
closed) and reports the longest such wait. Prints a markdown table (median, p90, max, in ms) and
writes bench/results/faults-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    API_KEY,
    add_backends_arg,
    add_output_args,
    database_urls,
    fmt,
    heading,
    loadavg,
    machine,
    parse_backends,
    pct,
    result_head,
    settings,
    versions,
    warn_if_loaded,
    write_result,
)

from assistd.testing.fake_upstream import FakeUpstream, Reply  # noqa: E402
from assistd.testing.server import LiveServer  # noqa: E402

HEADERS = {"authorization": f"Bearer {API_KEY}", "openai-beta": "assistants=v2"}
POLL = 0.005
TIMEOUT = 30.0


def upstream_connections(port: int) -> int:
    """Open TCP connections to the upstream's port (its own ends, ESTABLISHED)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
            count += 1
    return count


def wait_for(probe: Callable[[], Any], done: Callable[[Any], bool], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}; last: {value!r}")
        time.sleep(POLL)


class Bench:
    def __init__(self, http: httpx.Client, fake: FakeUpstream) -> None:
        self.http = http
        self.fake = fake
        self.counter = 0

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def get_run(self, thread_id: str, run_id: str) -> dict[str, Any]:
        response = self.http.get(f"/threads/{thread_id}/runs/{run_id}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def hung_setup(self, reply: Reply) -> tuple[str, str, str]:
        """An assistant on a fresh model scripted with `reply`, a thread; returns (model, assistant, thread)."""
        wait_for(lambda: upstream_connections(self.fake.port), lambda n: n == 0, "no upstream connection")
        self.counter += 1
        model = f"bench-faults-{self.counter}-{time.monotonic_ns()}"
        self.fake.script(model, reply)
        assistant = self.post("/assistants", {"model": model})["id"]
        thread = self.post("/threads", {"messages": [{"role": "user", "content": "hi"}]})["id"]
        return model, assistant, thread

    def wait_upstream_call(self, model: str) -> None:
        wait_for(lambda: len(self.fake.requests(model)), lambda n: n >= 1, "the model call")

    def settle(self) -> float:
        """Seconds until the abandoned upstream call's connection is closed."""
        started = time.monotonic()
        wait_for(lambda: upstream_connections(self.fake.port), lambda n: n == 0, "the upstream call to close")
        return time.monotonic() - started

    def cancel_polled(self, reply: Reply) -> tuple[float, float]:
        model, assistant, thread = self.hung_setup(reply)
        run = self.post(f"/threads/{thread}/runs", {"assistant_id": assistant})["id"]
        self.wait_upstream_call(model)
        started = time.monotonic()
        self.post(f"/threads/{thread}/runs/{run}/cancel", {})
        final = wait_for(lambda: self.get_run(thread, run)["status"], lambda s: s not in ("cancelling",), "cancelled")
        took = time.monotonic() - started
        if final != "cancelled":
            raise RuntimeError(f"run ended {final}")
        return took, self.settle()

    def streamed(self, action: Callable[[str, str], None]) -> tuple[float, float]:
        """A streamed run whose call hangs; `action(thread, run)` once the call is in flight; time to
        `thread.run.cancelled`."""
        model, assistant, thread = self.hung_setup(Reply(hang=True))
        started = None
        with self.http.stream(
            "POST", f"/threads/{thread}/runs", json={"assistant_id": assistant, "stream": True}
        ) as response:
            name = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    name = line[len("event: ") :]
                elif line.startswith("data: ") and name == "thread.run.in_progress":
                    run = json.loads(line[len("data: ") :])["id"]
                    self.wait_upstream_call(model)
                    started = time.monotonic()
                    action(thread, run)
                elif line.startswith("data: ") and name == "thread.run.cancelled" and started is not None:
                    return time.monotonic() - started, self.settle()
        raise RuntimeError("the stream ended without thread.run.cancelled")

    def cancel(self, thread: str, run: str) -> None:
        self.post(f"/threads/{thread}/runs/{run}/cancel", {})

    def delete_thread(self, thread: str, run: str) -> None:
        self.http.delete(f"/threads/{thread}").raise_for_status()

    def cancel_streamed(self) -> tuple[float, float]:
        return self.streamed(self.cancel)

    def delete_streamed(self) -> tuple[float, float]:
        return self.streamed(self.delete_thread)

    def expiry_polled(self) -> tuple[float, float]:
        model, assistant, thread = self.hung_setup(Reply(hang=True))
        created = self.post(f"/threads/{thread}/runs", {"assistant_id": assistant})
        self.wait_upstream_call(model)
        final = wait_for(
            lambda: self.get_run(thread, created["id"])["status"], lambda s: s not in ("queued", "in_progress"), "end"
        )
        late = time.time() - created["expires_at"]
        if final != "expired":
            raise RuntimeError(f"run ended {final}")
        return late, self.settle()


SCENARIOS: dict[str, Callable[[Bench], tuple[float, float]]] = {
    "cancel, polled, before headers": lambda b: b.cancel_polled(Reply(hang=True)),
    "cancel, polled, mid-stream": lambda b: b.cancel_polled(Reply(text="late words", interval=600)),
    "cancel, streamed": Bench.cancel_streamed,
    "delete thread, streamed": Bench.delete_streamed,
    "expiry, polled (from expires_at)": Bench.expiry_polled,
}


@contextlib.contextmanager
def assistd(backend: str, fake: FakeUpstream, expires: int, workdir: Path) -> Iterator[LiveServer]:
    with database_urls(backend, 1) as (url,):
        env = {
            "ASSISTD_API_KEYS": API_KEY,
            "ASSISTD_UPSTREAM_BASE_URL": fake.base_url,
            "ASSISTD_RUN_EXPIRES_SECONDS": str(expires),
            "ASSISTD_LOG_REQUESTS": "false",
            "ASSISTD_LOCAL_ENABLED": "false",
            "ASSISTD_SANDBOX_POOL_SIZE": "0",
        }
        server = LiveServer(workdir / backend, database_url=url, env=env).start()
        try:
            yield server
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_backends_arg(parser, "sqlite,postgres")
    parser.add_argument("--tries", type=int, default=10, help="tries per scenario and backend")
    parser.add_argument("--expires", type=int, default=2, help="ASSISTD_RUN_EXPIRES_SECONDS of the servers")
    add_output_args(parser, "faults")
    args = parser.parse_args()
    parse_backends(parser, args)
    started = time.time()
    load_before = loadavg()
    warn_if_loaded("bench_faults", load_before)

    rows: list[dict[str, Any]] = []
    with FakeUpstream() as fake, tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        for backend in args.backends:
            with (
                assistd(backend, fake, args.expires, Path(tmp)) as server,
                httpx.Client(base_url=server.base_url, headers=HEADERS, timeout=TIMEOUT) as http,
            ):
                bench = Bench(http, fake)
                for name, scenario in SCENARIOS.items():
                    times, settles = [], []
                    for _ in range(args.tries):
                        took, settled = scenario(bench)
                        times.append(took)
                        settles.append(settled)
                    rows.append({"scenario": name, "backend": backend, "seconds": times, "settle_seconds": settles})
                    print(f"{backend:8} {name:34} p50 {pct(times, 50) * 1000:7.1f} ms", file=sys.stderr)

    result = result_head("faults", started, machine(load_before), versions(["openai", "httpx", "uvicorn"]))
    result["settings"] = settings(args)
    result["rows"] = rows
    print(heading("fault timings", result))
    print()
    print(f"{args.tries} tries each; the upstream call hangs (no answer, or one chunk then nothing).")
    print()
    print("| scenario | backend | median ms | p90 ms | max ms | upstream closed within (max ms) |")
    print("|---|---|---:|---:|---:|---:|")
    for row in rows:
        ms = [s * 1000 for s in row["seconds"]]
        settle = max(row["settle_seconds"]) * 1000
        print(
            f"| {row['scenario']} | {row['backend']} | {fmt(pct(ms, 50), 1)} | {fmt(pct(ms, 90), 1)} | "
            f"{fmt(max(ms), 1)} | {fmt(settle, 1)} |"
        )
    path = write_result(result, args.output, started)
    print(f"\nresults: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
