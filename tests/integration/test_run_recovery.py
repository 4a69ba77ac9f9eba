"""Crash recovery: SIGKILL a server with runs in every active state, start another on the same storage.

The new process must finish what the dead one left: runs it was executing are resumed once their lease
lapses (the half-written message replaced, the model called again) and complete, queued runs are
executed, runs waiting for tool outputs keep waiting. Nothing stays active forever and no assistant
message is written twice. A run interrupted more often than ASSISTD_RUN_RESUME_LIMIT allows fails.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import openai
import pytest

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import LiveServer

BACKENDS = [
    pytest.param(name, marks=pytest.mark.postgres) if name == "postgres" else name
    for name in os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")
]
STUCK = {"queued", "in_progress", "cancelling"}
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


def _start_server(request: pytest.FixtureRequest, backend: str, env: dict[str, str]) -> LiveServer:
    """A server of its own (data dir, database, settings), from the root conftest's `launch`."""
    launch = request.getfixturevalue("launch")
    server: LiveServer = launch(request, request.getfixturevalue("tmp_path_factory"), backend, env=env)
    return server


def _client(server: LiveServer) -> openai.OpenAI:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)


def wait_until(probe: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    value = probe()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r}")
        time.sleep(0.05)
        value = probe()
    return value


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_with_active_runs_recovers(request: pytest.FixtureRequest, fake: FakeUpstream, backend: str) -> None:
    tag = uuid.uuid4().hex[:8]
    slow_model, queued_model, tool_model = f"slow-{tag}", f"queued-{tag}", f"tool-{tag}"
    fake.script(slow_model, *[Reply(text="slow " * 600, interval=0.1) for _ in range(2)])
    fake.script(slow_model, *[Reply.say("Resumed after the crash.") for _ in range(2)])
    fake.script(queued_model, *[Reply.say(f"queued reply {i}") for i in range(3)])
    fake.script(tool_model, Reply.call("get_weather", {"city": "Paris"}), Reply.say("Sunny, after the crash."))

    # Two worker slots: two slow runs fill them, so the runs created after them stay queued.
    env = {"ASSISTD_LEASE_SECONDS": "1", "ASSISTD_WORKER_CONCURRENCY": "2"}
    first = _start_server(request, backend, env)
    client = _client(first)

    def start(model: str, tools: list[Any] | None = None) -> tuple[str, str]:
        assistant = client.beta.assistants.create(model=model, tools=tools or [])
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        return thread.id, run.id

    def status(c: openai.OpenAI, thread_id: str, run_id: str) -> str:
        return c.beta.threads.runs.retrieve(run_id, thread_id=thread_id).status

    def assistant_messages(c: openai.OpenAI, thread_id: str) -> list[Any]:
        return [m for m in c.beta.threads.messages.list(thread_id) if m.role == "assistant"]

    waiting = start(tool_model, [WEATHER])
    wait_until(lambda: status(client, *waiting), lambda s: s == "requires_action", 20, "requires_action")
    slow = [start(slow_model) for _ in range(2)]
    for thread_id, run_id in slow:
        wait_until(lambda t=thread_id, r=run_id: status(client, t, r), lambda s: s == "in_progress", 20, "in_progress")
        wait_until(lambda t=thread_id: assistant_messages(client, t), lambda ms: len(ms) == 1, 20, "a message")
    queued = [start(queued_model) for _ in range(3)]
    assert [status(client, *q) for q in queued] == ["queued"] * 3
    client.close()

    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    assert len(fake.requests(slow_model)) == 2 and fake.requests(queued_model) == []

    second = LiveServer(first.data_dir, env=first.env).start()  # same data dir, same database
    request.addfinalizer(second.stop)
    client = _client(second)
    try:
        everything = [waiting, *slow, *queued]
        final = wait_until(
            lambda: [client.beta.threads.runs.retrieve(r, thread_id=t) for t, r in everything],
            lambda runs: all(run.status not in STUCK for run in runs),
            30,
            "every run to leave queued/in_progress/cancelling",
        )
        by_id = {run.id: run for run in final}

        for thread_id, run_id in everything:
            messages = [m for m in assistant_messages(client, thread_id) if m.run_id == run_id]
            assert len(messages) <= 1, f"run {run_id} wrote {len(messages)} assistant messages"

        for thread_id, run_id in slow:
            run = by_id[run_id]
            assert run.status == "completed", run.last_error
            assert run.last_error is None and run.completed_at is not None
            # The half-written message was replaced by the resumed call's, not kept beside it.
            (message,) = assistant_messages(client, thread_id)
            assert message.status == "completed" and message.content[0].text.value == "Resumed after the crash."
            (step,) = client.beta.threads.runs.steps.list(run_id, thread_id=thread_id)
            assert step.status == "completed" and step.step_details.message_creation.message_id == message.id
            assert run.usage is not None and run.usage.completion_tokens > 0
            client.beta.threads.messages.create(thread_id, role="user", content="unlocked")
        assert len(fake.requests(slow_model)) == 4, "each interrupted run called the model once more"

        for thread_id, run_id in queued:
            assert by_id[run_id].status == "completed"
            (message,) = assistant_messages(client, thread_id)
            assert message.status == "completed" and message.content[0].text.value.startswith("queued reply")
        assert len(fake.requests(queued_model)) == 3, "each queued run called the model exactly once"

        thread_id, run_id = waiting
        run = by_id[run_id]
        assert run.status == "requires_action"
        call = run.required_action.submit_tool_outputs.tool_calls[0]
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}], run_id=run_id, thread_id=thread_id
        )
        assert run.status == "completed"
        (message,) = assistant_messages(client, thread_id)
        assert message.content[0].text.value == "Sunny, after the crash."
        assert "recovering an orphaned run" in second.logs()
        entries = [json.loads(line) for line in second.log_path.read_text().splitlines() if line.startswith("{")]
        for _, run_id in slow:
            lines = [e for e in entries if e.get("run_id") == run_id and e["msg"] == "run resumed"]
            assert [(e["level"], e["resumes"], e["discarded"]) for e in lines] == [("info", 1, 1)], lines
    finally:
        client.close()


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_run_interrupted_more_often_than_the_resume_limit_fails_saying_so(
    request: pytest.FixtureRequest, fake: FakeUpstream, backend: str
) -> None:
    """Limit 1: the first SIGKILL is survived (resumed by the restarted server), the second is not."""
    model = f"twice-{uuid.uuid4().hex[:8]}"
    fake.script(model, *[Reply(text="slow " * 600, interval=0.1) for _ in range(2)])
    env = {"ASSISTD_LEASE_SECONDS": "1", "ASSISTD_RUN_RESUME_LIMIT": "1"}
    server = _start_server(request, backend, env)
    client = _client(server)
    assistant = client.beta.assistants.create(model=model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    client.close()
    for attempt in (1, 2):
        client = _client(server)
        wait_until(lambda: len(fake.requests(model)), lambda n, a=attempt: n == a, 30, f"model call {attempt}")
        wait_until(
            lambda c=client: [m for m in c.beta.threads.messages.list(thread.id) if m.role == "assistant"],
            lambda ms: len(ms) == 1 and ms[0].status == "in_progress",
            30,
            f"attempt {attempt}'s message",
        )
        client.close()
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        server = LiveServer(server.data_dir, env=server.env).start()
        request.addfinalizer(server.stop)
    client = _client(server)
    try:
        final = wait_until(
            lambda: client.beta.threads.runs.retrieve(run.id, thread_id=thread.id),
            lambda r: r.status not in STUCK,
            30,
            "the run to end",
        )
        assert final.status == "failed"
        assert final.last_error is not None and final.last_error.code == "server_error"
        assert "interrupted 2 times" in final.last_error.message
        assert "ASSISTD_RUN_RESUME_LIMIT" in final.last_error.message
        assert len(fake.requests(model)) == 2, "the run was not executed a third time"
        # The second attempt's half-written message ends with the run; the first one's was replaced.
        (message,) = [m for m in client.beta.threads.messages.list(thread.id) if m.role == "assistant"]
        assert message.status == "incomplete" and message.incomplete_details.reason == "run_failed"
        (step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
        assert step.status == "failed"
    finally:
        client.close()
