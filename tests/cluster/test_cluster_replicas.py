"""Three replicas on one PostgreSQL and one S3 bucket behind a round-robin proxy, driven with the openai SDK.

Every client opens a fresh connection per request, so consecutive requests reach consecutive replicas:
what one replica wrote is read through the others, a run created on one is polled through the others,
a file uploaded on one is downloaded and searched through the others. Replicas share no directory.
Cancel goes through a replica that is not executing the run; the replica executing a run is killed
(SIGKILL) mid-run, and the run must end exactly once.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import openai
import pytest
from openai import OpenAI

from assistd.retrieval.embedding import MiniLMEmbedder
from assistd.testing.cluster import Cluster
from assistd.testing.fake_upstream import FakeUpstream, Reply

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
MIB = 1024 * 1024
TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}
WEATHER: Any = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}
BOOK = (
    "Call me Ishmael. The great white whale, Moby Dick, was hunted by Captain Ahab of the Pequod, "
    "a whaler out of Nantucket. "
) * 30


def wait_until(probe: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    value = probe()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r}")
        time.sleep(0.05)
        value = probe()
    return value


def served_since(cluster: Cluster, before: list[int]) -> list[int]:
    return [now - then for now, then in zip(cluster.proxy.served, before, strict=True)]


def test_objects_created_on_one_replica_are_read_through_the_others(cluster: Cluster) -> None:
    with cluster.replica_client(0) as first:
        assistant = first.beta.assistants.create(model="gpt-4o", name="shared", metadata={"k": "v"})
        thread = first.beta.threads.create(messages=[{"role": "user", "content": "written on replica 0"}])
    for index in (1, 2):
        with cluster.replica_client(index) as other:
            assert other.beta.assistants.retrieve(assistant.id).metadata == {"k": "v"}
            message = other.beta.threads.messages.list(thread.id, order="asc").data[0]
            assert message.content[0].text.value == "written on replica 0"  # type: ignore[union-attr]
            other.beta.threads.messages.create(thread.id, role="user", content=f"written on replica {index}")

    before = list(cluster.proxy.served)
    with cluster.client() as client:
        texts = [
            [m.content[0].text.value for m in client.beta.threads.messages.list(thread.id, order="asc")]  # type: ignore[union-attr]
            for _ in range(3)
        ]
    assert texts == [[f"written on replica {i}" for i in range(3)]] * 3
    assert served_since(cluster, before) == [1, 1, 1], "three requests through the proxy, one per replica"


def test_a_run_created_on_one_replica_is_polled_to_completion_through_the_others(
    cluster: Cluster, fake: FakeUpstream
) -> None:
    model = f"polled-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply.say("Done, whoever ran it.", delay=0.3))
    before = list(cluster.proxy.served)
    with cluster.client() as client:
        assistant = client.beta.assistants.create(model=model)
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
        )
        assert run.status == "completed", run.last_error
        (message,) = [m for m in client.beta.threads.messages.list(thread.id) if m.role == "assistant"]
        assert message.run_id == run.id
        assert message.content[0].text.value == "Done, whoever ran it."  # type: ignore[union-attr]
    assert min(served_since(cluster, before)) >= 2, "the polls went through every replica"
    assert len(fake.requests(model)) == 1, "one replica executed the run, once"


def test_tool_outputs_are_submitted_through_another_replica_than_the_one_that_asked(
    cluster: Cluster, fake: FakeUpstream
) -> None:
    model = f"tools-{uuid.uuid4().hex[:8]}"
    fake.script(
        model,
        Reply.call("get_weather", {"city": "Paris"}),
        Reply.say("Sunny in Paris."),
        Reply.call("get_weather", {"city": "Oslo"}),
        Reply.say("Snow in Oslo."),
    )
    with cluster.replica_client(0) as first:
        assistant = first.beta.assistants.create(model=model, tools=[WEATHER])
        thread = first.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris?"}])
        run = first.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
        )
    assert run.status == "requires_action"
    call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
    with cluster.replica_client(1) as second:  # polled
        run = second.beta.threads.runs.submit_tool_outputs_and_poll(
            tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}], run_id=run.id, thread_id=thread.id
        )
    assert run.status == "completed", run.last_error

    with cluster.client() as client:  # streamed, through the proxy
        client.beta.threads.messages.create(thread.id, role="user", content="And in Oslo?")
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
        )
        assert run.status == "requires_action"
        call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
        with client.beta.threads.runs.submit_tool_outputs_stream(
            tool_outputs=[{"tool_call_id": call.id, "output": "snow"}], run_id=run.id, thread_id=thread.id
        ) as events:
            names = [event.event for event in events]
        assert names[-1] == "thread.run.completed", names
        texts = [
            m.content[0].text.value  # type: ignore[union-attr]
            for m in client.beta.threads.messages.list(thread.id, order="asc")
            if m.role == "assistant"
        ]
    assert texts == ["Sunny in Paris.", "Snow in Oslo."]
    assert len(fake.requests(model)) == 4


@pytest.mark.skipif(not MiniLMEmbedder.available(), reason="the bundled embedding model is not installed")
def test_a_file_uploaded_on_one_replica_is_downloaded_and_searched_through_the_others(
    cluster: Cluster, fake: FakeUpstream
) -> None:
    payload = os.urandom(MIB) + b"tail"
    with cluster.replica_client(0) as first:
        data = first.files.create(file=("data.bin", payload), purpose="user_data")
        book = first.files.create(file=("moby.txt", BOOK.encode()), purpose="assistants")
    files = [p for r in cluster.replicas for p in r.data_dir.rglob("*") if p.is_file()]
    assert not [p for p in files if p.stat().st_size in (len(payload), len(BOOK))], "the bytes live in the bucket"
    for index in (1, 2):
        with cluster.replica_client(index) as other:
            assert other.files.content(data.id).read() == payload
    with cluster.replica_client(1) as second:
        store = second.vector_stores.create(name="cluster library", file_ids=[book.id])
    with cluster.replica_client(2) as third:
        done = third.vector_stores.files.poll(book.id, vector_store_id=store.id, poll_interval_ms=50)
        assert done.status == "completed", done.last_error
        hits = third.vector_stores.search(store.id, query="Who hunted the white whale?")
        assert hits.data and hits.data[0].file_id == book.id

    model = f"cluster-fs-{uuid.uuid4().hex[:8]}"
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
        steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread.id))
        assert [s.type for s in steps] == ["message_creation", "tool_calls"]
    tool_output = next(m for m in fake.requests(model)[1]["messages"] if m["role"] == "tool")["content"]
    assert "Captain Ahab" in tool_output


def test_a_run_streams_through_the_proxy_unbuffered(cluster: Cluster, fake: FakeUpstream) -> None:
    model = f"stream-{uuid.uuid4().hex[:8]}"
    words = 20
    fake.script(model, Reply.say(" ".join(f"w{i}" for i in range(words)), interval=0.05))
    with cluster.client() as client:
        assistant = client.beta.assistants.create(model=model)
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        arrivals: list[float] = []
        names: list[str] = []
        with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as events:
            for event in events:
                names.append(event.event)
                if event.event == "thread.message.delta":
                    arrivals.append(time.monotonic())
            final = events.get_final_run()
        assert final.status == "completed"
        assert names[0] == "thread.run.created" and names[-1] == "thread.run.completed"
        assert len(arrivals) >= words
        # 20 chunks 50 ms apart: a proxy that buffered the response would deliver them at once.
        assert arrivals[-1] - arrivals[0] > 0.5, f"deltas arrived within {arrivals[-1] - arrivals[0]:.3f} s"
        (message,) = [m for m in client.beta.threads.messages.list(thread.id) if m.role == "assistant"]
        assert message.content[0].text.value.split() == [f"w{i}" for i in range(words)]  # type: ignore[union-attr]


def start_slow_run(cluster: Cluster, fake: FakeUpstream, model: str) -> tuple[str, str, int]:
    """A run streaming for a minute: (thread id, run id, the replica executing it), once it is writing its message."""
    fake.script(model, Reply(text="slow " * 600, interval=0.1))
    with cluster.client() as client:
        assistant = client.beta.assistants.create(model=model)
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        wait_for_message(client, thread.id)
    return thread.id, run.id, cluster.wait_for_executor(run.id)


def wait_for_message(client: OpenAI, thread_id: str) -> None:
    wait_until(
        lambda: [m for m in client.beta.threads.messages.list(thread_id) if m.role == "assistant"],
        lambda ms: len(ms) == 1,
        30,
        "the run's message",
    )


class Reader(threading.Thread):
    """A client streaming a run through the proxy, in the background: its events, and how its stream ended."""

    def __init__(self, client: OpenAI, thread_id: str, assistant_id: str) -> None:
        super().__init__(daemon=True)
        self.client, self.thread_id, self.assistant_id = client, thread_id, assistant_id
        self.events: list[str] = []
        self.run_ids: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.client.beta.threads.runs.stream(thread_id=self.thread_id, assistant_id=self.assistant_id) as s:
                for event in s:
                    self.events.append(event.event)
                    if event.event == "thread.run.created":
                        self.run_ids.append(event.data.id)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            self.error = exc


def test_cancel_through_a_replica_that_is_not_executing_the_run(cluster: Cluster, fake: FakeUpstream) -> None:
    latencies: list[float] = []
    for attempt in range(5):
        thread_id, run_id, executor = start_slow_run(cluster, fake, f"cancel-{attempt}-{uuid.uuid4().hex[:8]}")
        other = (executor + 1 + attempt % 2) % len(cluster.replicas)
        with cluster.replica_client(other) as client:
            started = time.monotonic()
            assert client.beta.threads.runs.cancel(run_id, thread_id=thread_id).status == "cancelling"
            run = wait_until(
                lambda c=client, t=thread_id, r=run_id: c.beta.threads.runs.retrieve(r, thread_id=t),
                lambda r: r.status != "cancelling",
                30,
                "the run to leave cancelling",
            )
            latencies.append(time.monotonic() - started)
            assert run.status == "cancelled"
    p50 = statistics.median(latencies)
    print(f"\ncancel through another replica: p50 {p50:.2f} s, max {max(latencies):.2f} s ({len(latencies)} runs)")
    assert p50 < 1.0, latencies


@pytest.mark.parametrize("mode", ["polled", "streamed"])
def test_killing_the_replica_executing_a_run_resumes_it_on_another(
    cluster: Cluster, fake: FakeUpstream, mode: str
) -> None:
    """The run is resumed by another replica (issue 15 item 4): the model call the dead replica was
    streaming is made again, its half-written message replaced; the run completes with one message.

    A streaming client of the killed replica loses its stream (an error, not a hang); a polled client
    sees the run complete through the other replicas.
    """
    model = f"killed-{mode}-{uuid.uuid4().hex[:8]}"
    closing = contextlib.ExitStack()
    reader: Reader | None = None
    if mode == "polled":
        thread_id, run_id, executor = start_slow_run(cluster, fake, model)
    else:
        fake.script(model, Reply(text="slow " * 600, interval=0.1))
        streaming = closing.enter_context(cluster.client())
        assistant = streaming.beta.assistants.create(model=model)
        thread_id = streaming.beta.threads.create(messages=[{"role": "user", "content": "hi"}]).id
        reader = Reader(streaming, thread_id, assistant.id)
        reader.start()
        wait_until(lambda: list(reader.events), lambda e: "thread.message.delta" in e, 30, "the stream's deltas")
        run_id = reader.run_ids[0]
        executor = cluster.wait_for_executor(run_id)
    fake.script(model, Reply.say("Finished by another replica."))
    with cluster.client() as client:
        (half,) = [m for m in client.beta.threads.messages.list(thread_id) if m.role == "assistant"]
        assert half.status == "in_progress"
    killed_at = time.monotonic()
    cluster.kill(executor)
    try:
        if reader is not None:
            reader.join(10)
            assert not reader.is_alive(), "the stream of a killed replica hangs instead of ending"
            assert reader.error is not None, "the stream of a killed replica ended as if complete"
            assert "thread.run.completed" not in reader.events and "thread.run.failed" not in reader.events
        with cluster.client() as client:
            run = wait_until(
                lambda: client.beta.threads.runs.retrieve(run_id, thread_id=thread_id),
                lambda r: r.status in TERMINAL,
                60,
                "another replica to resume the run",
            )
            resumed_in = time.monotonic() - killed_at
            print(f"\n{mode} run of a killed replica ended {run.status} after {resumed_in:.1f} s")
            assert run.status == "completed", run.last_error
            assert len(fake.requests(model)) == 2, "the interrupted model call was made once more"
            assert cluster.fetch("SELECT resumes FROM runs WHERE id = $1", run_id) == [(1,)]
            runs = list(client.beta.threads.runs.list(thread_id))
            assert [r.id for r in runs] == [run_id]
            messages = [m for m in client.beta.threads.messages.list(thread_id) if m.role == "assistant"]
            assert len(messages) == 1 and messages[0].run_id == run_id and messages[0].id != half.id
            assert messages[0].status == "completed"
            assert messages[0].content[0].text.value == "Finished by another replica."
            (step,) = client.beta.threads.runs.steps.list(run_id, thread_id=thread_id)
            assert step.status == "completed" and step.step_details.message_creation.message_id == messages[0].id
            # Every live replica sees the same single terminal state, and it stays.
            for index in cluster.alive():
                with cluster.replica_client(index) as direct:
                    assert direct.beta.threads.runs.retrieve(run_id, thread_id=thread_id).status == "completed"
    finally:
        closing.close()
        cluster.restart(executor)

    assert cluster.executing_replica(run_id) is None
    with cluster.replica_client(executor) as restarted:
        assert restarted.beta.threads.runs.retrieve(run_id, thread_id=thread_id).status == "completed"
        follow_up = f"after-{model}"
        fake.script(follow_up, Reply.say("Back again."))
        assistant = restarted.beta.assistants.create(model=follow_up)
        run = restarted.beta.threads.runs.create_and_poll(
            thread_id=thread_id, assistant_id=assistant.id, poll_interval_ms=50
        )
        assert run.status == "completed", run.last_error
    assert len(fake.requests(model)) == 2


def test_one_thread_gets_one_active_run_when_three_replicas_are_asked_at_once(
    cluster: Cluster, fake: FakeUpstream
) -> None:
    model = f"race-{uuid.uuid4().hex[:8]}"
    fake.script(model, *[Reply(text="slow " * 600, interval=0.1) for _ in range(3)])
    with cluster.client() as client:
        assistant = client.beta.assistants.create(model=model)
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    clients = [cluster.replica_client(i) for i in range(len(cluster.replicas))]
    barrier = threading.Barrier(len(clients))
    created: list[str] = []
    refused: list[str] = []

    def create(client: OpenAI) -> None:
        barrier.wait()
        try:
            created.append(client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id).id)
        except openai.BadRequestError as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=create, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert len(created) == 1, (created, refused)
        assert len(refused) == len(clients) - 1 and all("already has an active run" in r for r in refused), refused
        (run_id,) = created
        with pytest.raises(openai.BadRequestError):
            clients[1].beta.threads.messages.create(thread.id, role="user", content="while it runs")
        assert clients[2].beta.threads.runs.cancel(run_id, thread_id=thread.id).status in ("cancelling", "cancelled")
        run = wait_until(
            lambda: clients[0].beta.threads.runs.retrieve(run_id, thread_id=thread.id),
            lambda r: r.status in TERMINAL,
            30,
            "the cancel",
        )
        assert run.status == "cancelled"
    finally:
        for c in clients:
            c.close()


def test_a_run_cancelled_while_its_replica_is_dead_ends_cancelled_not_failed(
    cluster: Cluster, fake: FakeUpstream
) -> None:
    thread_id, run_id, executor = start_slow_run(cluster, fake, f"dead-cancel-{uuid.uuid4().hex[:8]}")
    cluster.kill(executor)
    try:
        with cluster.client() as client:
            assert client.beta.threads.runs.cancel(run_id, thread_id=thread_id).status == "cancelling"
            run = wait_until(
                lambda: client.beta.threads.runs.retrieve(run_id, thread_id=thread_id),
                lambda r: r.status != "cancelling",
                60,
                "another replica to end the dead replica's cancelled run",
            )
            assert run.status == "cancelled", run
            (message,) = [m for m in client.beta.threads.messages.list(thread_id) if m.role == "assistant"]
            assert message.status == "incomplete"
    finally:
        cluster.restart(executor)


def test_a_thread_deleted_through_another_replica_stops_its_run_and_leaves_no_rows(
    cluster: Cluster, fake: FakeUpstream
) -> None:
    thread_id, run_id, executor = start_slow_run(cluster, fake, f"deleted-{uuid.uuid4().hex[:8]}")
    with cluster.replica_client((executor + 1) % len(cluster.replicas)) as other:
        assert other.beta.threads.delete(thread_id).deleted
    replica = cluster.replicas[executor]
    # Its worker poll or its lease heartbeat (whichever comes first) stops it; either way the run closes
    # itself as deleted (test_cluster_thread_delete.py pins the heartbeat path).
    wait_until(
        lambda: [
            line
            for line in replica.logs().splitlines()
            if run_id in line and ("its thread was deleted" in line or "lease lost" in line)
        ],
        bool,
        30,
        "the executing replica to stop the run",
    )
    for table in ("messages", "runs", "run_steps"):
        assert cluster.fetch(f"SELECT count(*) FROM {table} WHERE thread_id = $1", thread_id) == [(0,)], table
    assert cluster.fetch("SELECT count(*) FROM threads WHERE id = $1", thread_id) == [(0,)]


@pytest.mark.skipif(not MiniLMEmbedder.available(), reason="the bundled embedding model is not installed")
def test_killing_the_replica_ingesting_a_file_leaves_it_ingested_once_by_another(cluster: Cluster) -> None:
    lines = 600  # seconds of embedding: long enough to be killed during it
    text = "".join(
        f"Paragraph {i}: the whaler number {i} sailed from port {i % 97} with {i * 7} barrels.\n" for i in range(lines)
    )
    with cluster.client() as client:
        book = client.files.create(file=("ledger.txt", text.encode()), purpose="assistants")
        store = client.vector_stores.create(name="killed mid-ingestion", file_ids=[book.id])
        ingesting: int = wait_until(
            lambda: cluster.ingesting_replica(store.id, book.id), lambda i: i is not None, 30, "a replica to claim it"
        )
        cluster.kill(ingesting)
        try:
            (status,) = cluster.fetch(
                "SELECT status FROM vector_store_files WHERE vector_store_id = $1 AND id = $2", store.id, book.id
            )
            assert status == ("in_progress",), "the file was ingested before the kill: make it bigger"
            done = wait_until(
                lambda: client.vector_stores.files.retrieve(book.id, vector_store_id=store.id),
                lambda f: f.status != "in_progress",
                120,
                "another replica to ingest the file",
            )
            assert done.status == "completed", done.last_error
            seqs = cluster.fetch("SELECT seq FROM chunks WHERE vector_store_id = $1 ORDER BY seq", store.id)
            assert [s for (s,) in seqs] == list(range(len(seqs))), "chunks missing or doubled"
            for line in (0, lines // 2, lines - 1):  # the whole file, from the first line to the last
                found = cluster.fetch(
                    "SELECT count(*) FROM chunks WHERE vector_store_id = $1 AND text LIKE $2",
                    store.id,
                    f"%Paragraph {line}:%",
                )
                assert found[0][0] in (1, 2), (line, found)  # 2: in the overlap of two chunks
            hits = client.vector_stores.search(store.id, query="whaler number 150")
            assert hits.data and hits.data[0].file_id == book.id
        finally:
            cluster.restart(ingesting)
