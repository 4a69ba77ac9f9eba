"""Streaming runs through the SDK's own helpers and event handlers (spec §6, §7).

A handler that overrides every `AssistantEventHandler` hook records what the SDK made of the
stream; the record is checked against the reference orders of spec §6.4, and what the handler
accumulated (final run, messages, steps) against what GET returns once the stream is over.
Every test scripts its own model name on the session's fake upstream.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from openai import AssistantEventHandler, AsyncAssistantEventHandler

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import LiveServer

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}},
}
RUN_START = ["E:thread.run.created", "E:thread.run.queued", "E:thread.run.in_progress"]
TEXT = "The quick brown fox jumps over the lazy dog, twice."


def new_model() -> str:
    return f"m-{uuid.uuid4().hex[:8]}"


def words(text: str) -> int:
    """How many chunks the fake streams `text` in (one per word)."""
    return len(text.split())


def wait_until(probe: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    value = probe()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or 'a condition'}; last value: {value!r}")
        time.sleep(0.02)
        value = probe()
    return value


def wait_terminal(client: Any, thread_id: str, run_id: str) -> Any:
    return wait_until(
        lambda: client.beta.threads.runs.retrieve(run_id, thread_id=thread_id),
        lambda run: run.status in {"completed", "failed", "cancelled", "expired", "incomplete"},
        what=f"run {run_id} to end",
    )


class Recorder(AssistantEventHandler):
    """Records every hook, in order. `log` interleaves `E:<event>` (from on_event) with hook names."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[str] = []
        self.events: list[Any] = []
        self.text_delta_values: list[str] = []
        self.message_delta_indexes: list[int] = []
        self.tool_calls_created: list[Any] = []
        self.tool_call_deltas: list[Any] = []
        self.tool_calls_done: list[Any] = []
        self.steps_created: list[Any] = []
        self.steps_done: list[Any] = []
        self.messages_created: list[Any] = []
        self.messages_done: list[Any] = []
        self.texts_done: list[Any] = []
        self.images_done: list[Any] = []
        self.exceptions: list[Exception] = []
        self.ended = 0

    def on_event(self, event: Any) -> None:
        self.log.append(f"E:{event.event}")
        self.events.append(event)

    def on_run_step_created(self, run_step: Any) -> None:
        self.log.append("on_run_step_created")
        self.steps_created.append(run_step)

    def on_run_step_delta(self, delta: Any, snapshot: Any) -> None:
        self.log.append("on_run_step_delta")

    def on_run_step_done(self, run_step: Any) -> None:
        self.log.append("on_run_step_done")
        self.steps_done.append(run_step)

    def on_tool_call_created(self, tool_call: Any) -> None:
        self.log.append("on_tool_call_created")
        self.tool_calls_created.append(tool_call.model_copy(deep=True))

    def on_tool_call_delta(self, delta: Any, snapshot: Any) -> None:
        self.log.append("on_tool_call_delta")
        self.tool_call_deltas.append(delta)

    def on_tool_call_done(self, tool_call: Any) -> None:
        self.log.append("on_tool_call_done")
        self.tool_calls_done.append(tool_call.model_copy(deep=True))

    def on_message_created(self, message: Any) -> None:
        self.log.append("on_message_created")
        self.messages_created.append(message.model_copy(deep=True))

    def on_message_delta(self, delta: Any, snapshot: Any) -> None:
        self.log.append("on_message_delta")
        self.message_delta_indexes.extend(part.index for part in delta.content or [])

    def on_message_done(self, message: Any) -> None:
        self.log.append("on_message_done")
        self.messages_done.append(message)

    def on_text_created(self, text: Any) -> None:
        self.log.append("on_text_created")

    def on_text_delta(self, delta: Any, snapshot: Any) -> None:
        self.log.append("on_text_delta")
        self.text_delta_values.append(delta.value or "")

    def on_text_done(self, text: Any) -> None:
        self.log.append("on_text_done")
        self.texts_done.append(text)

    def on_image_file_done(self, image_file: Any) -> None:
        self.log.append("on_image_file_done")
        self.images_done.append(image_file)

    def on_end(self) -> None:
        self.log.append("on_end")
        self.ended += 1

    def on_exception(self, exception: Exception) -> None:
        self.log.append("on_exception")
        self.exceptions.append(exception)

    def on_timeout(self) -> None:
        self.log.append("on_timeout")


# --- expected orders (spec §6.4, and the hooks §7.1 says each event fires) ----------------------------


def message_events(deltas: int, *, end: str = "completed") -> list[str]:
    """A message_creation step and its message, streamed in `deltas` text deltas (spec §6.4 (a))."""
    first = ["E:thread.message.delta", "on_text_created", "on_text_delta", "on_message_delta"]
    more = ["E:thread.message.delta", "on_text_delta", "on_message_delta"]
    return [
        "E:thread.run.step.created",
        "on_run_step_created",
        "E:thread.run.step.in_progress",
        "E:thread.message.created",
        "on_message_created",
        "E:thread.message.in_progress",
        *first,
        *more * (deltas - 1),
        f"E:thread.message.{end}",
        "on_text_done",
        "on_message_done",
        "E:thread.run.step.completed",
        "on_run_step_done",
    ]


def tool_step_events(fragments: list[int]) -> list[str]:
    """A tool_calls step, its calls streaming `fragments[i]` argument deltas each, to requires_action (§6.4 (b))."""
    out = ["E:thread.run.step.created", "on_run_step_created", "E:thread.run.step.in_progress"]
    for i, count in enumerate(fragments):
        out += ["E:thread.run.step.delta", *(["on_tool_call_done"] if i else []), "on_tool_call_created"]
        out += ["on_run_step_delta"]
        out += ["E:thread.run.step.delta", "on_tool_call_delta", "on_run_step_delta"] * count
    return out + ["E:thread.run.requires_action", "on_tool_call_done"]


def argument_fragments(args: dict[str, Any]) -> int:
    """The fake sends the name with empty arguments, then the compact JSON in 8-character pieces."""
    return -(-len(compact(args)) // 8)


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# --- comparisons with GET -------------------------------------------------------------------------------


def text_of(message: Any) -> str:
    return "".join(part.text.value for part in message.content if part.type == "text")


def assert_run_matches(streamed: Any, stored: Any) -> None:
    for key in ("id", "thread_id", "assistant_id", "status", "model", "last_error", "required_action", "usage"):
        assert getattr(streamed, key) == getattr(stored, key), key
    for key in ("created_at", "started_at", "completed_at", "failed_at", "cancelled_at", "expires_at"):
        assert getattr(streamed, key) == getattr(stored, key), key


def assert_message_matches(streamed: Any, stored: Any) -> None:
    assert streamed.id == stored.id
    assert streamed.role == stored.role == "assistant"
    assert streamed.run_id == stored.run_id
    assert streamed.status == stored.status
    assert streamed.incomplete_details == stored.incomplete_details
    assert streamed.completed_at == stored.completed_at
    assert streamed.incomplete_at == stored.incomplete_at
    assert [p.model_dump() for p in streamed.content] == [p.model_dump() for p in stored.content]


def tool_calls_of(step: Any) -> list[tuple[str, str, str, str | None]]:
    assert step.step_details.type == "tool_calls"
    return [(c.id, c.function.name, c.function.arguments, c.function.output) for c in step.step_details.tool_calls]


def assert_step_matches(streamed: Any, stored: Any) -> None:
    """A step as last streamed (created/completed event data) against the stored one."""
    assert streamed.id == stored.id
    assert streamed.type == stored.type
    assert streamed.status == stored.status
    assert streamed.run_id == stored.run_id
    assert streamed.usage == stored.usage
    assert streamed.last_error == stored.last_error
    assert streamed.completed_at == stored.completed_at
    assert streamed.step_details.model_dump() == stored.step_details.model_dump()


def stored_steps(client: Any, thread_id: str, run_id: str) -> list[Any]:
    return list(client.beta.threads.runs.steps.list(run_id, thread_id=thread_id, order="asc"))


def stored_assistant_messages(client: Any, thread_id: str, run_id: str) -> list[Any]:
    messages = client.beta.threads.messages.list(thread_id, order="asc", run_id=run_id)
    return [m for m in messages if m.role == "assistant"]


def setup(client: Any, model: str, **assistant: Any) -> tuple[Any, Any]:
    asst = client.beta.assistants.create(model=model, instructions="You are terse.", **assistant)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Tell me something."}])
    return asst, thread


def stream_run(client: Any, thread_id: str, assistant_id: str, handler: Recorder) -> None:
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id, event_handler=handler) as s:
        s.until_done()


# --- text run ---------------------------------------------------------------------------------------


def test_text_run_stream_fires_every_hook_in_reference_order(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say(TEXT))
    asst, thread = setup(client, model)
    handler = Recorder()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=asst.id, event_handler=handler) as stream:
        assert stream is handler
        streamed_text = "".join(stream.text_deltas)

    deltas = words(TEXT)
    assert handler.log == [*RUN_START, *message_events(deltas), "E:thread.run.completed", "on_end"]
    assert handler.exceptions == [] and handler.ended == 1
    assert streamed_text == "".join(handler.text_delta_values) == TEXT
    assert handler.message_delta_indexes == [0] * deltas  # one text part, index 0 from the first delta

    # The created message starts empty and in progress (spec §7.2 (5)); the completed one carries it all.
    (created,) = handler.messages_created
    assert created.status == "in_progress" and created.content == []
    (text_done,) = handler.texts_done
    assert text_done.value == TEXT and text_done.annotations == []

    run = handler.get_final_run()
    assert run.status == "completed" and run.usage is not None and run.expires_at is None
    assert_run_matches(run, client.beta.threads.runs.retrieve(run.id, thread_id=thread.id))

    (message,) = handler.get_final_messages()
    (stored,) = stored_assistant_messages(client, thread.id, run.id)
    assert_message_matches(message, stored)
    assert message.status == "completed" and text_of(stored) == TEXT

    (step,) = handler.get_final_run_steps()
    (stored_step,) = stored_steps(client, thread.id, run.id)
    assert step.id == stored_step.id and step.type == stored_step.type == "message_creation"
    assert stored_step.step_details.message_creation.message_id == message.id
    (done_step,) = handler.steps_done
    assert_step_matches(done_step, stored_step)
    assert stored_step.status == "completed" and stored_step.usage is not None


def test_raw_sse_framing_of_a_text_run(server: LiveServer, client: Any, fake: FakeUpstream) -> None:
    """Every event has its `event:` line and one JSON `data:` line; `done`/[DONE] ends the stream (spec §6.1)."""
    model = new_model()
    fake.script(model, Reply.say("Two words."))
    asst, thread = setup(client, model)
    with (
        httpx.Client(timeout=30) as http,
        http.stream(
            "POST",
            f"{server.base_url}/threads/{thread.id}/runs",
            json={"assistant_id": asst.id, "stream": True},
            headers={"authorization": "Bearer test-key", "openai-beta": "assistants=v2"},
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = response.read().decode()
    assert body.endswith("event: done\ndata: [DONE]\n\n")
    blocks = [b for b in body.split("\n\n") if b]
    events = []
    for block in blocks:
        lines = [line for line in block.split("\n") if not line.startswith(":")]
        if not lines:
            continue  # a keep-alive comment
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        name, data = lines[0][len("event: ") :], lines[1][len("data: ") :]
        events.append(name)
        if name != "done":
            payload = json.loads(data)
            assert name.startswith("thread.")
            assert payload["object"] in {"thread.run", "thread.run.step", "thread.message", "thread.message.delta"}
    assert events == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        "thread.message.delta",
        "thread.message.delta",
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
        "done",
    ]


def test_low_level_create_stream_iterates_events_to_done(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say(TEXT))
    asst, thread = setup(client, model)
    stream = client.beta.threads.runs.create(thread.id, assistant_id=asst.id, stream=True)
    events = list(stream)  # ends at the `done` terminator, without error
    names = [e.event for e in events]
    assert names == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        *["thread.message.delta"] * words(TEXT),
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    # The SDK parsed each into its typed event (not a bare dict).
    assert type(events[0]).__name__ == "ThreadRunCreated" and events[0].data.status == "queued"
    assert type(events[-1]).__name__ == "ThreadRunCompleted"
    deltas = [e.data for e in events if e.event == "thread.message.delta"]
    first = deltas[0].delta.content[0]
    assert first.index == 0 and first.type == "text" and first.text.annotations == []
    assert all(d.delta.content[0].index == 0 for d in deltas)
    # id sent once per delta object, not accumulated: each delta names the message being written.
    message_id = events[5].data.id
    assert {d.id for d in deltas} == {message_id}
    text = "".join(d.delta.content[0].text.value for d in deltas)
    stored = client.beta.threads.messages.retrieve(message_id, thread_id=thread.id)
    assert text == text_of(stored) == TEXT == text_of(events[-3].data)
    run = events[-1].data
    assert_run_matches(run, client.beta.threads.runs.retrieve(run.id, thread_id=thread.id))


def test_create_and_run_stream_starts_with_thread_created(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say(TEXT))
    asst = client.beta.assistants.create(model=model)
    handler = Recorder()
    with client.beta.threads.create_and_run_stream(
        assistant_id=asst.id,
        thread={"messages": [{"role": "user", "content": "Hi"}]},
        event_handler=handler,
    ) as stream:
        stream.until_done()

    assert handler.log == [
        "E:thread.created",
        *RUN_START,
        *message_events(words(TEXT)),
        "E:thread.run.completed",
        "on_end",
    ]
    thread = handler.events[0].data
    assert thread.id.startswith("thread_")
    assert client.beta.threads.retrieve(thread.id).id == thread.id
    run = handler.get_final_run()
    assert run.thread_id == thread.id and run.status == "completed"
    assert_run_matches(run, client.beta.threads.runs.retrieve(run.id, thread_id=thread.id))
    (message,) = handler.get_final_messages()
    (stored,) = stored_assistant_messages(client, thread.id, run.id)
    assert_message_matches(message, stored)
    assert text_of(stored) == "".join(handler.text_delta_values) == TEXT
    user_messages = [m for m in client.beta.threads.messages.list(thread.id) if m.role == "user"]
    assert [text_of(m) for m in user_messages] == ["Hi"]


# --- function calls ---------------------------------------------------------------------------------


def submit_stream(client: Any, run: Any, outputs: dict[str, str]) -> Recorder:
    handler = Recorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        run_id=run.id,
        thread_id=run.thread_id,
        tool_outputs=[{"tool_call_id": k, "output": v} for k, v in outputs.items()],
        event_handler=handler,
    ) as stream:
        stream.until_done()
    return handler


def assert_tool_step_streamed(handler: Recorder, client: Any, expected: list[tuple[str, dict[str, Any]]]) -> Any:
    """The stream ended at requires_action with one tool step holding `expected` calls; checked against GET."""
    run = handler.get_final_run()
    assert run.status == "requires_action"
    required = run.required_action.submit_tool_outputs.tool_calls
    assert [(c.function.name, c.function.arguments) for c in required] == [(n, compact(a)) for n, a in expected]
    ids = [c.id for c in required]
    assert len(set(ids)) == len(ids) and all(i.startswith("call_") for i in ids)

    # One on_tool_call_created per call, each introducing its id and name exactly once.
    assert [(c.id, c.function.name, c.function.arguments) for c in handler.tool_calls_created] == [
        (i, n, "") for i, (n, _) in zip(ids, expected, strict=True)
    ]
    assert [(c.id, c.function.name, c.function.arguments) for c in handler.tool_calls_done] == [
        (i, n, compact(a)) for i, (n, a) in zip(ids, expected, strict=True)
    ]
    for delta in handler.tool_call_deltas:  # later deltas: argument fragments only (spec §7.2 (3))
        assert delta.id is None and delta.function.name is None and delta.function.arguments

    (step,) = handler.get_final_run_steps()
    assert tool_calls_of(step) == [(i, n, compact(a), None) for i, (n, a) in zip(ids, expected, strict=True)]
    assert_run_matches(run, client.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id))
    stored = client.beta.threads.runs.steps.retrieve(step.id, thread_id=run.thread_id, run_id=run.id)
    assert stored.status == step.status == "in_progress"
    assert tool_calls_of(stored) == tool_calls_of(step)
    return run


def test_function_run_two_rounds_of_tool_outputs(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    paris, oslo, tz = {"city": "Paris"}, {"city": "Oslo, Norway"}, {"tz": "Europe/Oslo"}
    final_text = "Paris is sunny and it is noon in Oslo."
    fake.script(
        model,
        Reply.call("get_weather", paris),
        Reply.calls(("get_weather", oslo), ("get_time", tz)),
        Reply.say(final_text),
    )
    asst, thread = setup(client, model, tools=[WEATHER, TIME])

    first = Recorder()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=asst.id, event_handler=first) as stream:
        stream.until_done()
    assert first.log == [*RUN_START, *tool_step_events([argument_fragments(paris)]), "on_end"]
    run = assert_tool_step_streamed(first, client, [("get_weather", paris)])
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    (tool_step_1,) = first.get_final_run_steps()

    # Round two: the outputs complete the first tool step, and the model asks for two calls at once.
    second = submit_stream(client, run, {call.id: "22C"})
    assert second.log == [
        "E:thread.run.step.completed",
        "on_run_step_done",
        "E:thread.run.queued",
        "E:thread.run.in_progress",
        *tool_step_events([argument_fragments(oslo), argument_fragments(tz)]),
        "on_end",
    ]
    completed_1 = second.steps_done[0]
    assert completed_1.id == tool_step_1.id and completed_1.status == "completed"
    assert tool_calls_of(completed_1) == [(call.id, "get_weather", compact(paris), "22C")]
    run = assert_tool_step_streamed(second, client, [("get_weather", oslo), ("get_time", tz)])
    assert run.id == first.get_final_run().id
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert call.id not in {c.id for c in calls}
    (tool_step_2,) = second.get_final_run_steps()

    third = submit_stream(client, run, {calls[0].id: "12C", calls[1].id: "12:00"})
    assert third.log == [
        "E:thread.run.step.completed",
        "on_run_step_done",
        "E:thread.run.queued",
        "E:thread.run.in_progress",
        *message_events(words(final_text)),
        "E:thread.run.completed",
        "on_end",
    ]
    completed_2 = third.steps_done[0]
    assert completed_2.id == tool_step_2.id and completed_2.status == "completed"
    assert tool_calls_of(completed_2) == [
        (calls[0].id, "get_weather", compact(oslo), "12C"),
        (calls[1].id, "get_time", compact(tz), "12:00"),
    ]
    final = third.get_final_run()
    assert final.status == "completed" and final.required_action is None
    assert_run_matches(final, client.beta.threads.runs.retrieve(run.id, thread_id=thread.id))
    (message,) = third.get_final_messages()
    (stored_message,) = stored_assistant_messages(client, thread.id, run.id)
    assert_message_matches(message, stored_message)
    assert text_of(stored_message) == "".join(third.text_delta_values) == final_text

    # Every step, as last streamed, is what GET lists.
    steps = stored_steps(client, thread.id, run.id)
    assert [s.id for s in steps] == [tool_step_1.id, tool_step_2.id, third.steps_done[1].id]
    for streamed, stored in zip([completed_1, completed_2, third.steps_done[1]], steps, strict=True):
        assert_step_matches(streamed, stored)
    assert steps[2].step_details.message_creation.message_id == message.id

    # The model saw the outputs it was given, paired with the right calls.
    requests = fake.requests(model)
    assert len(requests) == 3
    tool_messages = [m for m in requests[2]["messages"] if m["role"] == "tool"]
    assert [(m["tool_call_id"], m["content"]) for m in tool_messages] == [
        (call.id, "22C"),
        (calls[0].id, "12C"),
        (calls[1].id, "12:00"),
    ]


# --- failures -------------------------------------------------------------------------------------------


def test_backend_failure_after_retries_ends_stream_with_run_failed(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, *[Reply.fail(500, "upstream down")] * 4)
    asst, thread = setup(client, model)
    handler = Recorder()
    with pytest.raises(openai.APIError) as exc_info:
        stream_run(client, thread.id, asst.id, handler)
    assert len(fake.requests(model)) == 4  # first try + 3 retries, then the run fails
    assert handler.log == [*RUN_START, "E:thread.run.failed", "on_exception", "on_end"]
    assert handler.exceptions == [exc_info.value]
    failed = handler.events[-1].data
    assert failed.status == "failed" and failed.last_error is not None
    assert failed.last_error.code == "server_error"
    assert failed.last_error.message in str(exc_info.value)
    stored = client.beta.threads.runs.retrieve(failed.id, thread_id=thread.id)
    assert_run_matches(failed, stored)
    assert stored.failed_at is not None and stored.expires_at is None
    assert stored_steps(client, thread.id, failed.id) == []


def test_low_level_iterator_yields_run_failed_then_raises(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, *[Reply.fail(503)] * 4)
    asst, thread = setup(client, model)
    events: list[Any] = []
    with pytest.raises(openai.APIError):
        for event in client.beta.threads.runs.create(thread.id, assistant_id=asst.id, stream=True):
            events.append(event)
    assert [e.event for e in events] == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.failed",
    ]
    failed = events[-1].data
    assert failed.last_error.code == "server_error"
    assert_run_matches(failed, client.beta.threads.runs.retrieve(failed.id, thread_id=thread.id))


# The model writes some text, then the connection drops (a call to a function not offered no longer
# fails a run: the model is asked again, docs/run-engine.md).
PARTIAL = "Let me look that up. "
CUT_AFTER_TEXT = Reply(text=PARTIAL + "It is sunny.", fault="cut_after", cut_after=5)


def test_failure_after_text_was_streamed(client: Any, fake: FakeUpstream) -> None:
    """The model writes some text, then its connection drops: the run fails mid-stream."""
    model = new_model()
    partial = PARTIAL
    fake.script(model, CUT_AFTER_TEXT)
    asst, thread = setup(client, model, tools=[WEATHER])
    handler = Recorder()
    with pytest.raises(openai.APIError):
        stream_run(client, thread.id, asst.id, handler)
    names = [e.event for e in handler.events]
    assert names[-1] == "thread.run.failed" and handler.log[-2:] == ["on_exception", "on_end"]
    assert "".join(handler.text_delta_values) == partial
    run = handler.events[-1].data
    assert "closed the connection" in run.last_error.message
    stored = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert_run_matches(run, stored)
    (message,) = stored_assistant_messages(client, thread.id, run.id)
    assert message.status == "incomplete" and text_of(message) == partial


def test_failure_after_text_streams_the_closing_message_and_step_events(client: Any, fake: FakeUpstream) -> None:
    """What the handler holds after a mid-run failure equals GET: the message and steps closed in the stream too."""
    model = new_model()
    fake.script(model, CUT_AFTER_TEXT)
    asst, thread = setup(client, model, tools=[WEATHER])
    handler = Recorder()
    with pytest.raises(openai.APIError):
        stream_run(client, thread.id, asst.id, handler)
    run = handler.events[-1].data
    (message,) = handler.get_final_messages()
    (stored_message,) = stored_assistant_messages(client, thread.id, run.id)
    assert_message_matches(message, stored_message)
    stored = {s.id: s for s in stored_steps(client, thread.id, run.id)}
    assert {s.id for s in handler.steps_done} == set(stored)
    for step in handler.steps_done:
        assert_step_matches(step, stored[step.id])


# --- cancel and disconnect --------------------------------------------------------------------------


LONG_TEXT = " ".join(f"word{i}" for i in range(80))


def cancel_mid_stream(client: Any, fake: FakeUpstream) -> tuple[Recorder, Any, list[str]]:
    model = new_model()
    fake.script(model, Reply.say(LONG_TEXT, interval=0.05))
    asst, thread = setup(client, model)
    handler = Recorder()
    after_cancel: list[str] = []
    cancelled = None
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=asst.id, event_handler=handler) as stream:
        deltas = 0
        for event in stream:
            if cancelled is not None:
                after_cancel.append(event.event)
            if event.event == "thread.message.delta":
                deltas += 1
                if deltas == 3:
                    run = stream.current_run
                    assert run is not None
                    cancelled = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
                    assert cancelled.status == "cancelling"
    return handler, thread, after_cancel


def test_cancel_mid_stream_ends_with_run_cancelled(client: Any, fake: FakeUpstream) -> None:
    handler, thread, after_cancel = cancel_mid_stream(client, fake)
    assert after_cancel, "the stream went on after the cancel"
    assert after_cancel[-1] == "thread.run.cancelled"
    assert set(after_cancel) <= {
        "thread.message.delta",
        "thread.run.cancelling",
        "thread.message.incomplete",
        "thread.run.step.cancelled",
        "thread.run.cancelled",
    }, after_cancel
    assert handler.log[-1] == "on_end" and handler.exceptions == []
    run = handler.get_final_run()
    assert run.status == "cancelled" and run.cancelled_at is not None
    stored_run = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert_run_matches(run, stored_run)

    (message,) = stored_assistant_messages(client, thread.id, run.id)
    assert message.status == "incomplete"
    assert message.incomplete_details.reason == "run_cancelled"
    streamed = "".join(handler.text_delta_values)
    assert text_of(message) == streamed
    assert 3 <= len(streamed.split()) < words(LONG_TEXT)
    (step,) = stored_steps(client, thread.id, run.id)
    assert step.status == "cancelled"


def test_cancel_mid_stream_streams_the_closing_message_and_step_events(client: Any, fake: FakeUpstream) -> None:
    """The handler's message and step snapshots after a cancel equal GET (incomplete / cancelled)."""
    handler, thread, after_cancel = cancel_mid_stream(client, fake)
    run = handler.get_final_run()
    (message,) = handler.get_final_messages()
    (stored_message,) = stored_assistant_messages(client, thread.id, run.id)
    assert_message_matches(message, stored_message)
    (stored_step,) = stored_steps(client, thread.id, run.id)
    assert [s.id for s in handler.steps_done] == [stored_step.id]
    assert_step_matches(handler.steps_done[0], stored_step)


def test_client_disconnect_does_not_stop_the_run(server: LiveServer, client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    text = " ".join(f"token{i}" for i in range(20))
    fake.script(model, Reply.say(text, interval=0.05))
    asst, thread = setup(client, model)
    seen: list[str] = []
    run_id = None
    with (
        httpx.Client(timeout=30) as http,
        http.stream(
            "POST",
            f"{server.base_url}/threads/{thread.id}/runs",
            json={"assistant_id": asst.id, "stream": True},
            headers={"authorization": "Bearer test-key", "openai-beta": "assistants=v2"},
        ) as response,
    ):
        assert response.status_code == 200
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: ") and name:
                seen.append(name)
                if name == "thread.run.created":
                    run_id = json.loads(line[len("data: ") :])["id"]
            if seen.count("thread.message.delta") >= 2:
                break  # leaving the block closes the connection mid-stream
    assert run_id is not None and "thread.run.completed" not in seen

    run = wait_terminal(client, thread.id, run_id)
    assert run.status == "completed"
    (message,) = stored_assistant_messages(client, thread.id, run_id)
    assert message.status == "completed" and text_of(message) == text
    (step,) = stored_steps(client, thread.id, run_id)
    assert step.status == "completed"
    # The thread is usable again: a new streamed run works.
    fake.script(model, Reply.say("Again."))
    handler = Recorder()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=asst.id, event_handler=handler) as stream:
        stream.until_done()
    assert handler.get_final_run().status == "completed"


# --- async ----------------------------------------------------------------------------------------------


class AsyncRecorder(AsyncAssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.log: list[str] = []
        self.text_delta_values: list[str] = []

    async def on_event(self, event: Any) -> None:
        self.log.append(f"E:{event.event}")

    async def on_run_step_created(self, run_step: Any) -> None:
        self.log.append("on_run_step_created")

    async def on_run_step_delta(self, delta: Any, snapshot: Any) -> None:
        self.log.append("on_run_step_delta")

    async def on_run_step_done(self, run_step: Any) -> None:
        self.log.append("on_run_step_done")

    async def on_tool_call_created(self, tool_call: Any) -> None:
        self.log.append("on_tool_call_created")

    async def on_tool_call_delta(self, delta: Any, snapshot: Any) -> None:
        self.log.append("on_tool_call_delta")

    async def on_tool_call_done(self, tool_call: Any) -> None:
        self.log.append("on_tool_call_done")

    async def on_message_created(self, message: Any) -> None:
        self.log.append("on_message_created")

    async def on_message_delta(self, delta: Any, snapshot: Any) -> None:
        self.log.append("on_message_delta")

    async def on_message_done(self, message: Any) -> None:
        self.log.append("on_message_done")

    async def on_text_created(self, text: Any) -> None:
        self.log.append("on_text_created")

    async def on_text_delta(self, delta: Any, snapshot: Any) -> None:
        self.log.append("on_text_delta")
        self.text_delta_values.append(delta.value or "")

    async def on_text_done(self, text: Any) -> None:
        self.log.append("on_text_done")

    async def on_image_file_done(self, image_file: Any) -> None:
        self.log.append("on_image_file_done")

    async def on_end(self) -> None:
        self.log.append("on_end")

    async def on_exception(self, exception: Exception) -> None:
        self.log.append("on_exception")

    async def on_timeout(self) -> None:
        self.log.append("on_timeout")


def test_async_handler_text_and_function_runs(server: LiveServer, client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    args = {"city": "Lisbon"}
    fake.script(model, Reply.call("get_weather", args), Reply.say(TEXT))
    asst, thread = setup(client, model, tools=[WEATHER])

    async def scenario(aclient: openai.AsyncOpenAI) -> tuple[Any, Any, AsyncRecorder, AsyncRecorder]:
        first = AsyncRecorder()
        async with aclient.beta.threads.runs.stream(
            thread_id=thread.id, assistant_id=asst.id, event_handler=first
        ) as stream:
            await stream.until_done()
        run = await first.get_final_run()
        (call,) = run.required_action.submit_tool_outputs.tool_calls
        (step,) = await first.get_final_run_steps()
        assert tool_calls_of(step) == [(call.id, "get_weather", compact(args), None)]
        second = AsyncRecorder()
        async with aclient.beta.threads.runs.submit_tool_outputs_stream(
            run_id=run.id,
            thread_id=thread.id,
            tool_outputs=[{"tool_call_id": call.id, "output": "warm"}],
            event_handler=second,
        ) as stream:
            await stream.until_done()
        return await second.get_final_run(), (await second.get_final_messages())[0], first, second

    async def main() -> tuple[Any, Any, AsyncRecorder, AsyncRecorder]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            aclient = openai.AsyncOpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
        try:
            return await scenario(aclient)
        finally:
            await aclient.close()

    run, message, first, second = asyncio.run(main())
    assert first.log == [*RUN_START, *tool_step_events([argument_fragments(args)]), "on_end"]
    assert second.log == [
        "E:thread.run.step.completed",
        "on_run_step_done",
        "E:thread.run.queued",
        "E:thread.run.in_progress",
        *message_events(words(TEXT)),
        "E:thread.run.completed",
        "on_end",
    ]
    assert run.status == "completed"
    assert_run_matches(run, client.beta.threads.runs.retrieve(run.id, thread_id=thread.id))
    (stored,) = stored_assistant_messages(client, thread.id, run.id)
    assert_message_matches(message, stored)
    assert text_of(stored) == "".join(second.text_delta_values) == TEXT
