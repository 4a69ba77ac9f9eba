"""Threads: create (with messages, tool_resources, metadata), retrieve, modify, delete."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from conformance import assert_conforms

from .conftest import assert_not_found, assert_object, body_of, count_rows


def test_create_with_messages_tool_resources_and_metadata(client: Any, assistants_file: Any) -> None:
    raw = client.beta.threads.with_raw_response.create(
        messages=[
            {"role": "user", "content": "What is 2 + 2?", "metadata": {"n": "1"}},
            {"role": "assistant", "content": [{"type": "text", "text": "4"}]},
        ],
        tool_resources={"code_interpreter": {"file_ids": [assistants_file.id]}},
        metadata={"user": "alice"},
    )
    body = body_of(raw)
    assert_conforms(body, "ThreadObject")
    assert_object(body, prefix="thread_", object_type="thread")
    assert body["metadata"] == {"user": "alice"}
    assert body["tool_resources"] == {"code_interpreter": {"file_ids": [assistants_file.id]}}
    assert raw.parse().id == body["id"]

    messages = list(client.beta.threads.messages.list(body["id"], order="asc"))
    assert [m.role for m in messages] == ["user", "assistant"]
    assert [m.content[0].text.value for m in messages] == ["What is 2 + 2?", "4"]
    assert messages[0].metadata == {"n": "1"} and messages[1].metadata == {}
    assert all(m.thread_id == body["id"] for m in messages)


def test_create_empty_thread(client: Any) -> None:
    body = body_of(client.beta.threads.with_raw_response.create())
    assert_conforms(body, "ThreadObject")
    assert body["metadata"] == {} and body["tool_resources"] == {}
    assert client.beta.threads.messages.list(body["id"]).data == []


def test_retrieve(client: Any) -> None:
    created = body_of(client.beta.threads.with_raw_response.create(metadata={"k": "v"}))
    body = body_of(client.beta.threads.with_raw_response.retrieve(created["id"]))
    assert_conforms(body, "ThreadObject")
    assert body == created


def test_modify_replaces_metadata_and_tool_resources(client: Any, assistants_file: Any) -> None:
    thread = client.beta.threads.create(metadata={"a": "1", "b": "2"})
    raw = client.beta.threads.with_raw_response.update(
        thread.id,
        metadata={"c": "3"},
        tool_resources={"code_interpreter": {"file_ids": [assistants_file.id]}},
    )
    assert raw.http_request.method == "POST"
    body = body_of(raw)
    assert_conforms(body, "ThreadObject")
    assert body["id"] == thread.id and body["created_at"] == thread.created_at
    assert body["metadata"] == {"c": "3"}
    assert body["tool_resources"] == {"code_interpreter": {"file_ids": [assistants_file.id]}}
    assert body_of(client.beta.threads.with_raw_response.retrieve(thread.id)) == body

    # Sending only metadata leaves tool_resources alone.
    again = client.beta.threads.update(thread.id, metadata={})
    assert again.metadata == {}
    assert again.tool_resources.code_interpreter.file_ids == [assistants_file.id]


def test_delete_removes_the_thread_and_its_messages(client: Any, server: Any) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "one"}])
    message = client.beta.threads.messages.create(thread.id, role="user", content="two")
    assert count_rows(server, "messages", thread_id=thread.id) == 2

    raw = client.beta.threads.with_raw_response.delete(thread.id)
    body = body_of(raw)
    assert_conforms(body, "DeleteThreadResponse")
    assert body == {"id": thread.id, "object": "thread.deleted", "deleted": True}
    assert raw.parse().deleted is True

    with pytest.raises(openai.NotFoundError) as exc_info:
        client.beta.threads.retrieve(thread.id)
    assert_not_found(exc_info, "thread", thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(message.id, thread_id=thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.list(thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.create(thread.id, role="user", content="three")
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.delete(thread.id)
    # The messages are gone from storage, not merely hidden behind the missing thread.
    assert count_rows(server, "messages", thread_id=thread.id) == 0
    assert count_rows(server, "messages", id=message.id) == 0
