"""The Conversations API through the official SDK (`client.conversations.*`, `.items.*`) against a live
server: CRUD, items, pagination, include, errors, and one store with two views (a thread IS a
conversation: docs/conversations.md). Every object returned is checked against OpenAI's schemas."""

from __future__ import annotations

import uuid
from typing import Any

import openai
import pytest

from assistd.retrieval.embedding import MiniLMEmbedder
from assistd.testing.fake_upstream import FakeUpstream, Reply
from conformance import assert_conforms

from .conftest import body_of
from .test_file_search_runs import cited_answer, ready_store
from .test_runs import WEATHER, make_assistant

pytestmark = pytest.mark.skipif(
    not hasattr(openai.OpenAI, "conversations"), reason="this openai SDK has no Conversations API"
)


def new_model() -> str:
    return f"cv-{uuid.uuid4().hex[:8]}"


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def raw_items(client: Any, conversation_id: str, **query: Any) -> dict[str, Any]:
    """One page of items as the raw JSON, checked against ConversationItemList."""
    body = body_of(client.conversations.items.with_raw_response.list(conversation_id, **query))
    if body["data"]:
        assert_conforms(body, "ConversationItemList")
    else:  # as every assistd list (and OpenAI's Assistants lists): null ids when empty, which the spec omits
        assert body == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    return body


def all_items(client: Any, conversation_id: str, **query: Any) -> list[dict[str, Any]]:
    return raw_items(client, conversation_id, order="asc", limit=100, **query)["data"]


def api_error(exc_info: pytest.ExceptionInfo[Any], status: int) -> dict[str, Any]:
    exc = exc_info.value
    assert exc.status_code == status
    body = exc.response.json()
    assert_conforms(body, "ErrorResponse")
    return body["error"]  # type: ignore[no-any-return]


MIXED = [
    user("Hello!"),
    {"role": "assistant", "content": "Hi. What can I do?"},  # the easy form: no type, string content
    {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Be brief."}]},
    {"type": "function_call", "call_id": "call_abc", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
    {"type": "function_call_output", "call_id": "call_abc", "output": "3C, snow"},
]


def test_conversation_crud_and_the_thread_view(client: Any) -> None:
    raw = client.conversations.with_raw_response.create(items=MIXED, metadata={"topic": "demo"})
    created = body_of(raw)
    assert_conforms(created, "ConversationResource")
    assert created["object"] == "conversation" and created["id"].startswith("conv_")
    assert created["metadata"] == {"topic": "demo"} and type(created["created_at"]) is int
    conv_id = created["id"]

    fetched = body_of(client.conversations.with_raw_response.retrieve(conv_id))
    assert fetched == created
    updated = client.conversations.update(conv_id, metadata={"topic": "changed"})
    assert updated.metadata == {"topic": "changed"} and updated.id == conv_id

    items = all_items(client, conv_id)
    for item in items:
        assert_conforms(item, "ConversationItem")
    assert [(i["type"], i.get("role")) for i in items] == [
        ("message", "user"),
        ("message", "assistant"),
        ("message", "system"),
        ("function_call", None),
        ("function_call_output", None),
    ]
    assert items[0]["content"] == [{"type": "input_text", "text": "Hello!"}]
    assert items[1]["content"] == [
        {"type": "output_text", "text": "Hi. What can I do?", "annotations": [], "logprobs": []}
    ]
    assert items[3]["call_id"] == "call_abc" and items[3]["arguments"] == '{"city":"Oslo"}'
    assert items[3]["id"].startswith("fc_") and items[4]["id"].startswith("fco_")
    assert items[4]["output"] == "3C, snow" and all(i["status"] == "completed" for i in items)
    # The SDK parses them into its own types.
    parsed = list(client.conversations.items.list(conv_id, order="asc"))
    assert [type(p).__name__ for p in parsed][:1] == ["Message"] and parsed[3].name == "get_weather"

    # The same conversation is a thread: user and assistant messages are its messages, the others are not.
    thread = client.beta.threads.retrieve(conv_id)
    assert thread.id == conv_id and thread.metadata == {"topic": "changed"}
    messages = list(client.beta.threads.messages.list(conv_id, order="asc"))
    assert [m.id for m in messages] == [items[0]["id"], items[1]["id"]]
    assert [m.content[0].text.value for m in messages] == ["Hello!", "Hi. What can I do?"]

    for item in items:
        one = body_of(client.conversations.items.with_raw_response.retrieve(item["id"], conversation_id=conv_id))
        assert one == item

    deleted = body_of(client.conversations.with_raw_response.delete(conv_id))
    assert_conforms(deleted, "DeletedConversationResource")
    assert deleted == {"id": conv_id, "object": "conversation.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError) as exc_info:
        client.conversations.retrieve(conv_id)
    assert api_error(exc_info, 404)["message"] == f"No conversation found with id '{conv_id}'."
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.retrieve(conv_id)


def test_items_create_retrieve_delete(client: Any, image_file: Any) -> None:
    conv = client.conversations.create()
    raw = client.conversations.items.with_raw_response.create(
        conv.id,
        items=[
            user("one"),
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "look"},
                    {"type": "input_image", "file_id": image_file.id, "detail": "low"},
                    {"type": "input_image", "image_url": "https://example.com/a.png"},
                ],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_file", "file_id": image_file.id}],
            },
        ],
    )
    page = body_of(raw)
    assert_conforms(page, "ConversationItemList")
    first, image, with_file = page["data"]
    assert page["first_id"] == first["id"] and page["last_id"] == with_file["id"] and page["has_more"] is False
    assert image["content"][1] == {"type": "input_image", "detail": "low", "file_id": image_file.id, "image_url": None}
    assert image["content"][2]["image_url"] is None  # an image URL only with include (as on OpenAI)
    with_url = client.conversations.items.retrieve(
        image["id"], conversation_id=conv.id, include=["message.input_image.image_url"]
    )
    assert with_url.content[2].image_url == "https://example.com/a.png"
    assert with_file["content"] == [{"type": "input_file", "file_id": image_file.id}]

    # Images are thread message parts; an input_file has no Assistants form and is an item only.
    messages = list(client.beta.threads.messages.list(conv.id, order="asc"))
    assert [m.id for m in messages] == [first["id"], image["id"]]
    assert [p.type for p in messages[1].content] == ["text", "image_file", "image_url"]

    after = body_of(client.conversations.items.with_raw_response.delete(first["id"], conversation_id=conv.id))
    assert_conforms(after, "ConversationResource")
    assert after["id"] == conv.id and after["object"] == "conversation"
    client.conversations.items.delete(with_file["id"], conversation_id=conv.id)
    assert [i["id"] for i in all_items(client, conv.id)] == [image["id"]]
    assert [m.id for m in client.beta.threads.messages.list(conv.id)] == [image["id"]]
    with pytest.raises(openai.NotFoundError) as exc_info:
        client.conversations.items.retrieve(first["id"], conversation_id=conv.id)
    assert api_error(exc_info, 404)["message"] == f"No item found with id '{first['id']}'."


def test_items_pagination_both_orders(client: Any) -> None:
    conv = client.conversations.create(items=[user(f"m{i}") for i in range(20)])
    call = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
    client.conversations.items.create(conv.id, items=[call, user("m20"), {**call, "call_id": "c2"}, user("m21")])
    everything = all_items(client, conv.id)
    assert len(everything) == 24
    ids = [i["id"] for i in everything]
    assert [i.get("call_id") for i in everything[20:]] == ["c1", None, "c2", None]

    for order, expected in (("asc", ids), ("desc", ids[::-1])):
        walked: list[str] = []
        after = None
        while True:
            query: dict[str, Any] = {"order": order, "limit": 5}
            if after is not None:
                query["after"] = after
            page = raw_items(client, conv.id, **query)
            walked += [i["id"] for i in page["data"]]
            assert page["has_more"] == (len(walked) < len(expected)), (order, len(walked))
            if not page["has_more"]:
                break
            after = page["last_id"]
        assert walked == expected, order
    default = raw_items(client, conv.id)  # desc, 20, as on OpenAI
    assert [i["id"] for i in default["data"]] == ids[::-1][:20] and default["has_more"] is True
    # The SDK's auto-pagination walks the same list.
    assert [i.id for i in client.conversations.items.list(conv.id, limit=7, order="asc")] == ids


def test_errors(client: Any) -> None:
    missing = "conv_doesnotexist"
    for call in (
        lambda: client.conversations.retrieve(missing),
        lambda: client.conversations.update(missing, metadata={}),
        lambda: client.conversations.delete(missing),
        lambda: client.conversations.items.list(missing),
        lambda: client.conversations.items.create(missing, items=[user("x")]),
        lambda: client.conversations.items.retrieve("msg_x", conversation_id=missing),
    ):
        with pytest.raises(openai.NotFoundError) as exc_info:
            call()
        assert api_error(exc_info, 404)["message"] == f"No conversation found with id '{missing}'."

    conv = client.conversations.create()
    for bad, param in (
        ({"type": "reasoning", "summary": []}, "items[0]"),
        ({"type": "message", "role": "robot", "content": "x"}, "items[0].role"),
        ({"type": "message", "role": "user", "content": [{"type": "input_text"}]}, "items[0].content[0].text"),
        ({"type": "message", "role": "user", "content": [{"type": "input_image"}]}, "items[0].content[0]"),
        ({"type": "function_call", "name": "f", "arguments": "{}"}, "items[0].call_id"),
        ({"type": "message", "role": "user", "content": [{"type": "input_file", "file_id": "file-nope"}]}, None),
    ):
        with pytest.raises(openai.BadRequestError) as exc_info:
            client.conversations.items.create(conv.id, items=[bad])
        error = api_error(exc_info, 400)
        if param is not None:
            assert error["param"] == param, error
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.conversations.create(items=[user(str(i)) for i in range(21)])
    assert api_error(exc_info, 400)["param"] == "items"
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.conversations.items.list(conv.id, include=["no.such.thing"])
    assert api_error(exc_info, 400)["param"] == "include"
    with pytest.raises(openai.BadRequestError):
        client.conversations.update(conv.id, metadata={"k": "v" * 513})
    for item_id in ("msg_nope", "fc_nope", "fc_0000000000000000000000XX_000"):
        with pytest.raises(openai.NotFoundError) as exc_info:
            client.conversations.items.retrieve(item_id, conversation_id=conv.id)
        assert api_error(exc_info, 404)["message"] == f"No item found with id '{item_id}'."
    assert all_items(client, conv.id) == []


def test_a_thread_with_a_function_run_reads_as_a_conversation(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.call("get_weather", {"city": "Paris"}), Reply.say("It is sunny in Paris."))
    assistant = make_assistant(client, model, tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    (call,) = run.required_action.submit_tool_outputs.tool_calls

    # While the run waits for the output, the call is an item and no output is yet.
    waiting = all_items(client, thread.id)
    assert [i["type"] for i in waiting] == ["message", "function_call"]
    assert waiting[1]["call_id"] == call.id and waiting[1]["status"] == "in_progress"

    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        tool_outputs=[{"tool_call_id": call.id, "output": "22C, sunny"}], run_id=run.id, thread_id=thread.id
    )
    assert run.status == "completed"
    conv = body_of(client.conversations.with_raw_response.retrieve(thread.id))
    assert_conforms(conv, "ConversationResource")
    assert conv["id"] == thread.id and conv["created_at"] == thread.created_at

    items = all_items(client, thread.id)
    for item in items:
        assert_conforms(item, "ConversationItem")
    assert [i["type"] for i in items] == ["message", "function_call", "function_call_output", "message"]
    question, fc, output, answer = items
    assert question["role"] == "user" and question["content"] == [{"type": "input_text", "text": "Weather in Paris?"}]
    assert (fc["call_id"], fc["name"], fc["arguments"], fc["status"]) == (
        call.id,
        "get_weather",
        '{"city":"Paris"}',
        "completed",
    )
    assert (output["call_id"], output["output"]) == (call.id, "22C, sunny")
    assert answer["role"] == "assistant" and answer["content"][0]["text"] == "It is sunny in Paris."
    messages = list(client.beta.threads.messages.list(thread.id, order="asc"))
    assert [question["id"], answer["id"]] == [m.id for m in messages]
    # Newest first by default, and every item retrievable by its id.
    assert [i["id"] for i in raw_items(client, thread.id)["data"]] == [i["id"] for i in reversed(items)]
    for item in items:
        assert client.conversations.items.retrieve(item["id"], conversation_id=thread.id).id == item["id"]
    # A run's tool call stays with its step.
    with pytest.raises(openai.BadRequestError):
        client.conversations.items.delete(fc["id"], conversation_id=thread.id)


@pytest.mark.skipif(not MiniLMEmbedder.available(), reason="the bundled embedding model is not installed")
def test_a_file_search_run_reads_as_a_conversation_with_citations(client: Any, fake: FakeUpstream) -> None:
    store_id, book_id = ready_store(client)
    model = new_model()
    marker = "【0:0†moby.txt】"
    answer_text = f"Captain Ahab hunted the whale {marker}. He sailed the Pequod."
    cited_answer(fake, model, answer_text)
    assistant = client.beta.assistants.create(
        model=model,
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Who hunted Moby Dick?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error

    items = all_items(client, thread.id)
    assert [i["type"] for i in items] == ["message", "file_search_call", "message"]
    search, answer = items[1], items[2]
    assert search["queries"] == ["Who hunted the white whale?"] and search["results"] is None
    assert search["status"] == "completed"
    (part,) = answer["content"]
    assert part["text"] == answer_text
    assert part["annotations"] == [
        {"type": "file_citation", "file_id": book_id, "filename": "moby.txt", "index": answer_text.index(marker)}
    ]
    with_results = all_items(client, thread.id, include=["file_search_call.results"])
    for item in with_results:
        assert_conforms(item, "ConversationItem")
    results = with_results[1]["results"]
    assert results[0]["file_id"] == book_id and results[0]["filename"] == "moby.txt"
    assert "Ishmael" in results[0]["text"] and 0 <= results[0]["score"] <= 1
    one = client.conversations.items.retrieve(
        search["id"], conversation_id=thread.id, include=["file_search_call.results"]
    )
    assert one.results is not None and one.results[0].file_id == book_id


def test_a_conversation_runs_through_the_assistants_api(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("Bonjour."), Reply.say("Au revoir."))
    assistant = make_assistant(client, model)
    conv = client.conversations.create(
        items=[
            user("Say hello in French."),
            {"type": "message", "role": "developer", "content": "Only an item: runs don't see it."},
        ]
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=conv.id, assistant_id=assistant.id)
    assert run.status == "completed" and run.thread_id == conv.id
    sent = fake.requests(model)[0]["messages"]
    assert {"role": "user", "content": "Say hello in French."} in sent
    assert not any("runs don't see it" in str(m.get("content")) for m in sent)

    items = all_items(client, conv.id)
    assert [(i["type"], i["role"]) for i in items] == [
        ("message", "user"),
        ("message", "developer"),
        ("message", "assistant"),
    ]
    assert items[2]["content"][0]["text"] == "Bonjour."

    # An item added through the conversation is the thread's next message; the next run sees it.
    client.conversations.items.create(conv.id, items=[user("Now goodbye.")])
    run = client.beta.threads.runs.create_and_poll(thread_id=conv.id, assistant_id=assistant.id)
    assert run.status == "completed"
    turns = [(m["role"], m["content"]) for m in fake.requests(model)[1]["messages"] if m["role"] != "system"]
    assert turns[-3:] == [("user", "Say hello in French."), ("assistant", "Bonjour."), ("user", "Now goodbye.")]
    texts = [m.content[0].text.value for m in client.beta.threads.messages.list(conv.id, order="asc")]
    assert texts == ["Say hello in French.", "Bonjour.", "Now goodbye.", "Au revoir."]

    # Items can't be added while a run is active, as messages can't.
    fake.script(model, Reply.call("get_weather", {"city": "Rome"}))
    client.beta.assistants.update(assistant.id, tools=[WEATHER])
    run = client.beta.threads.runs.create_and_poll(thread_id=conv.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    with pytest.raises(openai.BadRequestError):
        client.conversations.items.create(conv.id, items=[user("too soon")])
    client.beta.threads.runs.cancel(run.id, thread_id=conv.id)


def test_pagination_through_runs_with_parallel_calls(client: Any, fake: FakeUpstream) -> None:
    """Cursors inside a step (between a call and its output) and across the three sources hold."""
    model = new_model()
    assistant = make_assistant(client, model, tools=[WEATHER])
    conv = client.conversations.create(items=[user("Weather in Oslo and Rome?")])
    for turn in range(2):
        fake.script(
            model,
            Reply.calls(("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Rome"})),
            Reply.say(f"Answer {turn}."),
        )
        run = client.beta.threads.runs.create_and_poll(thread_id=conv.id, assistant_id=assistant.id)
        calls = run.required_action.submit_tool_outputs.tool_calls
        outputs = [{"tool_call_id": c.id, "output": f"{turn}-{k}"} for k, c in enumerate(calls)]
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            tool_outputs=outputs, run_id=run.id, thread_id=conv.id
        )
        assert run.status == "completed"
        client.conversations.items.create(
            conv.id,
            items=[
                {"type": "function_call_output", "call_id": "own", "output": f"stored {turn}"},
                user(f"Next {turn}"),
            ],
        )
    everything = all_items(client, conv.id)
    kinds = [i["type"] for i in everything]
    turn_kinds = ["function_call"] * 2 + ["function_call_output"] * 2 + ["message", "function_call_output", "message"]
    assert kinds == ["message"] + turn_kinds * 2
    outputs_0 = [i["output"] for i in everything[3:5]]
    assert outputs_0 == ["0-0", "0-1"]  # a step's outputs follow its calls, in call order
    ids = [i["id"] for i in everything]
    for limit in (1, 2, 3):
        for order, expected in (("asc", ids), ("desc", ids[::-1])):
            got = [i.id for i in client.conversations.items.list(conv.id, limit=limit, order=order)]
            assert got == expected, (limit, order)


def test_assistant_items_with_citations(client: Any, assistants_file: Any) -> None:
    """Citations of files are Assistants annotations; a URL citation has none, so that message is an item only."""
    cited = {
        "type": "message",
        "role": "assistant",
        "content": [
            {
                "type": "output_text",
                "text": "See the notes.",
                "annotations": [
                    {"type": "file_citation", "file_id": assistants_file.id, "filename": "notes.txt", "index": 13}
                ],
            }
        ],
    }
    url = {
        "type": "message",
        "role": "assistant",
        "content": [
            {
                "type": "output_text",
                "text": "See the site.",
                "annotations": [
                    {
                        "type": "url_citation",
                        "url": "https://example.com",
                        "start_index": 4,
                        "end_index": 12,
                        "title": "t",
                    }
                ],
            }
        ],
    }
    conv = client.conversations.create(items=[cited, url])
    items = all_items(client, conv.id)
    for item in items:
        assert_conforms(item, "ConversationItem")
    assert items[0]["content"][0]["annotations"] == [
        {"type": "file_citation", "file_id": assistants_file.id, "filename": "notes.txt", "index": 13}
    ]
    assert items[1]["content"][0]["annotations"] == url["content"][0]["annotations"]  # type: ignore[index]
    (message,) = client.beta.threads.messages.list(conv.id)
    assert message.id == items[0]["id"] and message.role == "assistant"
    (note,) = message.content[0].text.annotations
    assert note.type == "file_citation" and note.file_citation.file_id == assistants_file.id
    assert (note.start_index, note.end_index) == (13, 13)
    assert_conforms(body_of(client.beta.threads.messages.with_raw_response.list(conv.id)), "ListMessagesResponse")
