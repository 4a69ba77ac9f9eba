"""A broken upstream never yields `completed`; Retry-After is honoured.

The fake upstream misbehaves on an HTTP 200 (a stream that ends without a finish_reason, an empty
event stream, an HTML page instead of events, an event that is not JSON, a connection dropped
mid-body) or answers 429/503 with Retry-After. Runs are driven through the SDK, polled and streamed,
on a server configured for three attempts per model call (two retries). A fault before anything
reached the client is retried; after text or a tool call was streamed it fails the run at once,
the partial message left `incomplete`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import LiveServer

from .test_runs import WEATHER, new_model
from .test_streaming import Recorder, stored_assistant_messages, stored_steps, text_of

BACKENDS = os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")
ATTEMPTS = 3  # ASSISTD_UPSTREAM_MAX_ATTEMPTS: the first try and two retries
EXPIRES = 20  # ASSISTD_RUN_EXPIRES_SECONDS: every run here ends well within it
TEXT = "The answer is forty two, as everybody knows."


@pytest.fixture(scope="module", params=BACKENDS)
def faulty(request: pytest.FixtureRequest) -> LiveServer:
    launch = request.getfixturevalue("launch")
    env = {
        "ASSISTD_UPSTREAM_MAX_ATTEMPTS": str(ATTEMPTS),
        "ASSISTD_UPSTREAM_TIMEOUT_SECONDS": "5",
        "ASSISTD_RUN_EXPIRES_SECONDS": str(EXPIRES),
    }
    server: LiveServer = launch(request, request.getfixturevalue("tmp_path_factory"), request.param, env=env)
    return server


@pytest.fixture()
def client(faulty: LiveServer) -> Iterator[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        sdk = openai.OpenAI(base_url=faulty.base_url, api_key="test-key", max_retries=0)
    yield sdk
    sdk.close()


@dataclass(frozen=True)
class Fault:
    reply: Reply
    message: str  # in last_error.message: what the upstream did
    attempts: int
    partial: str | None = None  # the text shown before the fault, kept in an incomplete message


FAULTS = {
    # Text streamed, then the body just ends: shown already, so no retry.
    "no-finish-after-text": Fault(Reply(text=TEXT, fault="no_finish"), "without a finish_reason", 1, TEXT),
    # Nothing but the role chunk, then the body ends: nothing shown, retried.
    "no-finish-before-text": Fault(Reply(fault="no_finish"), "without a finish_reason", ATTEMPTS),
    "empty-stream": Fault(Reply(fault="empty_stream"), "empty event stream", ATTEMPTS),
    "not-json": Fault(Reply(fault="not_json"), "non-JSON body", ATTEMPTS),
    "not-json-event": Fault(Reply(fault="bad_event"), "an event that is not JSON", ATTEMPTS),
    "cut-before-text": Fault(Reply(text=TEXT, fault="cut_after", cut_after=0), "closed the connection", ATTEMPTS),
    "cut-after-text": Fault(
        Reply(text=TEXT, fault="cut_after", cut_after=3), "closed the connection", 1, partial="The answer is "
    ),
}


def _setup(client: Any, fake: FakeUpstream, *replies: Reply, tools: list[Any] | None = None) -> tuple[str, Any, Any]:
    model = new_model()
    fake.script(model, *replies)
    assistant = client.beta.assistants.create(model=model, tools=tools or [])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "What is the answer?"}])
    return model, assistant, thread


def _run(client: Any, assistant: Any, thread: Any, mode: str) -> Any:
    """The run to its end, polled or streamed; a streamed failure ends with thread.run.failed, then raises."""
    if mode == "poll":
        return client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, timeout=30)
    handler = Recorder()
    try:
        with client.beta.threads.runs.stream(
            thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
        ) as stream:
            stream.until_done()
    except openai.APIError:
        assert handler.events[-1].event == "thread.run.failed"
    streamed = handler.events[-1].data
    stored = client.beta.threads.runs.retrieve(streamed.id, thread_id=thread.id)
    assert streamed.status == stored.status and streamed.last_error == stored.last_error
    return stored


@pytest.mark.parametrize("mode", ["poll", "stream"])
@pytest.mark.parametrize("name", list(FAULTS))
def test_broken_upstream_fails_the_run(client: Any, fake: FakeUpstream, name: str, mode: str) -> None:
    fault = FAULTS[name]
    model, assistant, thread = _setup(client, fake, *[fault.reply] * (ATTEMPTS + 1))
    run = _run(client, assistant, thread, mode)
    assert run.status == "failed", (name, run.status)
    assert run.last_error is not None and run.last_error.code == "server_error"
    assert fault.message in run.last_error.message
    assert len(fake.requests(model)) == fault.attempts
    if fault.attempts > 1:
        assert f"after {fault.attempts} attempts" in run.last_error.message
    assert run.failed_at is not None and run.completed_at is None and run.usage is not None
    messages = stored_assistant_messages(client, thread.id, run.id)
    if fault.partial is None:
        assert messages == []
    else:
        (message,) = messages
        assert message.status == "incomplete" and message.incomplete_details.reason == "run_failed"
        assert text_of(message) == fault.partial
    for step in stored_steps(client, thread.id, run.id):
        assert step.status == "failed" and step.last_error is not None
    # The thread is free again.
    client.beta.threads.messages.create(thread.id, role="user", content="again")


def test_tool_call_cut_mid_arguments_fails_without_requires_action(client: Any, fake: FakeUpstream) -> None:
    """The connection drops while a function call's arguments stream: no half call reaches the client."""
    reply = Reply.call("get_weather", {"city": "Paris", "unit": "celsius"}, fault="cut_after", cut_after=3)
    model, assistant, thread = _setup(client, fake, reply, tools=[WEATHER])
    run = _run(client, assistant, thread, "poll")
    assert run.status == "failed" and run.required_action is None
    assert run.last_error.code == "server_error" and "closed the connection" in run.last_error.message
    assert len(fake.requests(model)) == 1  # the call had started streaming: not retried
    # A function call is shown once its arguments are complete and checked: this one never was.
    assert stored_steps(client, thread.id, run.id) == []
    assert run.usage is not None and run.usage.total_tokens > 0, "the cut call's tokens are counted"


@pytest.mark.parametrize("mode", ["poll", "stream"])
def test_fault_before_any_text_is_retried_and_recovers(client: Any, fake: FakeUpstream, mode: str) -> None:
    replies = [Reply(fault="empty_stream"), Reply(text=TEXT, fault="cut_after", cut_after=0), Reply.say(TEXT)]
    model, assistant, thread = _setup(client, fake, *replies)
    run = _run(client, assistant, thread, mode)
    assert run.status == "completed" and run.last_error is None
    assert len(fake.requests(model)) == 3
    (message,) = stored_assistant_messages(client, thread.id, run.id)
    assert message.status == "completed" and text_of(message) == TEXT


# --- Retry-After ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "wait"),
    [
        (Reply.fail(429, "slow down", retry_after="1"), 1.0),
        (Reply.fail(503, "busy", retry_after_ms="1500"), 1.5),
    ],
    ids=["429-retry-after", "503-retry-after-ms"],
)
def test_retry_after_is_honoured(client: Any, fake: FakeUpstream, failure: Reply, wait: float) -> None:
    model, assistant, thread = _setup(client, fake, failure, Reply.say(TEXT))
    run = _run(client, assistant, thread, "poll")
    assert run.status == "completed", run.last_error
    first, second = fake.request_times(model)
    # The test server backs off 0.01 s (ASSISTD_UPSTREAM_RETRY_BASE_SECONDS): only the header explains the wait.
    assert second - first >= wait - 0.05, f"retried after {second - first:.2f} s, asked {wait} s"
    assert second - first < wait + 5


def test_retry_after_past_the_runs_expiry_fails_at_once(client: Any, fake: FakeUpstream) -> None:
    """Waiting 10 minutes would outlive the run (it expires after 20 s): it fails now, saying why."""
    model, assistant, thread = _setup(client, fake, Reply.fail(429, "quota", retry_after="600"), Reply.say(TEXT))
    run = _run(client, assistant, thread, "poll")
    assert run.status == "failed"
    assert run.last_error.code == "rate_limit_exceeded"
    assert "retry after 600 s" in run.last_error.message and "expiry" in run.last_error.message
    assert len(fake.requests(model)) == 1
    assert run.failed_at is not None and run.failed_at - run.created_at < 10
