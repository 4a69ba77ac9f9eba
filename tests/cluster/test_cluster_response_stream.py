"""A background response's stream served by any replica (docs/responses.md "Resuming a background
response's stream"): read live from a replica that is not executing it, and carried on, numbered on,
when its executor is killed and another replica resumes it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from assistd.testing.cluster import Cluster
from assistd.testing.fake_upstream import FakeUpstream, Reply

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
TEXT = " ".join(f"w{i}" for i in range(30))


@pytest.fixture(scope="module")
def replicas(request: pytest.FixtureRequest, cluster_starter: Callable[..., Iterator[Cluster]]) -> Iterator[Cluster]:
    yield from cluster_starter(request, replicas=2, env={"ASSISTD_DRAIN_SECONDS": "1"})


def events_from(cluster: Cluster, index: int, response_id: str, after: int | None = None) -> list[Any]:
    with cluster.replica_client(index) as client:
        kw = {} if after is None else {"starting_after": after}
        with client.responses.retrieve(response_id, stream=True, **kw) as stream:
            return list(stream)


def test_another_replica_streams_a_background_response_live(replicas: Cluster, fake: FakeUpstream) -> None:
    model = f"cr-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply.say(TEXT, delay=0.5, interval=0.05))
    with replicas.client() as client:
        created = client.responses.create(model=model, input="Count.", background=True)
    executor = replicas.wait_for_executor(created.id)
    other = 1 - executor
    events = events_from(replicas, other, created.id)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == TEXT


def test_a_killed_executors_response_streams_on_from_the_replica_that_resumes_it(
    replicas: Cluster, fake: FakeUpstream
) -> None:
    model = f"ck-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply.say(TEXT, interval=0.2), Reply.say(TEXT))
    with replicas.client() as client:
        created = client.responses.create(model=model, input="Count.", background=True)
    executor = replicas.wait_for_executor(created.id)
    deadline = time.monotonic() + 30
    while not replicas.fetch(
        "SELECT 1 FROM response_events WHERE response_id = $1 AND type = 'response.output_text.delta'", created.id
    ):
        assert time.monotonic() < deadline, "no delta was kept"
        time.sleep(0.05)
    replicas.kill(executor)
    survivor = 1 - executor
    events = events_from(replicas, survivor, created.id)
    assert [e.sequence_number for e in events] == list(range(len(events)))  # numbered on, no gap, no repeat
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == TEXT
    # The resumed executor made the model call again: its message is the one the final response holds.
    done = [e.item.id for e in events if e.type == "response.output_item.done"]
    assert done == [events[-1].response.output[0].id]
    replicas.restart(executor)
