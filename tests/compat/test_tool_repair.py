"""Tool calls from imperfect models (docs/run-engine.md, "Imperfect tool calls"), and usage on every
terminal run.

The fake upstream plays a model that gets tool calls wrong: arguments that are not quite JSON, a tool
it was not offered, arguments that are no JSON at all. Malformed arguments are repaired before any
client sees them; what cannot be used goes back to the model as the call's result, and the run fails
only when the model keeps at it (three model calls in a row by default). Failed, cancelled and expired
runs report the tokens their model calls used.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from assistd.testing.fake_upstream import FakeUpstream, Reply

from .test_file_search_runs import MiniLMEmbedder, ready_store
from .test_runs import TERMINAL, WEATHER, chat_turns, make_assistant, new_model, wait_status, wait_until
from .test_streaming import Recorder, stored_assistant_messages, stored_steps, submit_stream

ASK = [{"role": "user", "content": "Weather in Paris?"}]


def start(client: Any, fake: FakeUpstream, *replies: Reply, tools: list[Any] | None = None) -> tuple[str, Any, Any]:
    model = new_model()
    fake.script(model, *replies)
    assistant = make_assistant(client, model, tools=[WEATHER] if tools is None else tools)
    return model, assistant, client.beta.threads.create(messages=ASK)


def poll(client: Any, assistant: Any, thread: Any) -> Any:
    return client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)


def stream(client: Any, assistant: Any, thread: Any) -> Recorder:
    handler = Recorder()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=handler) as s:
        s.until_done()
    return handler


def raw_run_output(client: Any, run: Any) -> str:
    """Everything a client can read of the run: the run, its steps, the thread's messages (raw JSON)."""
    runs = client.beta.threads.runs
    bodies = [runs.with_raw_response.retrieve(run.id, thread_id=run.thread_id).text]
    bodies.append(runs.steps.with_raw_response.list(run.id, thread_id=run.thread_id).text)
    bodies.append(client.beta.threads.messages.with_raw_response.list(run.thread_id).text)
    return "\n".join(bodies)


def tool_results(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in chat_turns(request) if m["role"] == "tool"]


def called(request: dict[str, Any]) -> list[tuple[str, str]]:
    """The (name, arguments) of every tool call the request shows the model."""
    return [
        (c["function"]["name"], c["function"]["arguments"])
        for m in chat_turns(request)
        for c in m.get("tool_calls") or []
    ]


# --- malformed arguments are repaired -------------------------------------------------------------------

BROKEN = [
    "{'city': 'Paris'}",  # single quotes
    '{"city": "Paris",}',  # a trailing comma
    '{"city": "Paris"',  # cut short
]


@pytest.mark.parametrize("arguments", BROKEN, ids=["quotes", "trailing-comma", "cut"])
def test_malformed_function_arguments_are_repaired_polled(client: Any, fake: FakeUpstream, arguments: str) -> None:
    model, assistant, thread = start(client, fake, Reply.call("get_weather", arguments), Reply.say("Sunny."))
    run = poll(client, assistant, thread)
    assert run.status == "requires_action", run.last_error
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city":"Paris"}')
    (step,) = stored_steps(client, thread.id, run.id)
    assert step.step_details.tool_calls[0].function.arguments == '{"city":"Paris"}'
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "18C"}]
    )
    assert run.status == "completed"
    # The model is shown the arguments its call was answered with.
    assert called(fake.requests(model)[-1]) == [("get_weather", '{"city":"Paris"}')]


def test_malformed_function_arguments_are_repaired_streamed(client: Any, fake: FakeUpstream) -> None:
    model, assistant, thread = start(client, fake, Reply.call("get_weather", "{'city': 'Paris',"), Reply.say("Sunny."))
    handler = stream(client, assistant, thread)
    run = handler.get_final_run()
    assert run.status == "requires_action", run.last_error
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert call.function.arguments == '{"city":"Paris"}'
    # What streamed adds up to the repaired arguments: clients never see the broken ones.
    (created,) = handler.tool_calls_created
    assert created.id == call.id and created.function.arguments == ""
    assert "".join(d.function.arguments for d in handler.tool_call_deltas) == '{"city":"Paris"}'
    (done,) = handler.tool_calls_done
    assert done.function.arguments == '{"city":"Paris"}'

    after = submit_stream(client, run, {call.id: "18C"})
    assert after.get_final_run().status == "completed"
    tool_step = stored_steps(client, thread.id, run.id)[0]
    assert tool_step.status == "completed"
    assert tool_step.step_details.tool_calls[0].function.arguments == '{"city":"Paris"}'
    assert "".join(after.text_delta_values) == "Sunny."


# --- what cannot be used goes back to the model -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["poll", "stream"])
def test_unknown_tool_is_corrected_on_retry(client: Any, fake: FakeUpstream, mode: str) -> None:
    model, assistant, thread = start(
        client,
        fake,
        Reply.call("get_stock", {"ticker": "AAPL"}),
        Reply.call("get_weather", {"city": "Paris"}),
        Reply.say("Sunny in Paris."),
    )
    if mode == "poll":
        run = poll(client, assistant, thread)
    else:
        handler = stream(client, assistant, thread)
        run = handler.get_final_run()
        assert [c.function.name for c in handler.tool_calls_created] == ["get_weather"]
    assert run.status == "requires_action", run.last_error
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert call.function.name == "get_weather"
    retry = fake.requests(model)[1]
    assert called(retry) == [("get_stock", '{"ticker":"AAPL"}')]
    (error,) = tool_results(retry)
    assert error.startswith("Error: no tool named 'get_stock'; available: get_weather.")
    assert "get_stock" not in raw_run_output(client, run), "the refused call never reaches clients"

    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "18C"}]
    )
    assert run.status == "completed"
    # After the wait for tool outputs, the model still sees its mistake, and its correction.
    last = fake.requests(model)[-1]
    assert [name for name, _ in called(last)] == ["get_stock", "get_weather"]
    assert tool_results(last)[0] == error and tool_results(last)[1] == "18C"
    (step,) = [s for s in stored_steps(client, thread.id, run.id) if s.type == "tool_calls"]
    assert [c.function.name for c in step.step_details.tool_calls] == ["get_weather"]
    assert "get_stock" not in raw_run_output(client, run)


def test_a_refused_call_beside_a_good_one_waits_for_the_good_ones_output(client: Any, fake: FakeUpstream) -> None:
    """Parallel calls: the good one goes to the client; the model then reads its output and the error."""
    model, assistant, thread = start(
        client,
        fake,
        Reply.calls(("get_weather", {"city": "Paris"}), ("get_stock", {"ticker": "AAPL"})),
        Reply.say("Sunny."),
    )
    run = poll(client, assistant, thread)
    assert run.status == "requires_action"
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert call.function.name == "get_weather"
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "18C"}]
    )
    assert run.status == "completed"
    last = fake.requests(model)[-1]
    assert sorted(name for name, _ in called(last)) == ["get_stock", "get_weather"]
    assert sorted(r[:6] for r in tool_results(last)) == ["18C", "Error:"]
    (step, _) = stored_steps(client, thread.id, run.id)
    assert [c.function.name for c in step.step_details.tool_calls] == ["get_weather"]
    assert "get_stock" not in raw_run_output(client, run)


def test_invalid_arguments_are_corrected_on_retry(client: Any, fake: FakeUpstream) -> None:
    model, assistant, thread = start(
        client,
        fake,
        Reply(text="Checking. ", tool_calls=[{"name": "get_weather", "arguments": "city=Paris"}]),
        Reply.call("get_weather", {"city": "Paris"}),
    )
    run = poll(client, assistant, thread)
    assert run.status == "requires_action", run.last_error
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert call.function.arguments == '{"city":"Paris"}'
    retry = fake.requests(model)[1]
    assert called(retry) == [("get_weather", "{}")]  # shown as an object; the error quotes what it sent
    (error,) = tool_results(retry)
    assert error.startswith("Error: arguments are not valid JSON") and "You sent: city=Paris." in error
    # The text before the refused call is an ordinary, completed message; nothing else shows.
    (message,) = stored_assistant_messages(client, thread.id, run.id)
    assert message.status == "completed" and message.content[0].text.value == "Checking. "
    assert "city=Paris" not in raw_run_output(client, run)


@pytest.mark.parametrize("mode", ["poll", "stream"])
def test_past_the_bound_the_run_fails_saying_what_the_model_did(client: Any, fake: FakeUpstream, mode: str) -> None:
    model, assistant, thread = start(client, fake, *[Reply.call("get_stock", {"ticker": "AAPL"})] * 4)
    if mode == "poll":
        run = poll(client, assistant, thread)
    else:
        handler = Recorder()
        runs = client.beta.threads.runs
        with (  # the SDK raises on thread.run.failed
            pytest.raises(openai.APIError),
            runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=handler) as events,
        ):
            events.until_done()
        run = handler.events[-1].data
        assert handler.events[-1].event == "thread.run.failed" and handler.tool_calls_created == []
    assert run.status == "failed" and run.required_action is None
    assert run.last_error.code == "server_error"
    assert run.last_error.message == "The model called an unknown tool 'get_stock' 3 times (available: get_weather)."
    assert len(fake.requests(model)) == 3  # ASSISTD_TOOL_CALL_RETRIES=2: two retries
    assert run.usage is not None and run.usage.prompt_tokens > 0 and run.usage.completion_tokens > 0
    assert stored_steps(client, thread.id, run.id) == []


def test_bad_arguments_past_the_bound_fail_with_the_last_error(client: Any, fake: FakeUpstream) -> None:
    _, assistant, thread = start(client, fake, *[Reply.call("get_weather", '["Paris"]')] * 3)
    run = poll(client, assistant, thread)
    assert run.status == "failed"
    assert run.last_error.message.startswith("The model sent invalid arguments for 'get_weather' 3 times (last: ")
    assert "arguments must be a JSON object, got an array" in run.last_error.message


# --- built-in tools read their own arguments ------------------------------------------------------------

needs_embedder = pytest.mark.skipif(
    not MiniLMEmbedder.available(), reason="the bundled embedding model is not installed"
)


def book_assistant(client: Any, model: str) -> Any:
    store_id, _ = ready_store(client)
    return client.beta.assistants.create(
        model=model,
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
    )


@needs_embedder
def test_file_search_with_broken_arguments_is_repaired(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.call("file_search", "{'queries': ['Who hunted the white whale?'"), Reply.say("Ahab."))
    assistant = book_assistant(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Who hunted Moby Dick?"}])
    run = poll(client, assistant, thread)
    assert run.status == "completed", run.last_error
    search = stored_steps(client, thread.id, run.id)[0].step_details.tool_calls[0]
    assert search.type == "file_search" and search.file_search.results
    assert called(fake.requests(model)[1]) == [("file_search", '{"queries":["Who hunted the white whale?"]}')]


@needs_embedder
def test_file_search_without_usable_queries_tells_the_model(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(
        model,
        Reply.call("file_search", "whale"),
        Reply.call("file_search", {"queries": ["white whale"]}),
        Reply.say("Ahab."),
    )
    assistant = book_assistant(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Who hunted Moby Dick?"}])
    run = poll(client, assistant, thread)
    assert run.status == "completed", run.last_error
    first, second = [s.step_details.tool_calls[0] for s in stored_steps(client, thread.id, run.id)[:2]]
    assert first.file_search.results == [] and second.file_search.results
    (error,) = tool_results(fake.requests(model)[1])
    assert error.startswith("Error: arguments are not valid JSON") and "file_search" in error


# --- usage on every terminal run ----------------------------------------------------------------------


def test_failed_run_reports_the_usage_of_its_model_calls(client: Any, fake: FakeUpstream) -> None:
    """A tool round, then the model's connection drops mid-answer: both calls are counted."""
    _, assistant, thread = start(
        client,
        fake,
        Reply.call("get_stock", {"ticker": "AAPL"}),  # refused, sent back: a model call with no step
        Reply(text="It is sunny and warm in Paris today.", fault="cut_after", cut_after=3),
    )
    run = poll(client, assistant, thread)
    assert run.status == "failed" and "closed the connection" in run.last_error.message
    assert run.usage is not None and run.usage.prompt_tokens > 0
    (step,) = stored_steps(client, thread.id, run.id)
    assert step.status == "failed" and step.usage is not None and step.usage.completion_tokens > 0  # counted here
    assert run.usage.completion_tokens > step.usage.completion_tokens  # the refused call counts too
    assert run.usage.prompt_tokens > step.usage.prompt_tokens


@needs_embedder
def test_failed_run_after_a_file_search_keeps_the_search_calls_usage(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(
        model,
        Reply.call("file_search", {"queries": ["white whale"]}),
        Reply(text="Captain Ahab hunted the whale.", fault="cut_after", cut_after=2),
    )
    assistant = book_assistant(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Who hunted Moby Dick?"}])
    run = poll(client, assistant, thread)
    assert run.status == "failed"
    search, message = stored_steps(client, thread.id, run.id)
    assert search.usage is not None and search.usage.total_tokens > 0
    assert message.usage is not None and message.usage.completion_tokens > 0
    assert run.usage.total_tokens == search.usage.total_tokens + message.usage.total_tokens


def test_cancelled_run_reports_the_usage_of_its_model_calls(client: Any, fake: FakeUpstream) -> None:
    text = " ".join(f"w{i}" for i in range(400))
    _, assistant, thread = start(client, fake, Reply(text=text, interval=0.05), tools=[])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    wait_until(
        lambda: stored_assistant_messages(client, thread.id, run.id),
        lambda ms: len(ms) == 1 and ms[0].status == "in_progress",  # opened at the first word
        what="the answer to start",
    )
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    run = wait_status(client, thread.id, run.id, TERMINAL)
    assert run.status == "cancelled"
    assert run.usage is not None and run.usage.prompt_tokens > 0 and run.usage.completion_tokens > 0
    (step,) = stored_steps(client, thread.id, run.id)
    assert step.status == "cancelled" and step.usage is not None
    assert step.usage.total_tokens == run.usage.total_tokens


def test_a_forced_tool_choice_still_holds_after_a_refused_call(client: Any, fake: FakeUpstream) -> None:
    model, assistant, thread = start(
        client, fake, Reply.call("get_stock", {"ticker": "AAPL"}), Reply.call("get_weather", {"city": "Paris"})
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, tool_choice="required", poll_interval_ms=50
    )
    assert run.status == "requires_action"
    assert [r["tool_choice"] for r in fake.requests(model)] == ["required", "required"]
