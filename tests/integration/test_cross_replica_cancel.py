"""A cancel made through another replica reaches the process executing the run.

Two servers share one database. A run streamed through the first is executed there; the second only
marks it `cancelling`. The first notices on its worker's next poll (it used to be on the lease
heartbeat, every third of ASSISTD_LEASE_SECONDS: 10 s by default) and ends it `cancelled`.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
import warnings

import openai
import pytest

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import LiveServer

BACKENDS = [
    pytest.param(name, marks=pytest.mark.postgres) if name == "postgres" else name
    for name in os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")
]


def client_for(server: LiveServer) -> openai.OpenAI:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_cancel_through_another_replica(request: pytest.FixtureRequest, fake: FakeUpstream, backend: str) -> None:
    model = f"slow-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply(text="slow " * 600, interval=0.1))  # a minute of streaming
    launch = request.getfixturevalue("launch")
    first: LiveServer = launch(request, request.getfixturevalue("tmp_path_factory"), backend)
    second = LiveServer(first.data_dir, env=first.env).start()  # same data dir, same database
    request.addfinalizer(second.stop)
    a, b = client_for(first), client_for(second)
    assistant = a.beta.assistants.create(model=model)
    thread = a.beta.threads.create(messages=[{"role": "user", "content": "hi"}])

    events: list[str] = []
    run_ids: list[str] = []

    def stream() -> None:
        with a.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as events_in:
            for event in events_in:
                events.append(event.event)
                if event.event == "thread.run.created":
                    run_ids.append(event.data.id)

    reader = threading.Thread(target=stream, daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while "thread.message.delta" not in events:
        assert time.monotonic() < deadline, events
        time.sleep(0.05)

    cancelled_at = time.monotonic()
    assert b.beta.threads.runs.cancel(run_ids[0], thread_id=thread.id).status == "cancelling"
    while (run := b.beta.threads.runs.retrieve(run_ids[0], thread_id=thread.id)).status == "cancelling":
        assert time.monotonic() - cancelled_at < 30, "the run stayed cancelling"
        time.sleep(0.05)
    seconds = time.monotonic() - cancelled_at
    reader.join(10)
    print(f"\n[{backend}] cancel through another replica: {seconds:.2f} s to {run.status}")
    assert run.status == "cancelled"
    assert "thread.run.cancelled" in events
    assert seconds < 5  # the worker polls every 0.2 s here; the lease heartbeat came every 10 s
