"""The Responses API through the official SDK (`client.responses.*`) against a live server with the
fake upstream: plain and function-calling responses, `previous_response_id` chains, `conversation`,
`max_output_tokens`, retrieve / delete / input items, the error shapes, and streaming through
`responses.stream()`. Every Response object is checked against OpenAI's schema (docs/responses.md)."""

from __future__ import annotations

import json
import os
import time
import uuid
import warnings
from functools import cache
from typing import Any

import openai
import pytest

import conformance
from assistd.retrieval.embedding import MiniLMEmbedder
from assistd.testing.fake_upstream import FakeUpstream, Reply
from conformance import assert_conforms

from .conftest import body_of
from .test_file_search_runs import cited_answer, ready_store

pytestmark = pytest.mark.skipif(not hasattr(openai.OpenAI, "responses"), reason="this openai SDK has no Responses API")

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def new_model() -> str:
    return f"rs-{uuid.uuid4().hex[:8]}"


def create(client: Any, **kw: Any) -> dict[str, Any]:
    """responses.create, as the raw JSON checked against OpenAI's Response schema."""
    body = body_of(client.responses.with_raw_response.create(**kw))
    assert_conforms(body, "Response")
    return body


def output_text(body: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for item in body["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


def api_error(exc_info: pytest.ExceptionInfo[Any], status: int) -> dict[str, Any]:
    exc = exc_info.value
    assert exc.status_code == status
    body = exc.response.json()
    assert_conforms(body, "ErrorResponse")
    return body["error"]  # type: ignore[no-any-return]


def chat(fake: FakeUpstream, model: str, index: int = -1) -> list[dict[str, Any]]:
    """The messages of one request the upstream received."""
    return fake.requests(model)[index]["messages"]  # type: ignore[no-any-return]


def test_plain_response_with_its_settings(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("Hello there!"))
    body = create(
        client,
        model=model,
        input="Hi",
        instructions="Be kind.",
        temperature=0.3,
        top_p=0.9,
        metadata={"app": "demo"},
    )
    assert body["id"].startswith("resp_") and body["object"] == "response"
    assert body["status"] == "completed" and body["error"] is None and body["incomplete_details"] is None
    assert output_text(body) == "Hello there!"
    assert body["instructions"] == "Be kind." and body["metadata"] == {"app": "demo"}
    assert body["temperature"] == 0.3 and body["top_p"] == 0.9 and body["model"] == model
    assert body["store"] is True and body["background"] is False and body["previous_response_id"] is None
    usage = body["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    [message] = body["output"]
    assert message["type"] == "message" and message["role"] == "assistant" and message["status"] == "completed"
    assert message["id"].startswith("msg_")
    sent = fake.requests(model)[-1]
    assert sent["messages"][0] == {"role": "system", "content": "Be kind."}
    assert sent["messages"][-1] == {"role": "user", "content": "Hi"}
    assert sent["temperature"] == 0.3 and sent["top_p"] == 0.9
    # The SDK's typed object reads it too.
    typed = client.responses.retrieve(body["id"])
    assert typed.output_text == "Hello there!" and typed.status == "completed"


def test_function_call_round_trip_with_function_call_output(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.call("get_weather", {"city": "Oslo"}), Reply.say("It is 3C in Oslo."))
    first = create(
        client,
        model=model,
        input="Weather in Oslo?",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
    )
    assert first["status"] == "completed"  # a response does not wait: it ends with the call
    [call] = first["output"]
    assert call["type"] == "function_call" and call["name"] == "get_weather" and call["status"] == "completed"
    assert json.loads(call["arguments"]) == {"city": "Oslo"} and call["call_id"].startswith("call_")
    assert first["tools"][0]["name"] == "get_weather" and first["tools"][0]["strict"] is True
    assert first["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert first["parallel_tool_calls"] is False
    sent = fake.requests(model)[-1]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False
    assert sent["tools"][0]["function"]["name"] == "get_weather" and sent["tools"][0]["function"]["strict"] is True

    second = create(
        client,
        model=model,
        previous_response_id=first["id"],
        input=[{"type": "function_call_output", "call_id": call["call_id"], "output": "3C, snow"}],
        tools=[WEATHER],
    )
    assert second["status"] == "completed" and output_text(second) == "It is 3C in Oslo."
    assert second["previous_response_id"] == first["id"]
    messages = chat(fake, model)
    assert messages[0] == {"role": "user", "content": "Weather in Oslo?"}
    assert messages[1]["role"] == "assistant" and messages[1]["tool_calls"][0]["id"] == call["call_id"]
    assert messages[2] == {"role": "tool", "tool_call_id": call["call_id"], "content": "3C, snow"}

    items = client.responses.input_items.list(second["id"])
    assert [i.type for i in items.data] == ["function_call_output"]

    # An output must answer a call of the conversation (or one given in the same input).
    with pytest.raises(openai.BadRequestError) as exc:
        output = {"type": "function_call_output", "call_id": "call_unknown", "output": "x"}
        client.responses.create(model=model, previous_response_id=second["id"], input=[output])
    error = api_error(exc, 400)
    assert error["param"] == "input[0].call_id" and "call_unknown" in error["message"]
    fake.script(model, Reply.say("Fine."))
    given = [
        {"type": "function_call", "call_id": "call_mine", "name": "get_weather", "arguments": '{"city":"Rome"}'},
        {"type": "function_call_output", "call_id": "call_mine", "output": "20C"},
    ]
    third = create(client, model=model, previous_response_id=second["id"], input=given, tools=[WEATHER])
    assert output_text(third) == "Fine."
    assert chat(fake, model)[-1] == {"role": "tool", "tool_call_id": "call_mine", "content": "20C"}


def test_previous_response_id_chain_keeps_the_conversation(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("Nice to meet you, Ann."), Reply.say("Your name is Ann."))
    first = create(client, model=model, input="My name is Ann.")
    second = create(client, model=model, input="What is my name?", previous_response_id=first["id"])
    assert output_text(second) == "Your name is Ann."
    assert chat(fake, model) == [
        {"role": "user", "content": "My name is Ann."},
        {"role": "assistant", "content": "Nice to meet you, Ann."},
        {"role": "user", "content": "What is my name?"},
    ]
    # A chain goes on from its newest response only (assistd keeps one thread per chain).
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model=model, input="again", previous_response_id=first["id"])
    assert api_error(exc, 400)["param"] == "previous_response_id"
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model=model, input="x", previous_response_id="resp_nope")
    assert api_error(exc, 400)["param"] == "previous_response_id"


def test_max_output_tokens_gives_an_incomplete_response(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("a long answer cut short", finish_reason="length"))
    body = create(client, model=model, input="Tell me everything.", max_output_tokens=16)
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["max_output_tokens"] == 16
    sent = fake.requests(model)[-1]
    assert (sent.get("max_completion_tokens") or sent.get("max_tokens")) <= 16


def test_retrieve_delete_and_input_items(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("ok"))
    body = create(
        client,
        model=model,
        input=[
            {"role": "user", "content": "first"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "second"}]},
        ],
    )
    fetched = body_of(client.responses.with_raw_response.retrieve(body["id"]))
    assert_conforms(fetched, "Response")
    assert fetched == body
    raw = body_of(client.responses.input_items.with_raw_response.list(body["id"]))
    assert_conforms(raw, "ResponseItemList")
    assert [i["content"][0]["text"] for i in raw["data"]] == ["second", "first"]  # newest first by default
    asc = client.responses.input_items.list(body["id"], order="asc", limit=1)
    assert [i.content[0].text for i in asc.data] == ["first"] and asc.has_more is True
    deleted = client.responses.delete(body["id"])
    assert deleted is None  # the SDK returns nothing for a delete
    with pytest.raises(openai.NotFoundError) as exc:
        client.responses.retrieve(body["id"])
    assert "No response found" in api_error(exc, 404)["message"]


def test_store_false_is_not_retrievable(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("ephemeral"))
    body = create(client, model=model, input="hi", store=False)
    assert body["store"] is False and output_text(body) == "ephemeral"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(body["id"])


def test_a_response_appends_to_a_conversation_which_is_a_thread(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("Hi from the response."))
    conv = client.conversations.create(items=[{"role": "user", "content": "Earlier question"}])
    body = create(client, model=model, input="Now this.", conversation=conv.id)
    assert body["conversation"] == {"id": conv.id}
    assert chat(fake, model)[0] == {"role": "user", "content": "Earlier question"}
    items = client.conversations.items.list(conv.id, order="asc")
    assert [(i.type, getattr(i, "role", None)) for i in items.data] == [
        ("message", "user"),
        ("message", "user"),
        ("message", "assistant"),
    ]
    assert items.data[2].id == body["output"][0]["id"]
    messages = client.beta.threads.messages.list(conv.id, order="asc")
    texts = [m.content[0].text.value for m in messages.data]
    assert texts == ["Earlier question", "Now this.", "Hi from the response."]


def test_error_shapes(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(input="hi")  # type: ignore[call-overload]
    assert api_error(exc, 400)["param"] == "model"
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model=model, input="hi", previous_response_id="resp_x", conversation="conv_x")
    assert api_error(exc, 400)["param"] == "conversation"
    with pytest.raises(openai.BadRequestError) as exc:
        choice = {"type": "function", "name": "nope"}
        client.responses.create(model=model, input="hi", tools=[WEATHER], tool_choice=choice)
    assert api_error(exc, 400)["param"] == "tool_choice"
    with pytest.raises(openai.NotFoundError) as exc:
        client.responses.create(model=model, input="hi", conversation="conv_missing")
    api_error(exc, 404)
    with pytest.raises(openai.NotFoundError) as exc:
        client.responses.input_items.list("resp_missing")
    api_error(exc, 404)


# --- streaming ------------------------------------------------------------------------------------


@cache
def event_schemas() -> dict[str, str]:
    """Event type → the name of its schema among ResponseStreamEvent's alternatives."""
    schemas = json.loads(conformance.SCHEMAS_PATH.read_text())["components"]["schemas"]
    union = schemas["ResponseStreamEvent"]
    found: dict[str, str] = {}
    for option in union.get("anyOf") or union.get("oneOf"):
        name = option["$ref"].rsplit("/", 1)[-1]
        for kind in schemas[name]["properties"]["type"].get("enum", []):
            found[kind] = name
    return found


def event_schema(kind: str) -> str:
    assert kind in event_schemas(), f"{kind} is not a Responses stream event"
    return event_schemas()[kind]


def raw_events(client: Any, **kw: Any) -> list[dict[str, Any]]:
    """A streamed response's events as sent, each checked against OpenAI's ResponseStreamEvent."""
    events: list[dict[str, Any]] = []
    with client.responses.with_streaming_response.create(stream=True, **kw) as raw:
        assert raw.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in raw.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
                assert data["type"] == name
                assert_conforms(data, event_schema(data["type"]))
                events.append(data)
    return events


def test_streamed_text_through_the_sdk_helper(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("One two three four."))
    deltas: list[str] = []
    types: list[str] = []
    with client.responses.stream(model=model, input="Count.", instructions="Count.") as stream:
        for event in stream:
            types.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert "".join(deltas) == "One two three four." and len(deltas) > 1
    assert final.status == "completed" and final.output_text == "One two three four."
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    for kind in (
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ):
        assert types.count(kind) == 1, kind
    stored = client.responses.retrieve(final.id)
    assert stored.output_text == final.output_text and stored.status == "completed"


def test_streamed_events_conform_and_are_numbered(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("Hello streamed world."))
    events = raw_events(client, model=model, input="Hi")
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    created, final = events[0], events[-1]
    assert created["type"] == "response.created" and created["response"]["status"] == "in_progress"
    assert final["type"] == "response.completed"
    [item] = final["response"]["output"]
    added = next(e for e in events if e["type"] == "response.output_item.added")
    done = next(e for e in events if e["type"] == "response.output_item.done")
    assert added["item"]["id"] == done["item"]["id"] == item["id"] and added["output_index"] == 0
    assert added["item"]["status"] == "in_progress" and done["item"] == item
    text_done = next(e for e in events if e["type"] == "response.output_text.done")
    assert text_done["text"] == "Hello streamed world." == item["content"][0]["text"]
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == text_done["text"]


def test_streamed_function_call(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("Let me check.", tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}]))
    events = raw_events(client, model=model, input="Weather?", tools=[WEATHER])
    types = [e["type"] for e in events]
    assert types[-1] == "response.completed"
    output = events[-1]["response"]["output"]
    assert [i["type"] for i in output] == ["message", "function_call"]
    call = output[1]
    arguments = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    assert json.loads(arguments) == {"city": "Oslo"}
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert done["arguments"] == call["arguments"] and done["name"] == "get_weather" and done["item_id"] == call["id"]
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert [(e["item"]["type"], e["output_index"]) for e in added] == [("message", 0), ("function_call", 1)]
    item_done = [e for e in events if e["type"] == "response.output_item.done"]
    assert [e["item"] for e in item_done] == output
    # Through the SDK helper: the typed final response.
    fake.script(model, Reply.call("get_weather", {"city": "Bergen"}))
    with client.responses.stream(model=model, input="And Bergen?", tools=[WEATHER]) as stream:
        final = stream.get_final_response()
    [typed] = final.output
    assert typed.type == "function_call" and json.loads(typed.arguments) == {"city": "Bergen"}


def test_streamed_failure_ends_with_response_failed(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.fail(400, "bad request upstream"))
    events = raw_events(client, model=model, input="Hi")
    assert events[-1]["type"] == "response.failed"
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"]
    stored = client.responses.retrieve(failed["id"])
    assert stored.status == "failed" and stored.error is not None


# --- text.format, truncation, file_search ---------------------------------------------------------

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def test_json_schema_text_format(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say('{"name": "Ann", "age": 31}'))
    fmt = {"type": "json_schema", "name": "person", "schema": PERSON, "strict": True}
    body = create(client, model=model, input="Ann is 31.", text={"format": fmt})
    assert body["text"]["format"] == fmt
    assert json.loads(output_text(body)) == {"name": "Ann", "age": 31}
    sent = fake.requests(model)[-1]["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
    fake.script(model, Reply.say("{}"))
    body = create(client, model=model, input="x", text={"format": {"type": "json_object"}})
    assert fake.requests(model)[-1]["response_format"] == {"type": "json_object"}
    assert body["text"]["format"] == {"type": "json_object"}


@pytest.fixture(scope="module")
def small_window(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Any) -> Any:
    """A server whose upstream context window is 1024 tokens."""
    backend = os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")[0]
    server = launch(request, tmp_path_factory, backend, env={"ASSISTD_UPSTREAM_CONTEXT_WINDOW": "1024"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        small = openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
    yield small
    small.close()


def test_truncation_auto_cuts_history_and_disabled_fails(small_window: Any, fake: FakeUpstream) -> None:
    long_text = "The whale swam past the ship. " * 70  # about 500 tokens of a 768-token budget
    for truncation in ("auto", "disabled"):
        model = new_model()
        fake.script(model, Reply.say("Noted."), Reply.say("Short answer."))
        first = create(small_window, model=model, input=long_text, truncation=truncation)
        assert first["status"] == "completed" and first["truncation"] == truncation
        second = create(
            small_window,
            model=model,
            input="And now? " + "Tell me more. " * 50,
            previous_response_id=first["id"],
            truncation=truncation,
        )
        if truncation == "auto":
            assert second["status"] == "completed"
            messages = chat(fake, model)
            assert all(long_text not in str(m.get("content")) for m in messages)  # the old turn was cut
            assert messages[-1]["content"].startswith("And now?")
        else:
            assert second["status"] == "failed" and second["error"]["code"] == "invalid_prompt"
            assert "context window" in second["error"]["message"]
            assert len(fake.requests(model)) == 1  # never sent


@pytest.mark.skipif(not MiniLMEmbedder.available(), reason="the bundled embedding model is not installed")
def test_file_search_with_vector_store_ids_cites_the_file(client: Any, fake: FakeUpstream) -> None:
    store_id, book_id = ready_store(client)
    model = new_model()
    marker = "【0:0†moby.txt】"
    answer = f"Captain Ahab hunted the whale {marker}. He sailed the Pequod."
    cited_answer(fake, model, answer)
    tool = {"type": "file_search", "vector_store_ids": [store_id], "max_num_results": 3}
    body = create(
        client, model=model, input="Who hunted Moby Dick?", tools=[tool], include=["file_search_call.results"]
    )
    assert body["status"] == "completed", body["error"]
    search, message = body["output"]
    assert search["type"] == "file_search_call" and search["queries"] == ["Who hunted the white whale?"]
    assert search["results"] and search["results"][0]["file_id"] == book_id and len(search["results"]) <= 3
    text = message["content"][0]
    assert text["text"] == answer
    assert text["annotations"] == [
        {"type": "file_citation", "file_id": book_id, "filename": "moby.txt", "index": answer.index(marker)}
    ]
    assert body["tools"] == [tool]
    tool_output = next(m for m in chat(fake, model) if m["role"] == "tool")["content"]
    assert tool_output.startswith(marker) and "Ishmael" in tool_output
    # The same through a stream: the citation arrives as an annotation.added event.
    cited_answer(fake, model, answer)
    events = raw_events(client, model=model, input="Who hunted Moby Dick?", tools=[tool])
    [added] = [e for e in events if e["type"] == "response.output_text.annotation.added"]
    assert added["annotation"]["file_id"] == book_id and added["annotation"]["filename"] == "moby.txt"
    types = [e["type"] for e in events]
    for kind in ("in_progress", "searching", "completed"):
        assert f"response.file_search_call.{kind}" in types
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["file_search_call", "message"]
    assert final["output"][1]["content"][0]["annotations"] == text["annotations"]


def test_file_search_errors(client: Any) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(
            model=new_model(), input="x", tools=[{"type": "file_search", "vector_store_ids": ["vs_missing"]}]
        )
    assert api_error(exc, 400)["param"] == "tools[0].vector_store_ids"
    with pytest.raises(openai.BadRequestError) as exc:  # filters are checked, then the stores
        tool = {"type": "file_search", "vector_store_ids": ["vs_x"], "filters": {"type": "eq", "key": "a", "value": 1}}
        client.responses.create(model=new_model(), input="x", tools=[tool])
    assert api_error(exc, 400)["param"] == "tools[0].vector_store_ids"


# --- background -----------------------------------------------------------------------------------


def poll(client: Any, response_id: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.responses.retrieve(response_id)
        if response.status not in ("queued", "in_progress"):
            return response
        time.sleep(0.05)
    raise AssertionError(f"{response_id} did not finish in {timeout}s")


def test_background_response_is_polled_to_completion(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("Done in the background.", delay=0.5))
    body = create(client, model=model, input="Work on it.", background=True)
    assert body["background"] is True and body["status"] in ("queued", "in_progress") and body["output"] == []
    done = poll(client, body["id"])
    assert done.status == "completed" and done.output_text == "Done in the background."
    assert done.background is True


def test_cancel_a_background_response(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("never", hang=True))
    body = create(client, model=model, input="Take forever.", background=True)
    deadline = time.monotonic() + 30
    while not fake.requests(model) and time.monotonic() < deadline:  # the model call is under way
        time.sleep(0.05)
    raw = body_of(client.responses.with_raw_response.cancel(body["id"]))
    assert_conforms(raw, "Response")
    assert raw["status"] == "cancelled" and raw["id"] == body["id"]
    assert client.responses.retrieve(body["id"]).status == "cancelled"
    # Cancelling again returns it as it is; a response that was not made in the background can't be.
    assert client.responses.cancel(body["id"]).status == "cancelled"
    fake.script(model, Reply.say("quick"))
    plain = create(client, model=model, input="hi")
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.cancel(plain["id"])
    assert "background" in api_error(exc, 400)["message"]
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model=model, input="hi", background=True, store=False)
    assert api_error(exc, 400)["param"] == "background"


def test_a_thread_goes_on_through_responses_and_back_through_assistants(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("Run answer."), Reply.say("Response answer."), Reply.say("Second run answer."))
    assistant = client.beta.assistants.create(model=model, instructions="Assistant rules.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Question one"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    body = create(client, model=model, input="Question two", conversation=thread.id, instructions="Response rules.")
    assert output_text(body) == "Response answer."
    assert chat(fake, model) == [
        {"role": "system", "content": "Response rules."},
        {"role": "user", "content": "Question one"},
        {"role": "assistant", "content": "Run answer."},
        {"role": "user", "content": "Question two"},
    ]
    client.beta.threads.messages.create(thread.id, role="user", content="Question three")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    assert chat(fake, model)[1:] == [
        {"role": "user", "content": "Question one"},
        {"role": "assistant", "content": "Run answer."},
        {"role": "user", "content": "Question two"},
        {"role": "assistant", "content": "Response answer."},
        {"role": "user", "content": "Question three"},
    ]
    runs = client.beta.threads.runs.list(thread.id)
    assert body["id"] in [r.id for r in runs.data]  # the response is a run of the thread
