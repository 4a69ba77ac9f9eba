"""Assistants: create, list, retrieve, modify (POST), delete, through the official SDK."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from conformance import assert_conforms

from .conftest import assert_not_found, assert_object, body_of

FULL = {
    "model": "gpt-4o",
    "name": "Math Tutor",
    "description": "Answers math questions",
    "instructions": "You are a personal math tutor.",
    "tools": [
        {"type": "code_interpreter"},
        {"type": "file_search"},
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        },
    ],
    "metadata": {"team": "compat", "env": "test"},
    "temperature": 0.5,
    "top_p": 0.9,
    "response_format": {"type": "json_object"},
}


def test_create_returns_a_conforming_assistant(client: Any) -> None:
    raw = client.beta.assistants.with_raw_response.create(**FULL)
    body = body_of(raw)
    assert_conforms(body, "AssistantObject")
    assert_object(body, prefix="asst_", object_type="assistant")
    for key in ("name", "description", "model", "instructions", "metadata", "temperature", "top_p", "response_format"):
        assert body[key] == FULL[key], key
    # Built-in tools without files or stores still have their (empty) entry, as on OpenAI.
    assert body["tool_resources"] == {"code_interpreter": {"file_ids": []}, "file_search": {"vector_store_ids": []}}
    assert [tool["type"] for tool in body["tools"]] == ["code_interpreter", "file_search", "function"]
    assert body["tools"][2]["function"]["name"] == "get_weather"
    assert body["tools"][2]["function"]["parameters"] == FULL["tools"][2]["function"]["parameters"]

    parsed = raw.parse()
    assert isinstance(parsed, openai.types.beta.Assistant)
    assert parsed.id == body["id"] and parsed.created_at == body["created_at"]


def test_minimal_create_emits_every_key_with_defaults(client: Any) -> None:
    body = body_of(client.beta.assistants.with_raw_response.create(model="gpt-4o-mini"))
    assert_conforms(body, "AssistantObject")
    assert body["name"] is None and body["description"] is None and body["instructions"] is None
    assert body["tools"] == [] and body["metadata"] == {} and body["tool_resources"] == {}
    assert body["temperature"] == 1.0 and body["top_p"] == 1.0
    assert body["response_format"] == "auto"


def test_retrieve_returns_what_create_returned(client: Any) -> None:
    created = body_of(client.beta.assistants.with_raw_response.create(**FULL))
    raw = client.beta.assistants.with_raw_response.retrieve(created["id"])
    body = body_of(raw)
    assert_conforms(body, "AssistantObject")
    assert body == created


def test_modify_is_a_partial_update_over_post(client: Any) -> None:
    created = client.beta.assistants.create(**FULL)
    raw = client.beta.assistants.with_raw_response.update(
        created.id, name="Renamed", metadata={"replaced": "yes"}, temperature=1.5
    )
    assert raw.http_request.method == "POST"
    body = body_of(raw)
    assert_conforms(body, "AssistantObject")
    assert body["id"] == created.id and body["created_at"] == created.created_at
    assert body["name"] == "Renamed"
    assert body["temperature"] == 1.5
    # metadata is replaced as a whole, not merged.
    assert body["metadata"] == {"replaced": "yes"}
    # Fields not sent keep their values.
    assert body["description"] == FULL["description"]
    assert body["instructions"] == FULL["instructions"]
    assert body["model"] == FULL["model"]
    assert len(body["tools"]) == 3
    assert body["top_p"] == FULL["top_p"]
    # The change is stored, not only echoed.
    assert body_of(client.beta.assistants.with_raw_response.retrieve(created.id)) == body

    cleared = client.beta.assistants.update(created.id, metadata={}, tools=[])
    assert cleared.metadata == {} and cleared.tools == []
    assert client.beta.assistants.retrieve(created.id).tools == []


def test_delete_then_retrieve_is_not_found(client: Any) -> None:
    created = client.beta.assistants.create(model="gpt-4o")
    raw = client.beta.assistants.with_raw_response.delete(created.id)
    body = body_of(raw)
    assert_conforms(body, "DeleteAssistantResponse")
    assert body == {"id": created.id, "object": "assistant.deleted", "deleted": True}
    assert raw.parse().deleted is True

    with pytest.raises(openai.NotFoundError) as exc_info:
        client.beta.assistants.retrieve(created.id)
    assert_not_found(exc_info, "assistant", created.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.update(created.id, name="ghost")
    listed = [a.id for a in client.beta.assistants.list(order="desc", limit=100)]
    assert created.id not in listed


def test_list_orders_and_cursors(client: Any) -> None:
    # Tests in one session run one at a time, so nothing else creates assistants meanwhile.
    anchor = client.beta.assistants.create(model="gpt-4o", name="anchor")
    mine = [client.beta.assistants.create(model="gpt-4o", name=f"a{i}").id for i in range(5)]

    raw = client.beta.assistants.with_raw_response.list(order="asc", after=anchor.id, limit=3)
    body = body_of(raw)
    assert_conforms(body, "ListAssistantsResponse")
    for item in body["data"]:
        assert_conforms(item, "AssistantObject")
    assert body["object"] == "list"
    assert [a["id"] for a in body["data"]] == mine[:3]
    assert body["first_id"] == mine[0] and body["last_id"] == mine[2]
    assert body["has_more"] is True

    assert [a.id for a in client.beta.assistants.list(order="asc", after=anchor.id)] == mine
    assert [a.id for a in client.beta.assistants.list(order="desc", before=anchor.id)] == mine[::-1]
    # Auto-pagination with a small page keeps `order` across pages.
    assert [a.id for a in client.beta.assistants.list(order="asc", after=anchor.id, limit=2)] == mine
    newest = client.beta.assistants.list(limit=5)  # default order is desc
    assert [a.id for a in newest.data] == mine[::-1]


def test_unknown_id_is_a_404_in_the_openai_envelope(client: Any) -> None:
    with pytest.raises(openai.NotFoundError) as exc_info:
        client.beta.assistants.retrieve("asst_doesnotexist")
    assert_not_found(exc_info, "assistant", "asst_doesnotexist")
