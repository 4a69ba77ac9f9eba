"""/metrics on replicas of one database (issue 15, item 6): the gauges read from the database are the
same on every replica, and what each process records (run and model-call latency) adds up over the
replicas to what the cluster did, wherever the runs were executed (docs/deployment.md#metrics)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from assistd.testing.cluster import Cluster
from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.metrics import count, scrape, value

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture(scope="module")
def pair(request: pytest.FixtureRequest, cluster_starter: Callable[..., Iterator[Cluster]]) -> Iterator[Cluster]:
    yield from cluster_starter(request, replicas=2)


def test_replicas_agree_on_the_database_and_add_up_their_own(pair: Cluster, fake: FakeUpstream) -> None:
    model = f"metrics-{uuid.uuid4().hex[:8]}"
    fake.script(model, *[Reply.say(f"Answer {i}.") for i in range(4)])
    for i in range(4):
        with pair.replica_client(i % 2) as client:
            assistant = client.beta.assistants.create(model=model)
            assert client.beta.threads.create_and_run_poll(assistant_id=assistant.id).status == "completed"

    scrapes = [scrape(replica) for replica in pair.replicas]
    for samples in scrapes:
        assert value(samples, "assistd_runs", status="completed", model=model) == 4
        assert value(samples, "assistd_run_queue_depth") == 0
    runs = sum(count(s, "assistd_run_duration_seconds", status="completed") for s in scrapes)
    calls = sum(
        count(s, "assistd_model_call_duration_seconds", backend="upstream", model=model, outcome="ok") for s in scrapes
    )
    assert (runs, calls) == (4, 4)
