"""Runs survive their executor (issue 15 item 4): a replica killed (SIGKILL) mid-run, in the model call,
in a server-side tool, or after a completed tool step, and the run is resumed by another replica from
its last durable point: completed steps kept, the interrupted call made again, nothing doubled.

This module's cluster allows one resume per run (ASSISTD_RUN_RESUME_LIMIT=1): a second interruption
fails the run, saying so. An executor that was only stalled (SIGSTOP) past its lease finds its run
resumed elsewhere and writes nothing more. The slow-stream case (polled and streamed) is in
test_cluster_replicas.py.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from assistd.testing.cluster import Cluster
from assistd.testing.fake_upstream import FakeUpstream, Reply

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}
ANSWERED_AFTER_TOOL = [("tool_calls", "completed"), ("message_creation", "completed")]
SLEEPY = "import time\ntime.sleep(40)\nprint('woke up')"


@pytest.fixture(scope="module")
def resuming(
    request: pytest.FixtureRequest, cluster_starter: Callable[..., Iterator[Cluster]], sandbox_python: Path
) -> Iterator[Cluster]:
    env = {
        "ASSISTD_RUN_RESUME_LIMIT": "1",
        "ASSISTD_SANDBOX_PYTHON": str(sandbox_python),
        "ASSISTD_DRAIN_SECONDS": "1",  # a stopped replica cuts its runs quickly
    }
    yield from cluster_starter(request, env=env)


def wait_until(probe: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    value = probe()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r}")
        time.sleep(0.05)
        value = probe()
    return value


def start_run(cluster: Cluster, model: str, tools: list[Any]) -> tuple[str, str]:
    with cluster.client() as client:
        assistant = client.beta.assistants.create(model=model, tools=tools)
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "What is 6 times 7?"}])
        run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    return thread.id, run.id


def steps_of(client: OpenAI, thread_id: str, run_id: str) -> list[Any]:
    return list(client.beta.threads.runs.steps.list(run_id, thread_id=thread_id, order="asc"))


def assistant_messages(client: OpenAI, thread_id: str) -> list[Any]:
    return [m for m in client.beta.threads.messages.list(thread_id) if m.role == "assistant"]


def wait_for_end(client: OpenAI, thread_id: str, run_id: str) -> Any:
    return wait_until(
        lambda: client.beta.threads.runs.retrieve(run_id, thread_id=thread_id),
        lambda r: r.status in TERMINAL,
        90,
        "the run to end on another replica",
    )


def test_a_replica_killed_during_a_server_side_tool_call_has_the_call_made_again_elsewhere(
    resuming: Cluster, fake: FakeUpstream
) -> None:
    model = f"tool-kill-{uuid.uuid4().hex[:8]}"
    fake.script(
        model,
        Reply.call("code_interpreter", {"code": SLEEPY}),
        Reply.call("code_interpreter", {"code": "print(6 * 7)"}),
        Reply.say("It is 42."),
    )
    thread_id, run_id = start_run(resuming, model, [{"type": "code_interpreter"}])
    with resuming.client() as client:
        (interrupted,) = wait_until(
            lambda: steps_of(client, thread_id, run_id), lambda s: len(s) == 1, 60, "the tool step"
        )
        assert interrupted.type == "tool_calls" and interrupted.status == "in_progress"
    executor = resuming.wait_for_executor(run_id)
    resuming.kill(executor)
    try:
        with resuming.client() as client:
            run = wait_for_end(client, thread_id, run_id)
            assert run.status == "completed", run.last_error
            steps = steps_of(client, thread_id, run_id)
            assert [(s.type, s.status) for s in steps] == [
                ("tool_calls", "completed"),
                ("message_creation", "completed"),
            ]
            assert interrupted.id not in [s.id for s in steps], "the half-run tool step was kept"
            (call,) = steps[0].step_details.tool_calls
            assert call.code_interpreter.input == "print(6 * 7)"
            assert [o.logs for o in call.code_interpreter.outputs if o.type == "logs"] == ["42\n"]
            (message,) = assistant_messages(client, thread_id)
            assert message.status == "completed" and message.content[0].text.value == "It is 42."
            assert steps[1].step_details.message_creation.message_id == message.id
            assert len(fake.requests(model)) == 3
    finally:
        resuming.restart(executor)


def test_a_replica_killed_after_a_completed_tool_step_keeps_the_step_and_its_output(
    resuming: Cluster, fake: FakeUpstream
) -> None:
    model = f"after-tool-{uuid.uuid4().hex[:8]}"
    fake.script(
        model,
        Reply.call("code_interpreter", {"code": "print(6 * 7)"}),
        Reply(text="slow " * 600, interval=0.1),
        Reply.say("It is 42."),
    )
    thread_id, run_id = start_run(resuming, model, [{"type": "code_interpreter"}])
    with resuming.client() as client:
        kept, _ = wait_until(
            lambda: steps_of(client, thread_id, run_id),
            lambda s: len(s) == 2 and s[0].status == "completed" and s[1].status == "in_progress",
            60,
            "the completed tool step and the message being written",
        )
        (half,) = assistant_messages(client, thread_id)
        assert half.status == "in_progress"
    executor = resuming.wait_for_executor(run_id)
    resuming.kill(executor)
    try:
        with resuming.client() as client:
            run = wait_for_end(client, thread_id, run_id)
            assert run.status == "completed", run.last_error
            steps = steps_of(client, thread_id, run_id)
            assert [(s.id, s.status) for s in steps][0] == (kept.id, "completed")
            assert [(s.type, s.status) for s in steps] == [
                ("tool_calls", "completed"),
                ("message_creation", "completed"),
            ]
            assert steps[0].model_dump()["step_details"] == kept.model_dump()["step_details"]
            (message,) = assistant_messages(client, thread_id)
            assert message.id != half.id and message.content[0].text.value == "It is 42."
            assert steps[1].step_details.message_creation.message_id == message.id
            # Three model calls: the tool's output was not recomputed, the resumed call read it.
            requests = fake.requests(model)
            assert len(requests) == 3
            tool_outputs = [m["content"] for m in requests[2]["messages"] if m["role"] == "tool"]
            assert len(tool_outputs) == 1 and "42" in str(tool_outputs[0])
            # The usage the lost attempt recorded (the tool step's call) is kept in the run's.
            assert run.usage is not None and steps[0].usage is not None
            assert run.usage.prompt_tokens >= steps[0].usage.prompt_tokens + steps[1].usage.prompt_tokens
    finally:
        resuming.restart(executor)


def test_a_run_interrupted_past_the_resume_limit_fails_saying_so(resuming: Cluster, fake: FakeUpstream) -> None:
    model = f"limit-{uuid.uuid4().hex[:8]}"
    fake.script(model, *[Reply(text="slow " * 600, interval=0.1) for _ in range(3)])
    thread_id, run_id = start_run(resuming, model, [])
    killed: list[int] = []
    try:
        for attempt in (1, 2):
            wait_until(lambda: len(fake.requests(model)), lambda n, a=attempt: n == a, 60, f"model call {attempt}")
            with resuming.client() as client:
                wait_until(
                    lambda c=client: assistant_messages(c, thread_id),
                    lambda ms: len(ms) == 1 and ms[0].status == "in_progress",
                    30,
                    f"attempt {attempt}'s message",
                )
            executor = resuming.wait_for_executor(run_id)
            resuming.kill(executor)
            killed.append(executor)
        with resuming.client() as client:
            run = wait_for_end(client, thread_id, run_id)
            assert run.status == "failed"
            assert run.last_error is not None and run.last_error.code == "server_error"
            assert "interrupted 2 times" in run.last_error.message
            assert "ASSISTD_RUN_RESUME_LIMIT" in run.last_error.message
            assert len(fake.requests(model)) == 2
            (message,) = assistant_messages(client, thread_id)
            assert message.status == "incomplete"
            (step,) = steps_of(client, thread_id, run_id)
            assert step.status == "failed" and step.last_error is not None
            assert resuming.fetch("SELECT resumes FROM runs WHERE id = $1", run_id) == [(1,)]
    finally:
        for index in killed:
            resuming.restart(index)


def test_a_stalled_executor_whose_run_was_resumed_elsewhere_writes_nothing_more(
    resuming: Cluster, fake: FakeUpstream
) -> None:
    """SIGSTOP the executor past its lease: another replica resumes the run. SIGCONT: the stalled one
    finds its lease gone and must stop where it stands, not end (cancel) the run its successor runs."""
    model = f"stalled-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply(text="slow " * 600, interval=0.1), Reply(text="again " * 60, interval=0.1))
    thread_id, run_id = start_run(resuming, model, [])
    with resuming.client() as client:
        wait_until(lambda: assistant_messages(client, thread_id), lambda ms: len(ms) == 1, 60, "the message")
    stalled = resuming.wait_for_executor(run_id)
    process = resuming.replicas[stalled].process
    assert process is not None
    stop_outside_a_transaction(resuming, process.pid)
    try:
        successor = wait_until(
            lambda: resuming.executing_replica(run_id), lambda i: i not in (None, stalled), 60, "a resume elsewhere"
        )
        wait_until(lambda: len(fake.requests(model)), lambda n: n == 2, 30, "the resumed model call")
    finally:
        os.kill(process.pid, signal.SIGCONT)
    with resuming.client() as client:
        run = wait_for_end(client, thread_id, run_id)
        assert run.status == "completed", (run.status, run.last_error)
        (message,) = assistant_messages(client, thread_id)
        assert message.status == "completed" and message.content[0].text.value.startswith("again")
        (step,) = steps_of(client, thread_id, run_id)
        assert step.status == "completed" and step.step_details.message_creation.message_id == message.id
    assert resuming.executing_replica(run_id) is None and successor != stalled
    wait_until(lambda: resuming.replicas[stalled].logs(), lambda log: "taken over elsewhere" in log, 10, "the cut")


def stop_outside_a_transaction(cluster: Cluster, pid: int) -> None:
    """SIGSTOP a replica at a moment none of the database's sessions is inside a transaction: one stopped
    holding a row lock would keep every other replica from taking its run over until it resumes (as a
    process stalled mid-transaction does; PostgreSQL's idle_in_transaction_session_timeout bounds that)."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in%'"
    for _ in range(50):
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.2)
        if cluster.fetch(query) == [(0,)]:
            return
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.1)
    raise AssertionError("the replica was inside a transaction at every try")


def test_a_replica_stopped_for_a_deploy_hands_its_run_over_and_another_resumes_it(
    resuming: Cluster, fake: FakeUpstream
) -> None:
    """SIGTERM (a rolling deploy): the run outlives the drain, is cut and its lease handed back; another
    replica resumes it at its next poll, without waiting for the lease to lapse."""
    model = f"deploy-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply(text="slow " * 600, interval=0.1), Reply.say("Done after the deploy."))
    thread_id, run_id = start_run(resuming, model, [])
    with resuming.client() as client:
        wait_until(lambda: assistant_messages(client, thread_id), lambda ms: len(ms) == 1, 60, "the message")
    stopped = resuming.wait_for_executor(run_id)
    resuming.replicas[stopped].stop()
    try:
        with resuming.client() as client:
            run = wait_for_end(client, thread_id, run_id)
            assert run.status == "completed", run.last_error
            (message,) = assistant_messages(client, thread_id)
            assert message.content[0].text.value == "Done after the deploy."
            (step,) = steps_of(client, thread_id, run_id)
            assert step.status == "completed" and step.step_details.message_creation.message_id == message.id
        assert len(fake.requests(model)) == 2
        assert "jobs cut at shutdown, handed back" in resuming.replicas[stopped].logs()
    finally:
        resuming.restart(stopped)
