"""Cross-replica wake-ups through PostgreSQL LISTEN/NOTIFY (db/wakeups.py), the row remaining the truth.

The replicas' worker poll is set to two minutes and their lease to one (its heartbeat every 20 s), so
a cancel, a thread deletion or a queued run that reaches another replica within seconds can only have
travelled by NOTIFY. Killing the listener connections (pg_terminate_backend): each replica opens its
connection again and looks at everything once, so a cancel sent while nobody listened is not lost;
with a short poll, polling alone carries the signals while the listeners are down.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from test_cluster_replicas import Reader, start_slow_run, wait_until

from assistd.db.wakeups import APPLICATION_NAME
from assistd.testing.cluster import Cluster
from assistd.testing.fake_upstream import FakeUpstream, Reply

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

LONG_POLL = {"ASSISTD_WORKER_POLL_SECONDS": "120", "ASSISTD_LEASE_SECONDS": "60", "ASSISTD_WORKER_CONCURRENCY": "1"}


@pytest.fixture(scope="module")
def quiet_cluster(
    request: pytest.FixtureRequest, cluster_starter: Callable[..., Iterator[Cluster]]
) -> Iterator[Cluster]:
    """Three replicas that poll every 2 minutes and execute one run each at a time."""
    yield from cluster_starter(request, replicas=3, env=LONG_POLL)


def listeners(cluster: Cluster) -> list[int]:
    rows = cluster.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
        APPLICATION_NAME,
    )
    return sorted(int(str(row[0])) for row in rows)


def kill_listeners(cluster: Cluster) -> list[int]:
    rows = cluster.fetch(
        "WITH listening AS MATERIALIZED (SELECT pid FROM pg_stat_activity"
        " WHERE application_name = $1 AND datname = current_database())"
        " SELECT pid FROM listening WHERE pg_terminate_backend(pid)",
        APPLICATION_NAME,
    )
    return [int(str(row[0])) for row in rows]


def cancel_through_another(cluster: Cluster, thread_id: str, run_id: str, executor: int, timeout: float) -> float:
    """Cancel through a replica that is not executing the run; seconds until it left `cancelling`."""
    other = (executor + 1) % len(cluster.replicas)
    with cluster.replica_client(other) as client:
        started = time.monotonic()
        assert client.beta.threads.runs.cancel(run_id, thread_id=thread_id).status == "cancelling"
        run = wait_until(
            lambda: client.beta.threads.runs.retrieve(run_id, thread_id=thread_id),
            lambda r: r.status != "cancelling",
            timeout,
            "the run to leave cancelling",
        )
        assert run.status == "cancelled"
        return time.monotonic() - started


def test_cancel_through_another_replica_reaches_the_executor_by_notify(
    quiet_cluster: Cluster, fake: FakeUpstream
) -> None:
    latencies: list[float] = []
    for attempt in range(5):
        thread_id, run_id, executor = start_slow_run(quiet_cluster, fake, f"notify-cancel-{attempt}-{uuid.uuid4().hex}")
        latencies.append(cancel_through_another(quiet_cluster, thread_id, run_id, executor, 30))
    print(f"\ncancel via NOTIFY: p50 {statistics.median(latencies):.3f} s, max {max(latencies):.3f} s")
    # The poll is 120 s and the lease heartbeat 20 s: only the NOTIFY explains a cancel within seconds.
    assert max(latencies) < 3.0, latencies
    assert statistics.median(latencies) < 1.0, latencies


def test_a_thread_deleted_through_another_replica_stops_its_run_by_notify(
    quiet_cluster: Cluster, fake: FakeUpstream
) -> None:
    thread_id, run_id, executor = start_slow_run(quiet_cluster, fake, f"notify-delete-{uuid.uuid4().hex}")
    with quiet_cluster.replica_client((executor + 1) % 3) as client:
        started = time.monotonic()
        assert client.beta.threads.delete(thread_id).deleted
    # The run's rows went with the thread: the executor's log says when it stopped executing it.
    wait_until(
        lambda: quiet_cluster.replicas[executor].logs().splitlines(),
        lambda lines: any("run ended: its thread was deleted" in line and run_id in line for line in lines),
        30,
        "the executor to close the deleted run",
    )
    assert time.monotonic() - started < 3.0


def test_a_run_queued_on_a_busy_replica_is_picked_up_by_an_idle_one(quiet_cluster: Cluster, fake: FakeUpstream) -> None:
    cluster = quiet_cluster
    slow, quick = f"notify-busy-{uuid.uuid4().hex}", f"notify-quick-{uuid.uuid4().hex}"
    fake.script(slow, Reply(text="slow " * 600, interval=0.1))
    fake.script(quick, Reply.say("picked up"))
    with cluster.replica_client(0) as first:
        assistant = first.beta.assistants.create(model=slow)
        thread = first.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        # A stream holds replica 0's only worker slot: it cannot take the next run itself.
        reader = Reader(first, thread.id, assistant.id)
        reader.start()
        wait_until(lambda: reader.run_ids, bool, 30, "the streamed run")
        busy_run = reader.run_ids[0]
        assert cluster.executing_replica(busy_run) == 0
        other = first.beta.assistants.create(model=quick)
        second_thread = first.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        started = time.monotonic()
        run = first.beta.threads.runs.create(thread_id=second_thread.id, assistant_id=other.id)
        done = wait_until(
            lambda: first.beta.threads.runs.retrieve(run.id, thread_id=second_thread.id),
            lambda r: r.status in ("completed", "failed", "cancelled", "expired", "incomplete"),
            30,
            "the queued run to complete",
        )
        elapsed = time.monotonic() - started
        assert done.status == "completed", done
        first.beta.threads.runs.cancel(busy_run, thread_id=thread.id)
        reader.join(15)
    print(f"\nrun queued on a busy replica, completed by another in {elapsed:.3f} s")
    assert elapsed < 3.0  # the idle replicas poll every 120 s


def test_killed_listener_connections_reconnect_and_catch_up(quiet_cluster: Cluster, fake: FakeUpstream) -> None:
    cluster = quiet_cluster
    wait_until(lambda: listeners(cluster), lambda pids: len(pids) == 3, 30, "one listener per replica")
    thread_id, run_id, executor = start_slow_run(cluster, fake, f"notify-killed-{uuid.uuid4().hex}")
    before = listeners(cluster)
    assert len(kill_listeners(cluster)) == 3
    # Sent while the listeners are down (they reconnect after 0.5 s): this NOTIFY reaches nobody. The
    # executor's reconnection looks at every run it executes, and finds this one cancelled.
    latency = cancel_through_another(cluster, thread_id, run_id, executor, 30)
    assert latency < 5.0, latency
    after = wait_until(lambda: listeners(cluster), lambda pids: len(pids) == 3, 30, "the listeners to reconnect")
    assert not set(after) & set(before)
    # And the new connections carry the next cancel.
    thread_id, run_id, executor = start_slow_run(cluster, fake, f"notify-again-{uuid.uuid4().hex}")
    assert cancel_through_another(cluster, thread_id, run_id, executor, 30) < 2.0


@pytest.fixture(scope="module")
def polling_cluster(
    request: pytest.FixtureRequest, cluster_starter: Callable[..., Iterator[Cluster]]
) -> Iterator[Cluster]:
    """Two replicas polling every 0.5 s, the lease heartbeat every 20 s."""
    yield from cluster_starter(
        request, replicas=2, env={"ASSISTD_WORKER_POLL_SECONDS": "0.5", "ASSISTD_LEASE_SECONDS": "60"}
    )


def test_polling_carries_cancels_while_the_listeners_are_down(polling_cluster: Cluster, fake: FakeUpstream) -> None:
    cluster = polling_cluster
    wait_until(lambda: listeners(cluster), lambda pids: len(pids) == 2, 30, "one listener per replica")
    stop = threading.Event()
    killed: list[int] = []

    def keep_killing() -> None:
        while not stop.is_set():
            killed.extend(kill_listeners(cluster))
            time.sleep(0.05)

    killer = threading.Thread(target=keep_killing, daemon=True)
    killer.start()
    try:
        thread_id, run_id, executor = start_slow_run(cluster, fake, f"polled-cancel-{uuid.uuid4().hex}")
        assert killed, "the listeners were killed"
        assert cancel_through_another(cluster, thread_id, run_id, executor, 30) < 3.0
    finally:
        stop.set()
        killer.join(5)
    # Once the database lets them, the listeners are back (after their back-off, at most 15 s).
    wait_until(lambda: listeners(cluster), lambda pids: len(pids) == 2, 40, "the listeners to reconnect")
