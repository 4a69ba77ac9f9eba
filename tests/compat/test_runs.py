"""Runs through the official SDK against a live server and the scripted fake upstream (spec §3.4, §4.4, §4.5, §5, §8).

Every test scripts its own model name on the session's fake upstream, so tests stay independent; what
the fake received (`fake.requests(model)`) shows what assistd sent the model.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import openai
import pytest

from assistd.testing.fake_upstream import FakeUpstream, Reply

from .conftest import assert_not_found, body_of

ACTIVE = {"queued", "in_progress", "requires_action", "cancelling"}
TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}},
}
LOOKUP = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
}


def new_model() -> str:
    return f"m-{uuid.uuid4().hex[:8]}"


def wait_until(probe: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 20.0, what: str = "") -> Any:
    """Poll `probe()` until `done(value)`; fail with the last value at the deadline."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or 'a condition'}; last value: {value!r}")
        time.sleep(0.02)
        value = probe()
    return value


def wait_status(client: Any, thread_id: str, run_id: str, statuses: set[str], timeout: float = 20.0) -> Any:
    return wait_until(
        lambda: client.beta.threads.runs.retrieve(run_id, thread_id=thread_id),
        lambda run: run.status in statuses,
        timeout,
        f"run {run_id} to reach {sorted(statuses)}",
    )


def make_assistant(client: Any, model: str, **kw: Any) -> Any:
    kw.setdefault("instructions", "You are terse.")
    return client.beta.assistants.create(model=model, **kw)


def chat_turns(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-system messages of a chat request."""
    return [m for m in request["messages"] if m["role"] != "system"]


def system_of(request: dict[str, Any]) -> str | None:
    systems = [m["content"] for m in request["messages"] if m["role"] == "system"]
    assert len(systems) <= 1
    return systems[0] if systems else None


def assistant_messages(client: Any, thread_id: str) -> list[Any]:
    return [m for m in client.beta.threads.messages.list(thread_id, order="asc") if m.role == "assistant"]


# --- text runs ------------------------------------------------------------------------------------


def test_create_and_poll_text_run_completes(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("The answer is 4."))
    assistant = make_assistant(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "What is 2 + 2?"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "completed"
    assert run.thread_id == thread.id and run.assistant_id == assistant.id
    assert run.model == model and run.instructions == "You are terse."
    assert run.expires_at is None, "expires_at is null once terminal"
    assert run.started_at is not None and run.completed_at is not None
    assert run.created_at <= run.started_at <= run.completed_at
    assert run.failed_at is None and run.cancelled_at is None and run.last_error is None
    assert run.required_action is None and run.incomplete_details is None
    assert run.usage is not None
    assert run.usage.prompt_tokens > 0 and run.usage.completion_tokens > 0
    assert run.usage.total_tokens == run.usage.prompt_tokens + run.usage.completion_tokens
    assert run.truncation_strategy.type == "auto" and run.tool_choice == "auto" and run.parallel_tool_calls is True

    messages = list(client.beta.threads.messages.list(thread.id, order="asc"))
    assert [m.role for m in messages] == ["user", "assistant"]
    reply = messages[1]
    assert reply.content[0].text.value == "The answer is 4."
    assert reply.run_id == run.id and reply.assistant_id == assistant.id
    assert reply.status == "completed" and reply.completed_at is not None
    assert messages[0].run_id is None

    (request,) = fake.requests(model)
    assert system_of(request) == "You are terse."
    assert chat_turns(request) == [{"role": "user", "content": "What is 2 + 2?"}]
    assert request["stream"] is True

    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread.id))
    assert len(steps) == 1
    step = steps[0]
    assert step.type == "message_creation" and step.status == "completed"
    assert step.step_details.message_creation.message_id == reply.id
    assert step.run_id == run.id and step.thread_id == thread.id and step.assistant_id == assistant.id
    assert step.usage is not None and step.usage.total_tokens > 0
    assert step.completed_at is not None


def test_run_object_while_active_and_poll_header(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.call("get_weather", {"city": "Oslo"}))
    assistant = make_assistant(client, model, tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    raw = client.beta.threads.runs.with_raw_response.create(thread_id=thread.id, assistant_id=assistant.id)
    created = body_of(raw)
    assert created["object"] == "thread.run" and created["id"].startswith("run_")
    assert created["status"] == "queued"
    assert created["usage"] is None and created["required_action"] is None
    assert created["expires_at"] is not None and created["expires_at"] > created["created_at"]
    assert created["truncation_strategy"] == {"type": "auto", "last_messages": None}

    wait_status(client, thread.id, created["id"], {"requires_action"})
    raw = client.beta.threads.runs.with_raw_response.retrieve(created["id"], thread_id=thread.id)
    body = body_of(raw)
    assert int(raw.headers["openai-poll-after-ms"]) == 20
    assert body["status"] == "requires_action"
    assert body["expires_at"] == created["expires_at"], "still active: expires_at stays set"
    assert body["usage"] is None
    client.beta.threads.runs.cancel(created["id"], thread_id=thread.id)


# --- function calling -----------------------------------------------------------------------------


def test_submit_tool_outputs_and_poll(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.call("get_weather", {"city": "Paris"}), Reply.say("It is sunny in Paris."))
    assistant = make_assistant(client, model, tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris?"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    assert run.usage is None and run.expires_at is not None
    assert run.required_action.type == "submit_tool_outputs"
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather" and call.function.arguments == '{"city":"Paris"}'

    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        tool_outputs=[{"tool_call_id": call.id, "output": "22C, sunny"}], run_id=run.id, thread_id=thread.id
    )
    assert run.status == "completed" and run.required_action is None
    assert assistant_messages(client, thread.id)[-1].content[0].text.value == "It is sunny in Paris."
    second = fake.requests(model)[1]
    assert chat_turns(second)[-2:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "22C, sunny"},
    ]


def test_multi_round_function_run(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(
        model,
        Reply.call("get_weather", {"city": "Paris"}),
        Reply.calls(("get_time", {"tz": "UTC"}), ("lookup", {"q": "tides"}), ("get_weather", {"city": "Rome"})),
        Reply.say("All done."),
    )
    assistant = make_assistant(client, model, tools=[WEATHER, TIME, LOOKUP])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Plan my day."}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    (first,) = run.required_action.submit_tool_outputs.tool_calls
    assert (first.function.name, first.function.arguments) == ("get_weather", '{"city":"Paris"}')

    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc"))
    assert [(s.type, s.status) for s in steps] == [("tool_calls", "in_progress")]
    assert steps[0].step_details.tool_calls[0].id == first.id
    assert steps[0].step_details.tool_calls[0].function.output is None

    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        tool_outputs=[{"tool_call_id": first.id, "output": "rain"}], run_id=run.id, thread_id=thread.id
    )
    assert run.status == "requires_action"
    parallel = run.required_action.submit_tool_outputs.tool_calls
    assert [(c.function.name, c.function.arguments) for c in parallel] == [
        ("get_time", '{"tz":"UTC"}'),
        ("lookup", '{"q":"tides"}'),
        ("get_weather", '{"city":"Rome"}'),
    ]
    assert len({c.id for c in parallel} | {first.id}) == 4, "every call has its own id"

    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc"))
    assert [(s.type, s.status) for s in steps] == [("tool_calls", "completed"), ("tool_calls", "in_progress")]
    assert steps[0].step_details.tool_calls[0].function.output == "rain", "output filled after submit"
    assert [c.id for c in steps[1].step_details.tool_calls] == [c.id for c in parallel], "parallel calls share a step"
    assert all(c.function.output is None for c in steps[1].step_details.tool_calls)

    outputs = {parallel[0].id: "12:00", parallel[1].id: "high tide at 3", parallel[2].id: "sun"}
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        # Out of order on purpose: the model must still see them in call order.
        tool_outputs=[{"tool_call_id": k, "output": v} for k, v in reversed(list(outputs.items()))],
        run_id=run.id,
        thread_id=thread.id,
    )
    assert run.status == "completed"

    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc"))
    assert [(s.type, s.status) for s in steps] == [
        ("tool_calls", "completed"),
        ("tool_calls", "completed"),
        ("message_creation", "completed"),
    ]
    assert [c.function.output for c in steps[1].step_details.tool_calls] == list(outputs.values())
    (reply,) = assistant_messages(client, thread.id)
    assert reply.content[0].text.value == "All done." and reply.run_id == run.id
    assert steps[2].step_details.message_creation.message_id == reply.id
    # Listing newest first gives the same steps reversed.
    desc = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread.id))
    assert [s.id for s in desc] == [s.id for s in reversed(steps)]

    requests = fake.requests(model)
    assert len(requests) == 3
    user = {"role": "user", "content": "Plan my day."}

    def assistant_calls(*calls: Any) -> dict[str, Any]:
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.function.name, "arguments": c.function.arguments},
                }
                for c in calls
            ],
        }

    round1 = [assistant_calls(first), {"role": "tool", "tool_call_id": first.id, "content": "rain"}]
    round2 = [assistant_calls(*parallel)] + [
        {"role": "tool", "tool_call_id": c.id, "content": outputs[c.id]} for c in parallel
    ]
    assert chat_turns(requests[0]) == [user]
    assert chat_turns(requests[1]) == [user, *round1]
    assert chat_turns(requests[2]) == [user, *round1, *round2]
    assert [t["function"]["name"] for t in requests[0]["tools"]] == ["get_weather", "get_time", "lookup"]
    assert run.usage is not None and run.usage.prompt_tokens > 0


# --- request options passed through to the model --------------------------------------------------


@pytest.mark.parametrize(
    "tool_choice",
    ["none", "required", "auto", {"type": "function", "function": {"name": "get_weather"}}],
    ids=["none", "required", "auto", "named"],
)
def test_tool_choice_passed_through(client: Any, fake: FakeUpstream, tool_choice: Any) -> None:
    model = new_model()
    fake.script(model, Reply.say("ok"))
    assistant = make_assistant(client, model, tools=[WEATHER, TIME])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, tool_choice=tool_choice
    )
    assert run.status == "completed"
    echoed = run.tool_choice if isinstance(run.tool_choice, str) else run.tool_choice.model_dump()
    assert echoed == tool_choice
    (request,) = fake.requests(model)
    assert request["tool_choice"] == tool_choice
    assert request["parallel_tool_calls"] is True


def test_named_tool_choice_must_be_a_run_tool(client: Any, fake: FakeUpstream) -> None:
    assistant = make_assistant(client, new_model(), tools=[WEATHER])
    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=assistant.id,
            tool_choice={"type": "function", "function": {"name": "nope"}},
        )
    assert exc_info.value.body["param"] == "tool_choice"


def test_parallel_tool_calls_false_passed_through(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("ok"))
    assistant = make_assistant(client, model, tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, parallel_tool_calls=False
    )
    assert run.status == "completed" and run.parallel_tool_calls is False
    (request,) = fake.requests(model)
    assert request["parallel_tool_calls"] is False


def test_response_format_temperature_top_p_passed_through(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say('{"answer": 4}'))
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
    assistant = make_assistant(client, model, temperature=0.3, top_p=0.5)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "2+2 as JSON"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, response_format=response_format, temperature=0.7, top_p=0.9
    )
    assert run.status == "completed"
    assert run.temperature == 0.7 and run.top_p == 0.9
    (request,) = fake.requests(model)
    sent = request["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == "answer" and sent["json_schema"]["schema"] == schema
    assert sent["json_schema"]["strict"] is True
    assert request["temperature"] == 0.7 and request["top_p"] == 0.9
    assert "tools" not in request and "tool_choice" not in request, "no tools: no tool options"

    # Without overrides the assistant's own sampling settings reach the model.
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    request = fake.requests(model)[1]
    assert request["temperature"] == 0.3 and request["top_p"] == 0.5
    assert "response_format" not in request


def test_run_overrides(client: Any, fake: FakeUpstream) -> None:
    base_model, override_model = new_model(), new_model()
    fake.script(override_model, Reply.say("overridden"), Reply.say("appended"))
    assistant = make_assistant(client, base_model, instructions="Base instructions.", tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "first"}])

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        model=override_model,
        instructions="Override instructions.",
        tools=[TIME],
        metadata={"purpose": "override"},
        additional_messages=[
            {"role": "user", "content": "extra one", "metadata": {"k": "v"}},
            {"role": "assistant", "content": "extra two"},
        ],
    )
    assert run.status == "completed"
    assert run.model == override_model and run.instructions == "Override instructions."
    assert [t.function.name for t in run.tools] == ["get_time"]
    assert run.metadata == {"purpose": "override"}
    assert fake.requests(base_model) == []
    (request,) = fake.requests(override_model)
    assert system_of(request) == "Override instructions."
    assert [t["function"]["name"] for t in request["tools"]] == ["get_time"]
    assert chat_turns(request) == [
        {"role": "user", "content": "first"},
        {"role": "user", "content": "extra one"},
        {"role": "assistant", "content": "extra two"},
    ]
    messages = list(client.beta.threads.messages.list(thread.id, order="asc"))
    assert [(m.role, m.content[0].text.value) for m in messages] == [
        ("user", "first"),
        ("user", "extra one"),
        ("assistant", "extra two"),
        ("assistant", "overridden"),
    ]
    assert messages[1].metadata == {"k": "v"} and messages[1].run_id is None
    assert messages[3].run_id == run.id

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        model=override_model,
        additional_instructions="Also be kind.",
    )
    assert run.status == "completed"
    assert run.instructions == "Base instructions.\n\nAlso be kind."
    assert [t.function.name for t in run.tools] == ["get_weather"]
    request = fake.requests(override_model)[1]
    assert system_of(request) == "Base instructions.\n\nAlso be kind."
    assert chat_turns(request)[-1] == {"role": "assistant", "content": "overridden"}


# --- cancel ---------------------------------------------------------------------------------------


def test_cancel_in_progress_run(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    text = " ".join(f"w{i}" for i in range(400))
    fake.script(model, Reply(text=text, interval=0.05))
    assistant = make_assistant(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Talk a lot."}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    # In progress with part of the message written.
    partial = wait_until(
        lambda: assistant_messages(client, thread.id),
        lambda ms: len(ms) == 1 and ms[0].status == "in_progress",
        what="the assistant message to start",
    )[0]
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "in_progress"

    cancelled = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelled.status == "cancelling"
    run = wait_status(client, thread.id, run.id, TERMINAL)
    assert run.status == "cancelled"
    assert run.cancelled_at is not None and run.expires_at is None
    assert run.completed_at is None and run.failed_at is None
    assert run.usage is not None, "usage is filled at every terminal state"

    (step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
    assert step.type == "message_creation" and step.status == "cancelled" and step.cancelled_at is not None
    message = client.beta.threads.messages.retrieve(partial.id, thread_id=thread.id)
    assert message.status == "incomplete"
    assert message.incomplete_details.reason == "run_cancelled"
    assert message.incomplete_at is not None
    written = message.content[0].text.value if message.content else ""
    assert text.startswith(written) and written != text, "the partial text is kept, not the whole reply"

    # The thread is free again.
    client.beta.threads.messages.create(thread.id, role="user", content="after the cancel")


def test_cancel_requires_action_run(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.call("get_weather", {"city": "Paris"}))
    assistant = make_assistant(client, model, tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"

    cancelled = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelled.status == "cancelling"
    run = wait_status(client, thread.id, run.id, TERMINAL)
    assert run.status == "cancelled" and run.cancelled_at is not None
    assert run.required_action is None and run.expires_at is None
    assert run.usage is not None and run.usage.total_tokens > 0, "the tool-call round's tokens are kept"
    (step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
    assert step.type == "tool_calls" and step.status == "cancelled" and step.cancelled_at is not None
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.beta.threads.runs.submit_tool_outputs(
            run.id,
            thread_id=thread.id,
            tool_outputs=[{"tool_call_id": step.step_details.tool_calls[0].id, "output": "x"}],
        )
    assert exc_info.value.body["message"] == 'Runs in status "cancelled" do not accept tool outputs.'


def test_cancel_queued_run(client: Any, fake: FakeUpstream) -> None:
    """A queued run is claimed at once, so the cancel races the worker: either way it ends cancelled."""
    model = new_model()
    fake.script(model, Reply(text="slow " * 100, delay=0.5, interval=0.05))
    assistant = make_assistant(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "queued"
    cancelled = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelled.status == "cancelling"
    run = wait_status(client, thread.id, run.id, TERMINAL)
    assert run.status == "cancelled" and run.cancelled_at is not None
    assert all(s.status == "cancelled" for s in client.beta.threads.runs.steps.list(run.id, thread_id=thread.id))
    assert all(m.status != "in_progress" for m in assistant_messages(client, thread.id))
    # Cancelling again while it is already cancelled is an error.
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert exc_info.value.body["message"] == "Cannot cancel run with status 'cancelled'."


def test_cancel_completed_run_is_400(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("done"))
    assistant = make_assistant(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    exc = exc_info.value
    assert exc.status_code == 400
    assert exc.body["message"] == "Cannot cancel run with status 'completed'."
    assert exc.body["type"] == "invalid_request_error"
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "completed"


# --- thread lock ----------------------------------------------------------------------------------


def test_thread_locked_while_run_active(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.call("get_weather", {"city": "Paris"}), Reply.say("after"))
    assistant = make_assistant(client, model, tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"

    with pytest.raises(openai.BadRequestError) as exc_info:
        client.beta.threads.messages.create(thread.id, role="user", content="more")
    assert exc_info.value.status_code == 400
    assert exc_info.value.body["message"] == f"Can't add messages to {thread.id} while a run {run.id} is active."

    with pytest.raises(openai.BadRequestError) as exc_info:
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert exc_info.value.status_code == 400
    assert exc_info.value.body["message"] == f"Thread {thread.id} already has an active run {run.id}."
    assert len(client.beta.threads.runs.list(thread.id).data) == 1, "the second run is not queued"

    call = run.required_action.submit_tool_outputs.tool_calls[0]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        tool_outputs=[{"tool_call_id": call.id, "output": "sun"}], run_id=run.id, thread_id=thread.id
    )
    assert run.status == "completed"
    client.beta.threads.messages.create(thread.id, role="user", content="unlocked")


def test_submit_tool_outputs_validation(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.calls(("get_weather", {"city": "A"}), ("get_weather", {"city": "B"})), Reply.say("ok"))
    assistant = make_assistant(client, model, tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    first, second = run.required_action.submit_tool_outputs.tool_calls
    for outputs in (
        [{"tool_call_id": first.id, "output": "x"}],  # one missing
        [{"tool_call_id": first.id, "output": "x"}, {"tool_call_id": "call_unknown", "output": "y"}],
    ):
        with pytest.raises(openai.BadRequestError):
            client.beta.threads.runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=outputs)
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "requires_action"
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        tool_outputs=[{"tool_call_id": second.id, "output": "b"}, {"tool_call_id": first.id, "output": "a"}],
        run_id=run.id,
        thread_id=thread.id,
    )
    assert run.status == "completed"
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": first.id, "output": "again"}]
        )
    assert exc_info.value.body["message"] == 'Runs in status "completed" do not accept tool outputs.'


# --- create_and_run, list, retrieve, modify, steps ------------------------------------------------


def test_create_and_run_poll(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("Hi there."))
    assistant = make_assistant(client, model)
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "Hello"}], "metadata": {"via": "create_and_run"}},
        metadata={"run": "1"},
    )
    assert run.status == "completed" and run.metadata == {"run": "1"}
    thread = client.beta.threads.retrieve(run.thread_id)
    assert thread.metadata == {"via": "create_and_run"}
    messages = list(client.beta.threads.messages.list(run.thread_id, order="asc"))
    assert [(m.role, m.content[0].text.value) for m in messages] == [("user", "Hello"), ("assistant", "Hi there.")]
    assert messages[1].run_id == run.id
    (request,) = fake.requests(model)
    assert chat_turns(request) == [{"role": "user", "content": "Hello"}]


def test_list_retrieve_and_modify_runs(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("one"), Reply.say("two"))
    assistant = make_assistant(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    first = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    second = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    listed = client.beta.threads.runs.list(thread.id)
    assert [r.id for r in listed.data] == [second.id, first.id]
    assert [r.id for r in client.beta.threads.runs.list(thread.id, order="asc").data] == [first.id, second.id]
    page = client.beta.threads.runs.list(thread.id, limit=1)
    assert [r.id for r in page.data] == [second.id] and page.has_more
    assert [r.id for r in client.beta.threads.runs.list(thread.id, after=second.id).data] == [first.id]

    body = body_of(client.beta.threads.runs.with_raw_response.retrieve(first.id, thread_id=thread.id))
    assert body["id"] == first.id and body["status"] == "completed" and body["object"] == "thread.run"
    for key in ("required_action", "last_error", "expires_at", "cancelled_at", "failed_at", "incomplete_details"):
        assert key in body and body[key] is None, key

    updated = client.beta.threads.runs.update(first.id, thread_id=thread.id, metadata={"reviewed": "yes"})
    assert updated.metadata == {"reviewed": "yes"} and updated.status == "completed"
    assert client.beta.threads.runs.retrieve(first.id, thread_id=thread.id).metadata == {"reviewed": "yes"}
    assert client.beta.threads.runs.retrieve(second.id, thread_id=thread.id).metadata == {}


def test_steps_retrieve_and_not_found(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("hello"))
    assistant = make_assistant(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    other = client.beta.threads.create()
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    (listed,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
    raw = client.beta.threads.runs.steps.with_raw_response.retrieve(listed.id, thread_id=thread.id, run_id=run.id)
    body = body_of(raw)
    assert body["object"] == "thread.run.step" and body["id"].startswith("step_")
    assert body["id"] == listed.id and body["run_id"] == run.id and body["status"] == "completed"
    assert body["expires_at"] is None and body["last_error"] is None

    with pytest.raises(openai.NotFoundError) as exc_info:
        client.beta.threads.runs.retrieve("run_doesnotexist", thread_id=thread.id)
    assert_not_found(exc_info, "run", "run_doesnotexist")
    with pytest.raises(openai.NotFoundError) as exc_info:
        client.beta.threads.runs.retrieve(run.id, thread_id=other.id)
    assert_not_found(exc_info, "run", run.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.steps.list(run.id, thread_id=other.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.steps.list("run_doesnotexist", thread_id=thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.steps.retrieve(listed.id, thread_id=other.id, run_id=run.id)
    with pytest.raises(openai.NotFoundError) as exc_info:
        client.beta.threads.runs.steps.retrieve("step_doesnotexist", thread_id=thread.id, run_id=run.id)
    assert exc_info.value.status_code == 404
    assert "step_doesnotexist" in exc_info.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.cancel(run.id, thread_id=other.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.update(run.id, thread_id=other.id, metadata={"a": "b"})


# --- truncation -----------------------------------------------------------------------------------


def test_truncation_last_messages(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("ok"))
    assistant = make_assistant(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"message {i}"} for i in range(5)])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        truncation_strategy={"type": "last_messages", "last_messages": 2},
    )
    assert run.status == "completed"
    assert run.truncation_strategy.type == "last_messages" and run.truncation_strategy.last_messages == 2
    (request,) = fake.requests(model)
    assert chat_turns(request) == [{"role": "user", "content": "message 3"}, {"role": "user", "content": "message 4"}]
    assert system_of(request) == "You are terse.", "instructions are not a thread message"


# --- token limits ---------------------------------------------------------------------------------


def test_max_completion_tokens_makes_run_incomplete(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    text = " ".join(f"word{i}" for i in range(400))
    fake.script(model, Reply.say(text))
    assistant = make_assistant(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Write a lot."}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=256
    )
    assert run.status == "incomplete"
    assert run.incomplete_details.reason == "max_completion_tokens"
    assert run.max_completion_tokens == 256 and run.expires_at is None
    assert run.usage is not None and run.usage.completion_tokens <= 256
    (request,) = fake.requests(model)
    assert request["max_tokens"] == 256
    (message,) = assistant_messages(client, thread.id)
    assert message.status == "incomplete" and message.incomplete_at is not None
    assert message.run_id == run.id
    written = message.content[0].text.value
    assert written and text.startswith(written) and written != text


def test_max_prompt_tokens_makes_run_incomplete(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("never sent"))
    assistant = make_assistant(client, model)
    huge = " ".join(f"token{i}" for i in range(600))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": huge} for _ in range(3)])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_prompt_tokens=256
    )
    assert run.status == "incomplete"
    assert run.incomplete_details.reason == "max_prompt_tokens"
    assert run.max_prompt_tokens == 256 and run.expires_at is None
    assert fake.requests(model) == [], "a prompt over the limit is never sent"
    assert assistant_messages(client, thread.id) == []
    # The thread is not locked by the incomplete run.
    client.beta.threads.messages.create(thread.id, role="user", content="short")


def test_max_prompt_tokens_truncates_history_that_does_not_fit(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("fits"))
    assistant = make_assistant(client, model)
    long = " ".join(f"filler{i}" for i in range(150))
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": f"{i} {long}"} for i in range(4)] + [{"role": "user", "content": "last"}]
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_prompt_tokens=256
    )
    assert run.status == "completed"
    (request,) = fake.requests(model)
    turns = chat_turns(request)
    assert turns[-1] == {"role": "user", "content": "last"}
    assert len(turns) < 5, "history that does not fit max_prompt_tokens is dropped, oldest first"
