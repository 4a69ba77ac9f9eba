"""Three replicas on one PostgreSQL and one S3 bucket behind a round-robin proxy: flows, cancel, SIGKILL.

    python bench/bench_cluster.py                                # 10 cancels, 10 kills, 2 x 12 in flight
    python bench/bench_cluster.py --kills 20 --lease-seconds 30  # the default lease: ~30 s per kill

The topology is `assistd.testing.cluster.Cluster` (the one tests/cluster uses): `--replicas` `assistd
serve` processes, each with a data directory of its own, on one pgserver PostgreSQL database and one
moto S3 bucket (ASSISTD_BLOB_STORE=s3), behind `assistd.testing.proxy.RoundRobinProxy` (per
connection; the clients send `Connection: close`, so consecutive requests reach consecutive
replicas). The model is the scripted fake upstream. Settings are the server defaults except
ASSISTD_LEASE_SECONDS (`--lease-seconds`, default 5: how long a dead replica's run waits to be
recovered) and ASSISTD_WORKER_POLL_SECONDS (`--worker-poll-seconds`, default 1.0 = the server's).

1. SDK flows (openai SDK through the proxy, or a named replica): objects created on one replica read
   through the others; a polled run; a file uploaded on one replica downloaded through the others;
   vector store ingestion, search and a file_search run through others; a streamed run.
2. Cancel through another replica (`--cancels` runs): a run streaming from the fake upstream for a
   minute, writing its message; the replica holding its lease (runs.lease_owner) is found; the cancel
   and the polls go to a different replica; latency = cancel request sent -> status `cancelled` seen.
3. SIGKILL mid-run (`--kills` runs): the same kind of run, created through the proxy; the replica
   executing it is killed with SIGKILL; the run is polled through the proxy (the dead replica is
   skipped) until it is terminal. Lost = not terminal within 120 s; doubled = more than one run row,
   assistant message or message_creation step, or more than two upstream requests (the interrupted
   call and the resumed one) for it. Resumed = `completed`; failed = `failed`. Recovery time =
   SIGKILL -> terminal state seen. The killed replica is restarted before the next try.
4. SIGKILL with runs in flight (`--rounds` rounds of `--in-flight` runs): N runs, created on each
   replica in turn (so spread over them), each streaming a 60 s answer; once every one is writing its
   message, the replica executing the most of them is killed. Every run is polled to its end:
   lost / doubled as above (a run the kill did not touch must call the model once), resumed vs
   failed among the killed replica's runs, and the time from SIGKILL to `completed` of the resumed
   runs (the others finish their own 60 s answer).

    python bench/bench_cluster.py --signals                      # NOTIFY vs polling only, ~1-2 minutes

`--signals` measures only how signals travel between replicas, on two fresh clusters: one with
PostgreSQL LISTEN/NOTIFY (the default), one with ASSISTD_LISTEN_NOTIFY=false (polling only), both at
`--worker-poll-seconds` and ASSISTD_WORKER_CONCURRENCY=1. Cancel latency is measured as in 2.
Run-queued pickup: replica 0's only worker slot is held by a streamed run; a run is created through
replica 0 (which cannot take it); latency = create request answered -> the run's row leaves
`queued` (claimed by an idle replica), read from the database every 20 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import traceback
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import fmt, heading, loadavg, machine, pct, result_head, versions, warn_if_loaded, write_result

from assistd.testing.cluster import Cluster
from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.postgres import TestPostgres
from assistd.testing.s3 import MotoS3

warnings.simplefilter("ignore", DeprecationWarning)
TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}
BOOK = (
    "Call me Ishmael. The great white whale, Moby Dick, was hunted by Captain Ahab of the Pequod, "
    "a whaler out of Nantucket. "
) * 30


def wait_until(probe: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    value = probe()
    while not done(value):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}; last value: {value!r}")
        time.sleep(0.02)
        value = probe()
    return value


# --- 1. SDK flows -------------------------------------------------------------------------------


def flow_cross_replica_reads(cluster: Cluster, fake: FakeUpstream) -> None:
    with cluster.replica_client(0) as first:
        assistant = first.beta.assistants.create(model="gpt-4o", metadata={"k": "v"})
        thread = first.beta.threads.create(messages=[{"role": "user", "content": "on replica 0"}])
    for index in range(1, len(cluster.replicas)):
        with cluster.replica_client(index) as other:
            assert other.beta.assistants.retrieve(assistant.id).metadata == {"k": "v"}
            assert other.beta.threads.messages.list(thread.id).data[0].content[0].text.value == "on replica 0"


def flow_polled_run(cluster: Cluster, fake: FakeUpstream) -> None:
    model = f"polled-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply.say("Done.", delay=0.3))
    with cluster.client() as client:
        assistant = client.beta.assistants.create(model=model)
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
        )
        assert run.status == "completed", run.last_error
    assert len(fake.requests(model)) == 1


def flow_upload_download(cluster: Cluster, fake: FakeUpstream) -> None:
    payload = os.urandom(1024 * 1024)
    with cluster.replica_client(0) as first:
        uploaded = first.files.create(file=("data.bin", payload), purpose="user_data")
    for index in range(1, len(cluster.replicas)):
        with cluster.replica_client(index) as other:
            assert other.files.content(uploaded.id).read() == payload


def flow_file_search(cluster: Cluster, fake: FakeUpstream) -> None:
    with cluster.replica_client(0) as first:
        book = first.files.create(file=("moby.txt", BOOK.encode()), purpose="assistants")
    with cluster.replica_client(1) as second:
        store = second.vector_stores.create(name="library", file_ids=[book.id])
    with cluster.replica_client(2 % len(cluster.replicas)) as third:
        done = third.vector_stores.files.poll(book.id, vector_store_id=store.id, poll_interval_ms=50)
        assert done.status == "completed", done.last_error
        hits = third.vector_stores.search(store.id, query="Who hunted the white whale?")
        assert hits.data and hits.data[0].file_id == book.id
    model = f"fs-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply.call("file_search", {"queries": ["Who hunted Moby Dick?"]}), Reply.say("Ahab."))
    with cluster.client() as client:
        assistant = client.beta.assistants.create(
            model=model,
            tools=[{"type": "file_search"}],
            tool_resources={"file_search": {"vector_store_ids": [store.id]}},
        )
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Who hunted Moby Dick?"}])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
        )
        assert run.status == "completed", run.last_error
    tool_output = next(m for m in fake.requests(model)[1]["messages"] if m["role"] == "tool")["content"]
    assert "Captain Ahab" in tool_output


def flow_stream(cluster: Cluster, fake: FakeUpstream) -> None:
    model = f"stream-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply.say(" ".join(f"w{i}" for i in range(20)), interval=0.05))
    with cluster.client() as client:
        assistant = client.beta.assistants.create(model=model)
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        arrivals: list[float] = []
        with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as events:
            for event in events:
                if event.event == "thread.message.delta":
                    arrivals.append(time.monotonic())
            assert events.get_final_run().status == "completed"
    assert len(arrivals) >= 20 and arrivals[-1] - arrivals[0] > 0.5, "deltas were buffered"


FLOWS = [flow_cross_replica_reads, flow_polled_run, flow_upload_download, flow_file_search, flow_stream]


# --- 2 and 3: cancel, SIGKILL ---------------------------------------------------------------------


def start_slow_run(cluster: Cluster, fake: FakeUpstream, model: str) -> tuple[str, str, int]:
    fake.script(model, Reply(text="slow " * 600, interval=0.1))
    with cluster.client() as client:
        assistant = client.beta.assistants.create(model=model)
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        wait_until(
            lambda: [m for m in client.beta.threads.messages.list(thread.id) if m.role == "assistant"],
            lambda ms: len(ms) == 1,
            60,
            "the run's message",
        )
    return thread.id, run.id, cluster.wait_for_executor(run.id)


def cancel_once(cluster: Cluster, fake: FakeUpstream, attempt: int) -> float:
    thread_id, run_id, executor = start_slow_run(cluster, fake, f"cancel-{attempt}-{uuid.uuid4().hex[:8]}")
    other = (executor + 1 + attempt % (len(cluster.replicas) - 1)) % len(cluster.replicas)
    with cluster.replica_client(other) as client:
        started = time.monotonic()
        client.beta.threads.runs.cancel(run_id, thread_id=thread_id)
        run = wait_until(
            lambda: client.beta.threads.runs.retrieve(run_id, thread_id=thread_id),
            lambda r: r.status != "cancelling",
            60,
            "the cancel",
        )
        seconds = time.monotonic() - started
    assert run.status == "cancelled", run.status
    return seconds


def kill_once(cluster: Cluster, fake: FakeUpstream, attempt: int) -> dict[str, Any]:
    model = f"kill-{attempt}-{uuid.uuid4().hex[:8]}"
    thread_id, run_id, executor = start_slow_run(cluster, fake, model)
    fake.script(model, Reply.say("Resumed."))
    killed_at = time.monotonic()
    cluster.kill(executor)
    outcome: dict[str, Any] = {"executor": executor}
    try:
        with cluster.client() as client:
            try:
                run = wait_until(
                    lambda: client.beta.threads.runs.retrieve(run_id, thread_id=thread_id),
                    lambda r: r.status in TERMINAL,
                    120,
                    "recovery",
                )
            except TimeoutError:
                outcome.update(status="lost", lost=True, doubled=False, recovery_s=None)
                return outcome
            outcome["recovery_s"] = time.monotonic() - killed_at
            outcome["status"] = run.status
            outcome["lost"] = False
            outcome["doubled"] = doubled(cluster, client, thread_id, run_id) or len(fake.requests(model)) > 2
            outcome["upstream_requests"] = len(fake.requests(model))
    finally:
        cluster.restart(executor)
    return outcome


# --- signals: NOTIFY vs polling only -----------------------------------------------------------


def pickup_once(cluster: Cluster, fake: FakeUpstream, model: str) -> float:
    """A run created through replica 0 (its one slot busy): seconds until another replica claimed it."""
    with cluster.replica_client(0) as first:
        assistant = first.beta.assistants.create(model=model)
        thread = first.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = first.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        created = time.monotonic()
        wait_until(
            lambda: cluster.fetch("SELECT status FROM runs WHERE id = $1", run.id)[0][0],
            lambda status: status != "queued",
            60,
            "another replica to claim the run",
        )
        seconds = time.monotonic() - created
        wait_until(
            lambda: first.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status,
            lambda status: status in TERMINAL,
            60,
            "the run to end",
        )
    return seconds


def measure_signals(
    postgres: TestPostgres, s3: MotoS3, fake: FakeUpstream, root: Path, args: argparse.Namespace, notify: bool
) -> dict[str, Any]:
    bucket = f"assistd-bench-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(bucket)
    env = {
        "ASSISTD_UPSTREAM_BASE_URL": fake.base_url,
        "ASSISTD_LEASE_SECONDS": str(args.lease_seconds),
        "ASSISTD_WORKER_POLL_SECONDS": str(args.worker_poll_seconds),
        "ASSISTD_WORKER_CONCURRENCY": "1",
        "ASSISTD_LISTEN_NOTIFY": "true" if notify else "false",
    }
    mode = "notify" if notify else "polling"
    cluster = Cluster(
        postgres.new_database(), s3.assistd_env(bucket, "files/"), root / mode, replicas=args.replicas, env=env
    )
    with cluster:
        cancels = [cancel_once(cluster, fake, i) for i in range(args.cancels)]
        print(f"{mode} cancels: {[round(c, 3) for c in cancels]}", file=sys.stderr)
        busy = f"busy-{uuid.uuid4().hex[:8]}"
        quick = f"quick-{uuid.uuid4().hex[:8]}"
        fake.script(busy, Reply(text="slow " * 6000, interval=0.1))
        fake.script(quick, Reply.say("ok"))
        with cluster.replica_client(0) as first:
            assistant = first.beta.assistants.create(model=busy)
            thread = first.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
            with first.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as events:
                next(iter(events))  # thread.run.created: replica 0 holds it
                pickups = [pickup_once(cluster, fake, quick) for _ in range(args.pickups)]
                print(f"{mode} pickups: {[round(p, 3) for p in pickups]}", file=sys.stderr)
    return {
        "cancel_s": {"n": len(cancels), "p50": pct(cancels, 50), "p90": pct(cancels, 90), "max": max(cancels)},
        "pickup_s": {"n": len(pickups), "p50": pct(pickups, 50), "p90": pct(pickups, 90), "max": max(pickups)},
    }


def signals_main(args: argparse.Namespace) -> int:
    started = time.time()
    load_before = loadavg()
    warn_if_loaded("bench_cluster", load_before)
    root = Path(tempfile.mkdtemp(prefix="assistd-bench-signals-"))
    postgres = TestPostgres()
    try:
        with MotoS3(log_dir=root) as s3, FakeUpstream() as fake:
            figures = {
                mode: measure_signals(postgres, s3, fake, root, args, notify=mode == "notify")
                for mode in ("notify", "polling")
            }
    finally:
        postgres.close()
    result = {
        **result_head("cluster-signals", started, machine(load_before), versions(["openai", "asyncpg", "sqlalchemy"])),
        "settings": {k: v for k, v in vars(args).items() if k != "output"},
        "figures": figures,
    }
    path = write_result(result, args.output, started)
    print("\n" + heading(f"cross-replica signals: {args.replicas} replicas on PostgreSQL, NOTIFY vs polling", result))
    print(f"\nworker poll {args.worker_poll_seconds:g} s, worker concurrency 1\n")
    print("| signals | cancel via another replica p50 / p90 / max | run queued -> claimed elsewhere p50 / p90 / max |")
    print("|---|---|---|")
    for mode, label in (
        ("notify", "LISTEN/NOTIFY (default)"),
        ("polling", "polling only (ASSISTD_LISTEN_NOTIFY=false)"),
    ):
        c, p = figures[mode]["cancel_s"], figures[mode]["pickup_s"]
        cancel = f"{fmt(c['p50'])} / {fmt(c['p90'])} / {fmt(c['max'])} s (n={c['n']})"
        pickup = f"{fmt(p['p50'])} / {fmt(p['p90'])} / {fmt(p['max'])} s (n={p['n']})"
        print(f"| {label} | {cancel} | {pickup} |")
    print(f"\nresults: {path}")
    return 0


def doubled(cluster: Cluster, client: Any, thread_id: str, run_id: str) -> bool:
    """More than one run row, assistant message, or message_creation step for one run."""
    runs = cluster.fetch("SELECT count(*) FROM runs WHERE id = $1", run_id)[0][0]
    messages = [m for m in client.beta.threads.messages.list(thread_id) if m.role == "assistant"]
    steps = list(client.beta.threads.runs.steps.list(run_id, thread_id=thread_id))
    return runs != 1 or len(messages) > 1 or sum(s.type == "message_creation" for s in steps) > 1


def kill_in_flight(cluster: Cluster, fake: FakeUpstream, n: int, round_: int) -> list[dict[str, Any]]:
    """N runs in flight over the replicas; the replica executing most of them is SIGKILLed."""
    runs: list[tuple[str, str, str]] = []  # model, thread, run
    with cluster.client() as client:
        for i in range(n):
            model = f"flight-{round_}-{i}-{uuid.uuid4().hex[:8]}"
            fake.script(model, Reply(text="slow " * 600, interval=0.1), Reply.say("Resumed."))
            assistant = client.beta.assistants.create(model=model)
            thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
            # Each replica in turn: the one a run is created on claims it at once.
            with cluster.replica_client(i % len(cluster.replicas)) as creator:
                run = creator.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
            runs.append((model, thread.id, run.id))
        for _, thread_id, _ in runs:
            wait_until(
                lambda t=thread_id: [m for m in client.beta.threads.messages.list(t) if m.role == "assistant"],
                lambda ms: len(ms) == 1,
                60,
                "every run's message",
            )
    executors = {run_id: cluster.executing_replica(run_id) for _, _, run_id in runs}
    held = [index for index in executors.values() if index is not None]
    victim = max(set(held), key=held.count)
    killed_at = time.monotonic()
    cluster.kill(victim)
    outcomes: list[dict[str, Any]] = []
    try:
        with cluster.client() as client:
            pending = {run_id: (model, thread_id) for model, thread_id, run_id in runs}
            ended: dict[str, tuple[str, float]] = {}
            deadline = time.monotonic() + 150
            while pending and time.monotonic() < deadline:
                for run_id, (_, thread_id) in list(pending.items()):
                    status = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id).status
                    if status in TERMINAL:
                        ended[run_id] = (status, time.monotonic() - killed_at)
                        del pending[run_id]
                time.sleep(0.1)
            for model, thread_id, run_id in runs:
                killed = executors[run_id] == victim
                status, seconds = ended.get(run_id, ("lost", None))
                requests = len(fake.requests(model))
                outcomes.append(
                    {
                        "killed": killed,
                        "status": status,
                        "lost": status == "lost",
                        "doubled": doubled(cluster, client, thread_id, run_id) or requests > (2 if killed else 1),
                        "seconds": seconds,
                        "upstream_requests": requests,
                    }
                )
    finally:
        cluster.restart(victim)
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--cancels", type=int, default=10)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--in-flight", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--lease-seconds", type=float, default=5.0)
    parser.add_argument("--worker-poll-seconds", type=float, default=1.0)
    parser.add_argument("--signals", action="store_true", help="only cancel and pickup latency, NOTIFY vs polling")
    parser.add_argument("--pickups", type=int, default=10)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.replicas < 2:
        parser.error("--replicas must be at least 2")
    if args.signals:
        return signals_main(args)

    started = time.time()
    load_before = loadavg()
    warn_if_loaded("bench_cluster", load_before)
    root = Path(tempfile.mkdtemp(prefix="assistd-bench-cluster-"))
    postgres = TestPostgres()
    try:
        with MotoS3(log_dir=root) as s3, FakeUpstream() as fake:
            bucket = f"assistd-bench-{uuid.uuid4().hex[:8]}"
            s3.create_bucket(bucket)
            env = {
                "ASSISTD_UPSTREAM_BASE_URL": fake.base_url,
                "ASSISTD_LEASE_SECONDS": str(args.lease_seconds),
                "ASSISTD_WORKER_POLL_SECONDS": str(args.worker_poll_seconds),
                "ASSISTD_POLL_AFTER_MS": "500",  # the server's default (the tests' clusters use 20)
            }
            cluster = Cluster(
                postgres.new_database(), s3.assistd_env(bucket, "files/"), root, replicas=args.replicas, env=env
            )
            with cluster:
                flows: dict[str, str] = {}
                for flow in FLOWS:
                    try:
                        flow(cluster, fake)
                        flows[flow.__name__] = "passed"
                    except Exception as exc:  # noqa: BLE001 - a failed flow is a figure, not a crash
                        traceback.print_exc()
                        flows[flow.__name__] = f"FAILED: {exc}"
                print(f"flows: {sum(v == 'passed' for v in flows.values())}/{len(flows)}", file=sys.stderr)

                cancels = [cancel_once(cluster, fake, i) for i in range(args.cancels)]
                print(f"cancels: {[round(c, 3) for c in cancels]}", file=sys.stderr)
                kills = []
                for i in range(args.kills):
                    kills.append(kill_once(cluster, fake, i))
                    print(f"kill {i + 1}/{args.kills}: {kills[-1]}", file=sys.stderr)
                flights: list[dict[str, Any]] = []
                for i in range(args.rounds):
                    flights.extend(kill_in_flight(cluster, fake, args.in_flight, i))
                    print(f"in flight, round {i + 1}/{args.rounds}: {flights[-args.in_flight :]}", file=sys.stderr)
                served = list(cluster.proxy.served)
    finally:
        postgres.close()

    recoveries = [k["recovery_s"] for k in kills if k["recovery_s"] is not None]
    figures = {
        "flows_passed": sum(v == "passed" for v in flows.values()),
        "flows": flows,
        "cancel_s": {
            "n": len(cancels),
            "p50": pct(cancels, 50),
            "p90": pct(cancels, 90),
            "max": max(cancels, default=0),
        },
        "kills": kills,
        "lost": sum(k["lost"] for k in kills),
        "doubled": sum(k["doubled"] for k in kills),
        "resumed": sum(k["status"] == "completed" for k in kills),
        "failed": sum(k["status"] == "failed" for k in kills),
        "recovery_s": {
            "n": len(recoveries),
            "p50": pct(recoveries, 50),
            "p90": pct(recoveries, 90),
            "mean": statistics.mean(recoveries) if recoveries else None,
        },
        "proxy_connections_per_replica": served,
        "in_flight": flight_figures(flights),
    }
    result = {
        **result_head("cluster", started, machine(load_before), versions(["openai", "asyncpg", "sqlalchemy"])),
        "settings": {k: v for k, v in vars(args).items() if k != "output"},
        "figures": figures,
    }
    path = write_result(result, args.output, started)

    c, r = figures["cancel_s"], figures["recovery_s"]
    print("\n" + heading(f"cluster: {args.replicas} replicas, PostgreSQL + S3 (moto), round-robin proxy", result))
    print(f"\nlease {args.lease_seconds:g} s, worker poll {args.worker_poll_seconds:g} s\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| SDK flows passed | {figures['flows_passed']}/{len(flows)} |")
    cancel = f"{fmt(c['p50'])} / {fmt(c['p90'])} / {fmt(c['max'])} s"
    print(f"| cancel through another replica, p50 / p90 / max (n={c['n']}) | {cancel} |")
    lost_doubled = f"{figures['lost']} / {figures['doubled']}"
    print(f"| runs lost / doubled after SIGKILL of the executor (N={len(kills)}) | {lost_doubled} |")
    print(f"| runs resumed / failed after SIGKILL | {figures['resumed']} / {figures['failed']} |")
    print(
        f"| SIGKILL -> run terminal on another replica, p50 / p90 (n={r['n']}) | {fmt(r['p50'])} / {fmt(r['p90'])} s |"
    )
    f = figures["in_flight"]
    print(f"| in flight: runs (of which on the killed replica), {args.rounds} rounds | {f['runs']} ({f['killed']}) |")
    print(f"| in flight: runs lost / doubled | {f['lost']} / {f['doubled']} |")
    print(f"| in flight: killed replica's runs resumed / failed | {f['resumed']} / {f['failed']} |")
    rs = f["resumed_s"]
    print(
        "| in flight: SIGKILL -> resumed run completed, p50 / p90 / max | "
        f"{fmt(rs['p50'])} / {fmt(rs['p90'])} / {fmt(rs['max'])} s |"
    )
    us = f["untouched_s"]
    print(f"| in flight: SIGKILL -> untouched run completed, p50 / max | {fmt(us['p50'])} / {fmt(us['max'])} s |")
    print(f"| proxy connections per replica | {' / '.join(map(str, served))} |")
    for name, outcome in flows.items():
        if outcome != "passed":
            print(f"\n{name}: {outcome}")
    print(f"\nresults: {path}")
    clean = figures["lost"] == figures["doubled"] == f["lost"] == f["doubled"] == 0
    return 0 if figures["flows_passed"] == len(flows) and clean else 1


def flight_figures(flights: list[dict[str, Any]]) -> dict[str, Any]:
    killed = [o for o in flights if o["killed"]]
    resumed = [o["seconds"] for o in killed if o["status"] == "completed"]
    untouched = [o["seconds"] for o in flights if not o["killed"] and o["status"] == "completed"]
    return {
        "runs": len(flights),
        "killed": len(killed),
        "lost": sum(o["lost"] for o in flights),
        "doubled": sum(o["doubled"] for o in flights),
        "resumed": len(resumed),
        "failed": sum(o["status"] == "failed" for o in killed),
        "resumed_s": {
            "n": len(resumed),
            "p50": pct(resumed, 50),
            "p90": pct(resumed, 90),
            "max": max(resumed, default=0),
        },
        "untouched_s": {"n": len(untouched), "p50": pct(untouched, 50), "max": max(untouched, default=0)},
        "outcomes": flights,
    }


if __name__ == "__main__":
    sys.exit(main())
