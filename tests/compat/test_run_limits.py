"""Runs on servers with their own settings: expiry, a tiny context window, model routing, upstream failures.

Each fixture starts one `assistd serve` per storage backend with the ASSISTD_* settings under test;
the default backend is still the session's scripted fake upstream.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import LiveServer

from .test_runs import TIME, WEATHER, chat_turns, make_assistant, new_model, wait_status

BACKENDS = os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")
TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}
EXPIRES = 3
SECRET_KEY = "sk-assistd-upstream-" + "7Qz9" * 6


def _start_server(request: pytest.FixtureRequest, backend: str, env: dict[str, str]) -> LiveServer:
    """A server of its own (data dir, database, settings), from the root conftest's `launch`."""
    launch = request.getfixturevalue("launch")
    server: LiveServer = launch(request, request.getfixturevalue("tmp_path_factory"), backend, env=env)
    return server


def _client(server: LiveServer) -> Iterator[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
    yield client
    client.close()


@pytest.fixture(scope="module", params=BACKENDS)
def expiring(request: pytest.FixtureRequest) -> LiveServer:
    # Timestamps are whole seconds, so a run can have as little as EXPIRES - 1 s: leave room to reach
    # requires_action first, even on a slow first request.
    return _start_server(request, request.param, {"ASSISTD_RUN_EXPIRES_SECONDS": str(EXPIRES)})


@pytest.fixture(scope="module", params=BACKENDS)
def small_window(request: pytest.FixtureRequest) -> LiveServer:
    return _start_server(request, request.param, {"ASSISTD_UPSTREAM_CONTEXT_WINDOW": "300"})


@pytest.fixture(scope="module", params=BACKENDS)
def routed(request: pytest.FixtureRequest, fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    config = tmp_path_factory.mktemp("routing") / "models.toml"
    config.write_text(
        f"""
[backends.fake]
base_url = "{fake.base_url}"
context_window = 4096

[[routes]]
match = "gpt-3.5-turbo*"
backend = "fake"
model = "routed-model"

[[routes]]
match = "m-*"
backend = "fake"
"""
    )
    # No [default] and no ASSISTD_UPSTREAM_BASE_URL: models no route matches are served by nobody.
    return _start_server(request, request.param, {"ASSISTD_CONFIG": str(config), "ASSISTD_UPSTREAM_BASE_URL": ""})


@pytest.fixture(scope="module", params=BACKENDS)
def flaky(request: pytest.FixtureRequest) -> LiveServer:
    """Short upstream timeout, two attempts, a recognisable upstream key, and one run at a time."""
    return _start_server(
        request,
        request.param,
        {
            "ASSISTD_UPSTREAM_TIMEOUT_SECONDS": "1",
            "ASSISTD_UPSTREAM_MAX_ATTEMPTS": "2",
            "ASSISTD_UPSTREAM_API_KEY": SECRET_KEY,
            "ASSISTD_WORKER_CONCURRENCY": "1",
        },
    )


@pytest.fixture()
def expiring_client(expiring: LiveServer) -> Iterator[Any]:
    yield from _client(expiring)


@pytest.fixture()
def small_client(small_window: LiveServer) -> Iterator[Any]:
    yield from _client(small_window)


@pytest.fixture()
def routed_client(routed: LiveServer) -> Iterator[Any]:
    yield from _client(routed)


@pytest.fixture()
def flaky_client(flaky: LiveServer) -> Iterator[Any]:
    yield from _client(flaky)


# --- expiry ---------------------------------------------------------------------------------------


def test_run_left_in_requires_action_expires(expiring_client: Any, fake: FakeUpstream) -> None:
    client = expiring_client
    model = new_model()
    fake.script(model, Reply.call("get_weather", {"city": "Paris"}))
    assistant = make_assistant(client, model, tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    assert run.expires_at is not None and run.expires_at - run.created_at == EXPIRES
    call = run.required_action.submit_tool_outputs.tool_calls[0]

    run = wait_status(client, thread.id, run.id, TERMINAL, timeout=15)
    assert run.status == "expired"
    assert run.expires_at is None and run.required_action is None
    (step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
    assert step.type == "tool_calls" and step.status == "expired" and step.expired_at is not None

    with pytest.raises(openai.BadRequestError) as exc_info:
        client.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "late"}]
        )
    assert exc_info.value.status_code == 400
    assert exc_info.value.body["message"] == 'Runs in status "expired" do not accept tool outputs.'
    # Expired is terminal: the thread takes messages again.
    client.beta.threads.messages.create(thread.id, role="user", content="still there?")


def test_run_streaming_past_expiry_expires(expiring_client: Any, fake: FakeUpstream) -> None:
    client = expiring_client
    model = new_model()
    text = " ".join(f"w{i}" for i in range(200))
    fake.script(model, Reply(text=text, interval=0.05))
    assistant = make_assistant(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Talk."}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "expired" and run.expires_at is None
    (message,) = [m for m in client.beta.threads.messages.list(thread.id) if m.role == "assistant"]
    assert message.status == "incomplete" and message.incomplete_details.reason == "run_expired"
    (step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
    assert step.status == "expired"


def test_expired_run_reports_the_usage_of_its_model_calls(expiring_client: Any, fake: FakeUpstream) -> None:
    """A tool round, then an answer the expiry cuts: the run's usage counts both calls, the steps theirs."""
    client = expiring_client
    model = new_model()
    text = " ".join(f"w{i}" for i in range(200))
    fake.script(model, Reply.call("get_stock", {"ticker": "AAPL"}), Reply(text=text, interval=0.05))
    assistant = make_assistant(client, model, tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Talk."}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "expired"
    assert run.usage is not None and run.usage.prompt_tokens > 0 and run.usage.completion_tokens > 0
    (step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
    assert step.status == "expired" and step.usage is not None and step.usage.completion_tokens > 0
    assert run.usage.total_tokens > step.usage.total_tokens  # the refused call (no step of its own) counts


# --- auto truncation ------------------------------------------------------------------------------


def test_auto_truncation_drops_oldest_and_keeps_tool_pairs(small_client: Any, fake: FakeUpstream) -> None:
    client = small_client
    model = new_model()
    fake.script(model, Reply.call("get_time", {"tz": "UTC"}), Reply.say("It is noon."))
    assistant = make_assistant(client, model, tools=[TIME])
    filler = " ".join(["lorem"] * 40)
    contents = [f"note {i}: {filler}" for i in range(10)] + ["What time is it?"]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": c} for c in contents])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    tool_output = "12:00 UTC " + " ".join(["detail"] * 60)
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        tool_outputs=[{"tool_call_id": call.id, "output": tool_output}], run_id=run.id, thread_id=thread.id
    )
    assert run.status == "completed"

    first, second = fake.requests(model)
    for request in (first, second):
        history = [m["content"] for m in chat_turns(request) if m["role"] == "user"]
        assert history, "the newest message is always sent"
        assert history[-1] == "What time is it?", "newest kept"
        assert contents[0] not in history, "oldest dropped"
        assert history == contents[-len(history) :], "what is kept is a suffix of the thread, in order"
    kept_first = [m for m in chat_turns(first) if m["role"] == "user"]
    kept_second = [m for m in chat_turns(second) if m["role"] == "user"]
    assert len(kept_second) < len(kept_first), "the tool output takes room from history, not the other way round"
    # The run's own tool call and its output stay together, at the end.
    turns = chat_turns(second)
    assert turns[-2]["role"] == "assistant" and turns[-2]["tool_calls"][0]["id"] == call.id
    assert turns[-1] == {"role": "tool", "tool_call_id": call.id, "content": tool_output}
    assert sum(1 for m in turns if m["role"] == "tool") == 1


# --- routing --------------------------------------------------------------------------------------


def test_routed_model_reaches_upstream_renamed(routed_client: Any, fake: FakeUpstream) -> None:
    client = routed_client
    marker = f"routing-{uuid.uuid4().hex}"
    assistant = client.beta.assistants.create(model="gpt-3.5-turbo-0125")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    assert run.model == "gpt-3.5-turbo-0125", "clients see the model they asked for"
    received = [r for r in fake.requests() if any(m.get("content") == marker for m in r["messages"])]
    assert [r["model"] for r in received] == ["routed-model"]


def test_glob_route_without_rename_keeps_model_name(routed_client: Any, fake: FakeUpstream) -> None:
    client = routed_client
    model = new_model()
    fake.script(model, Reply.say("routed by glob"))
    assistant = make_assistant(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    assert len(fake.requests(model)) == 1


def test_unrouted_model_is_model_not_found(routed_client: Any, fake: FakeUpstream) -> None:
    client = routed_client
    assistant = client.beta.assistants.create(model="gpt-3.5-turbo")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    for kw in ({"model": "gpt-4o"}, {"model": "claude-3-opus"}):
        with pytest.raises(openai.BadRequestError) as exc_info:
            client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, **kw)
        body = exc_info.value.body
        assert exc_info.value.status_code == 400
        assert body["code"] == "model_not_found" and body["param"] == "model"
        assert kw["model"] in body["message"]
    unrouted = client.beta.assistants.create(model="llama-unrouted")
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.beta.threads.create_and_run(assistant_id=unrouted.id, thread={"messages": []})
    assert exc_info.value.body["code"] == "model_not_found"
    assert client.beta.threads.runs.list(thread.id).data == [], "no run was created"


# --- upstream failures ----------------------------------------------------------------------------


def _run_once(client: Any, fake: FakeUpstream, *replies: Reply, tools: list[Any] | None = None) -> tuple[Any, str]:
    model = new_model()
    fake.script(model, *replies)
    assistant = make_assistant(client, model, tools=tools or [])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    return run, model


@pytest.mark.parametrize(
    ("replies", "code", "attempts"),
    [
        ([Reply.fail(500), Reply.fail(500)], "server_error", 2),
        ([Reply.fail(429), Reply.fail(429)], "rate_limit_exceeded", 2),
        # The upstream answers only after 5 s, well past the 1 s timeout, on both attempts.
        ([Reply(text="too late", delay=5), Reply(text="too late", delay=5)], "server_error", 2),
        # Refused calls go back to the model (docs/run-engine.md): the run fails on the third in a row.
        ([Reply(tool_calls=[{"name": "get_weather", "arguments": "{not json"}])] * 3, "server_error", 3),
        ([Reply.call("not_offered", {})] * 3, "server_error", 3),
    ],
    ids=["http-500", "http-429", "timeout", "invalid-tool-json", "unknown-function"],
)
def test_upstream_failure_fails_the_run(
    flaky: LiveServer, flaky_client: Any, fake: FakeUpstream, replies: list[Reply], code: str, attempts: int
) -> None:
    run, model = _run_once(flaky_client, fake, *replies, tools=[WEATHER])
    assert run.status == "failed"
    assert run.last_error is not None and run.last_error.code == code
    assert run.last_error.message
    assert run.failed_at is not None and run.expires_at is None and run.completed_at is None
    assert run.usage is not None, "usage is filled at every terminal state"
    assert len(fake.requests(model)) == attempts
    body = flaky_client.beta.threads.runs.with_raw_response.retrieve(run.id, thread_id=run.thread_id).text
    assert SECRET_KEY not in body
    for step in flaky_client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id):
        assert step.status == "failed" and step.failed_at is not None
    for message in flaky_client.beta.threads.messages.list(run.thread_id):
        assert message.status != "in_progress"
    # The thread is unlocked again.
    flaky_client.beta.threads.messages.create(run.thread_id, role="user", content="again")


def test_failed_run_usage_counts_the_failed_call(flaky_client: Any, fake: FakeUpstream) -> None:
    refused = Reply(tool_calls=[{"name": "get_weather", "arguments": "{not json"}])
    run, _ = _run_once(flaky_client, fake, *[refused] * 3, tools=[WEATHER])
    assert run.status == "failed"
    assert run.usage is not None and run.usage.completion_tokens > 0


def test_upstream_error_then_success_is_retried(flaky_client: Any, fake: FakeUpstream) -> None:
    run, model = _run_once(flaky_client, fake, Reply.fail(500), Reply.say("recovered"))
    assert run.status == "completed" and run.last_error is None
    assert len(fake.requests(model)) == 2
    (message,) = [m for m in flaky_client.beta.threads.messages.list(run.thread_id) if m.role == "assistant"]
    assert message.content[0].text.value == "recovered"

    run, model = _run_once(flaky_client, fake, Reply.fail(429), Reply.say("after a rate limit"))
    assert run.status == "completed"
    assert len(fake.requests(model)) == 2


def test_upstream_client_error_is_not_retried(flaky_client: Any, fake: FakeUpstream) -> None:
    run, model = _run_once(flaky_client, fake, Reply.fail(400, "bad request"), Reply.say("unused"))
    assert run.status == "failed" and run.last_error.code == "invalid_prompt"
    assert len(fake.requests(model)) == 1


def test_cancel_queued_run_behind_busy_worker(flaky_client: Any, fake: FakeUpstream) -> None:
    """With one worker slot busy, a second run stays queued; cancelling it ends it without a model call."""
    client = flaky_client
    busy_model, queued_model = new_model(), new_model()
    fake.script(busy_model, Reply(text="busy " * 400, interval=0.05))
    busy_assistant = make_assistant(client, busy_model)
    busy_thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    busy = client.beta.threads.runs.create(thread_id=busy_thread.id, assistant_id=busy_assistant.id)
    wait_status(client, busy_thread.id, busy.id, {"in_progress"})

    assistant = make_assistant(client, queued_model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "queued"
    cancelled = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelled.status == "cancelling"
    run = wait_status(client, thread.id, run.id, TERMINAL)
    assert run.status == "cancelled" and run.cancelled_at is not None and run.started_at is None
    assert client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data == []
    assert fake.requests(queued_model) == []

    client.beta.threads.runs.cancel(busy.id, thread_id=busy_thread.id)
    assert wait_status(client, busy_thread.id, busy.id, TERMINAL).status == "cancelled"


def test_upstream_key_never_leaks(flaky: LiveServer, flaky_client: Any, fake: FakeUpstream) -> None:
    """Failures of every kind, then: the key is in no response body and nowhere in the server log."""
    seen: list[str] = []
    for replies in (
        [Reply.fail(500), Reply.fail(502)],
        [Reply.fail(401, "Incorrect API key provided")],
        [Reply.fail(429), Reply.fail(429)],
    ):
        run, model = _run_once(flaky_client, fake, *replies)
        assert run.status == "failed"
        raw = flaky_client.beta.threads.runs.with_raw_response.retrieve(run.id, thread_id=run.thread_id)
        seen.append(raw.text)
        seen.append(flaky_client.beta.threads.runs.steps.with_raw_response.list(run.id, thread_id=run.thread_id).text)
        for request in fake.requests(model):
            assert SECRET_KEY not in str(request)
    assert all(SECRET_KEY not in body for body in seen)
    logs = flaky.log_path.read_text(errors="replace")  # all of it, not just the tail logs() gives
    assert "model backend call failed" in logs, "the failures were logged (so the grep below means something)"
    assert SECRET_KEY not in logs
    assert SECRET_KEY[-12:] not in logs
