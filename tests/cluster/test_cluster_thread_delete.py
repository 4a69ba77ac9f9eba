"""A thread deleted through one replica while another executes its run, when the executor's lease heartbeat
notices before its worker poll does (a long ASSISTD_WORKER_POLL_SECONDS and no NOTIFY make that the only way
here).

docs/runs.md: deleting the thread of an active run stops it as a cancel would, nothing it was writing
survives, and a stream of that run ends with `thread.run.cancelled` and `[DONE]`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from assistd.testing.cluster import Cluster
from assistd.testing.fake_upstream import FakeUpstream, Reply

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture(scope="module")
def heartbeat_cluster(
    request: pytest.FixtureRequest, cluster_starter: Callable[..., Iterator[Cluster]]
) -> Iterator[Cluster]:
    """Two replicas whose worker polls every 60 s, without NOTIFY: the lease heartbeat (every 1 s) is what
    sees a deletion (tests/cluster/test_cluster_wakeups.py has the NOTIFY path)."""
    yield from cluster_starter(
        request, replicas=2, env={"ASSISTD_WORKER_POLL_SECONDS": "60", "ASSISTD_LISTEN_NOTIFY": "false"}
    )


def test_a_stream_whose_thread_is_deleted_through_another_replica_ends_cancelled(
    heartbeat_cluster: Cluster, fake: FakeUpstream
) -> None:
    cluster = heartbeat_cluster
    model = f"deleted-stream-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply(text="slow " * 600, interval=0.1))
    with cluster.replica_client(0) as first:
        assistant = first.beta.assistants.create(model=model)
        thread = first.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        events: list[str] = []
        errors: list[BaseException] = []

        def read() -> None:
            try:
                with first.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
                    events.extend(event.event for event in stream)
            except BaseException as exc:  # noqa: BLE001 - the test looks at it
                errors.append(exc)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.monotonic() + 30
        while "thread.message.delta" not in events:
            assert time.monotonic() < deadline and reader.is_alive(), (events, errors)
            time.sleep(0.05)
        with cluster.replica_client(1) as second:
            assert second.beta.threads.delete(thread.id).deleted
        reader.join(15)
        assert not reader.is_alive(), "the stream did not end"
        assert not errors, errors
        assert events[-1] == "thread.run.cancelled", events[-3:]
    assert "run ended: its thread was deleted" in cluster.replicas[0].logs()
    assert "lease lost" not in cluster.replicas[0].logs()
