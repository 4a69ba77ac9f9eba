"""The list of messages is written straight from the stored rows (issue 18): every listed message must
be, key for key and in the same key order, the message the retrieve endpoint builds through the wire
model, whatever the message holds, in every order and window, filtered by run or not."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import LiveServer

from .conftest import assert_not_found


def raw_get(server: LiveServer, path: str, **params: Any) -> dict[str, Any]:
    """The body as sent, keys in the server's order (the SDK's parsing would hide the order)."""
    response = httpx.get(f"{server.url}/v1{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = json.loads(response.content)
    assert isinstance(body, dict)
    return body


@pytest.fixture()
def varied_thread(client: Any, fake: FakeUpstream, image_file: Any) -> tuple[str, str, str]:
    """A thread with every kind of message: string and part contents, attachments, metadata, unicode,
    and the assistant messages of a completed and of a cut-off (incomplete) run."""
    model = f"list-wire-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply.say("Four."), Reply.say("A long answer cut", finish_reason="length"))
    assistant = client.beta.assistants.create(model=model, instructions="Be terse.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "What is 2 + 2?"}])
    client.beta.threads.messages.create(
        thread.id,
        role="user",
        content=[
            {"type": "text", "text": 'Look: ünïcödé ✓ "quotes" \\ and\nnewlines'},
            {"type": "image_file", "image_file": {"file_id": image_file.id, "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        ],
        attachments=[{"file_id": image_file.id, "tools": [{"type": "code_interpreter"}]}],
        metadata={"k": "v", "émoji": "🙂"},
    )
    first = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert first.status == "completed"
    client.beta.threads.messages.create(thread.id, role="assistant", content="An assistant message by the client")
    second = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=256
    )
    assert second.status == "incomplete"
    return thread.id, first.id, second.id


def test_every_listed_message_is_the_retrieved_message(server: LiveServer, varied_thread: tuple[str, str, str]) -> None:
    thread_id, _, _ = varied_thread
    listed = raw_get(server, f"/threads/{thread_id}/messages", limit=100)
    assert list(listed) == ["object", "data", "first_id", "last_id", "has_more"]
    assert listed["object"] == "list" and listed["has_more"] is False
    messages = listed["data"]
    assert len(messages) == 5
    assert (listed["first_id"], listed["last_id"]) == (messages[0]["id"], messages[-1]["id"])
    for message in messages:
        retrieved = raw_get(server, f"/threads/{thread_id}/messages/{message['id']}")
        assert message == retrieved
        assert list(message) == list(retrieved), "same keys in the same order"
    # What the thread holds is covered: parts, attachments, metadata, a run's messages, an incomplete one.
    assert any(m["attachments"] and m["metadata"] == {"k": "v", "émoji": "🙂"} for m in messages)
    assert any(len(m["content"]) == 3 for m in messages)
    assert any(m["run_id"] is not None and m["status"] == "completed" for m in messages)
    assert any(m["status"] == "incomplete" and m["incomplete_details"] is not None for m in messages)


def test_windows_orders_and_the_run_filter_slice_the_same_list(
    server: LiveServer, varied_thread: tuple[str, str, str]
) -> None:
    thread_id, first_run, second_run = varied_thread
    path = f"/threads/{thread_id}/messages"
    newest_first = raw_get(server, path, limit=100)["data"]
    ids = [m["id"] for m in newest_first]
    assert [m["id"] for m in raw_get(server, path, limit=100, order="asc")["data"]] == ids[::-1]
    page = raw_get(server, path, limit=2, after=ids[1])
    assert page["data"] == newest_first[2:4] and page["has_more"] is True
    page = raw_get(server, path, limit=2, before=ids[4])
    assert page["data"] == newest_first[2:4] and page["has_more"] is True
    page = raw_get(server, path, limit=100, after=ids[0], before=ids[3])
    assert page["data"] == newest_first[1:3] and page["has_more"] is False
    for run_id in (first_run, second_run):
        by_run = raw_get(server, path, limit=100, run_id=run_id)
        assert by_run["data"] == [m for m in newest_first if m["run_id"] == run_id]
        assert len(by_run["data"]) == 1
    assert raw_get(server, path, run_id="run_none")["data"] == []


def test_an_empty_thread_lists_nothing_and_a_missing_one_is_a_404(client: Any, server: LiveServer) -> None:
    import openai

    thread = client.beta.threads.create()
    empty = raw_get(server, f"/threads/{thread.id}/messages")
    assert empty == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    with pytest.raises(openai.NotFoundError) as exc_info:
        client.beta.threads.messages.list("thread_missing")
    assert_not_found(exc_info, "thread", "thread_missing")
