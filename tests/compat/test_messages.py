"""Messages: create (string and parts content, attachments, metadata), list, retrieve, modify, delete."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from conformance import assert_conforms

from .conftest import assert_not_found, assert_object, body_of


@pytest.fixture()
def thread(client: Any) -> Any:
    return client.beta.threads.create()


def test_create_with_string_content(client: Any, thread: Any) -> None:
    raw = client.beta.threads.messages.with_raw_response.create(
        thread.id, role="user", content="Hello, world", metadata={"source": "compat"}
    )
    body = body_of(raw)
    assert_conforms(body, "MessageObject")
    assert_object(body, prefix="msg_", object_type="thread.message")
    assert body["thread_id"] == thread.id
    assert body["role"] == "user"
    assert body["status"] == "completed"
    assert body["content"] == [{"type": "text", "text": {"value": "Hello, world", "annotations": []}}]
    assert body["assistant_id"] is None and body["run_id"] is None
    assert body["incomplete_details"] is None and body["incomplete_at"] is None
    assert type(body["completed_at"]) is int
    assert body["metadata"] == {"source": "compat"}
    assert body["attachments"] == []

    parsed = raw.parse()
    assert parsed.id == body["id"]
    assert parsed.content[0].text.value == "Hello, world"


def test_create_with_content_parts(client: Any, thread: Any, image_file: Any) -> None:
    assert image_file.id.startswith("file-")
    raw = client.beta.threads.messages.with_raw_response.create(
        thread.id,
        role="user",
        content=[
            {"type": "text", "text": "What is in these images?"},
            {"type": "image_file", "image_file": {"file_id": image_file.id, "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/dog.png"}},
        ],
    )
    body = body_of(raw)
    assert_conforms(body, "MessageObject")
    content = body["content"]
    assert [part["type"] for part in content] == ["text", "image_file", "image_url", "image_url"]
    assert content[0]["text"] == {"value": "What is in these images?", "annotations": []}
    assert content[1]["image_file"]["file_id"] == image_file.id
    assert content[1]["image_file"]["detail"] == "low"
    assert content[2]["image_url"] == {"url": "https://example.com/cat.png", "detail": "high"}
    assert content[3]["image_url"]["url"] == "https://example.com/dog.png"

    parsed = raw.parse()
    assert parsed.content[1].type == "image_file" and parsed.content[1].image_file.file_id == image_file.id
    assert parsed.content[2].type == "image_url" and parsed.content[2].image_url.url.endswith("cat.png")

    fetched = body_of(client.beta.threads.messages.with_raw_response.retrieve(body["id"], thread_id=thread.id))
    assert fetched == body


def test_image_file_must_exist(client: Any, thread: Any) -> None:
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.beta.threads.messages.create(
            thread.id,
            role="user",
            content=[{"type": "image_file", "image_file": {"file_id": "file-doesnotexist"}}],
        )
    assert_conforms(exc_info.value.response.json(), "ErrorResponse")
    assert "file-doesnotexist" in exc_info.value.message


def test_create_with_attachments(client: Any, thread: Any, assistants_file: Any) -> None:
    attachments = [{"file_id": assistants_file.id, "tools": [{"type": "code_interpreter"}, {"type": "file_search"}]}]
    body = body_of(
        client.beta.threads.messages.with_raw_response.create(
            thread.id,
            role="user",
            content="Analyse this file",
            attachments=attachments,
        )
    )
    assert_conforms(body, "MessageObject")
    assert body["attachments"] == attachments
    # code_interpreter attachments join the thread's code_interpreter files.
    updated = client.beta.threads.retrieve(thread.id)
    assert updated.tool_resources.code_interpreter.file_ids == [assistants_file.id]


def test_list_filters_by_run_id(client: Any, thread: Any) -> None:
    created = client.beta.threads.messages.create(thread.id, role="user", content="hi")

    everything = body_of(client.beta.threads.messages.with_raw_response.list(thread.id))
    assert_conforms(everything, "ListMessagesResponse")
    assert [m["id"] for m in everything["data"]] == [created.id]
    assert everything["first_id"] == everything["last_id"] == created.id
    assert everything["has_more"] is False

    # No run exists yet, so filtering by any run id matches nothing. (The spec types first_id and
    # last_id as strings; OpenAI sends null for an empty page, which the SDK accepts.)
    filtered = body_of(client.beta.threads.messages.with_raw_response.list(thread.id, run_id="run_abc123"))
    assert filtered == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    assert list(client.beta.threads.messages.list(thread.id, run_id="run_abc123")) == []


def test_retrieve_checks_the_thread(client: Any, thread: Any) -> None:
    message = client.beta.threads.messages.create(thread.id, role="assistant", content="I am here")
    body = body_of(client.beta.threads.messages.with_raw_response.retrieve(message.id, thread_id=thread.id))
    assert_conforms(body, "MessageObject")
    assert body["id"] == message.id and body["role"] == "assistant"

    other = client.beta.threads.create()
    with pytest.raises(openai.NotFoundError) as exc_info:
        client.beta.threads.messages.retrieve(message.id, thread_id=other.id)
    assert_not_found(exc_info, "message", message.id)


def test_modify_replaces_metadata(client: Any, thread: Any) -> None:
    message = client.beta.threads.messages.create(thread.id, role="user", content="x", metadata={"a": "1", "b": "2"})
    raw = client.beta.threads.messages.with_raw_response.update(message.id, thread_id=thread.id, metadata={"c": "3"})
    assert raw.http_request.method == "POST"
    body = body_of(raw)
    assert_conforms(body, "MessageObject")
    assert body["metadata"] == {"c": "3"}
    assert body["content"] == [{"type": "text", "text": {"value": "x", "annotations": []}}]
    assert body["created_at"] == message.created_at
    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread.id).metadata == {"c": "3"}
    assert client.beta.threads.messages.update(message.id, thread_id=thread.id, metadata={}).metadata == {}
    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread.id).metadata == {}


def test_delete_then_retrieve_is_not_found(client: Any, thread: Any) -> None:
    keep = client.beta.threads.messages.create(thread.id, role="user", content="keep")
    gone = client.beta.threads.messages.create(thread.id, role="user", content="delete me")
    raw = client.beta.threads.messages.with_raw_response.delete(gone.id, thread_id=thread.id)
    body = body_of(raw)
    assert_conforms(body, "DeleteMessageResponse")
    assert body == {"id": gone.id, "object": "thread.message.deleted", "deleted": True}
    assert raw.parse().deleted is True

    with pytest.raises(openai.NotFoundError) as exc_info:
        client.beta.threads.messages.retrieve(gone.id, thread_id=thread.id)
    assert_not_found(exc_info, "message", gone.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.delete(gone.id, thread_id=thread.id)
    assert [m.id for m in client.beta.threads.messages.list(thread.id)] == [keep.id]
