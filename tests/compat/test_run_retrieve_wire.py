"""Retrieving a run is written straight from the stored row (issue 18: the SDK's pollers call it over and
over): every retrieved run must be, key for key and in the same key order, the run the list endpoint builds
through the wire model, whatever the run holds and whatever its status."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import openai
import pytest

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import LiveServer

from .conftest import assert_not_found
from .test_runs import WEATHER, wait_status


def raw_get(server: LiveServer, path: str, **params: Any) -> tuple[httpx.Response, dict[str, Any]]:
    """The body as sent, keys in the server's order (the SDK's parsing would hide the order)."""
    response = httpx.get(f"{server.url}/v1{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = json.loads(response.content)
    assert isinstance(body, dict)
    return response, body


def test_every_retrieved_run_is_the_listed_run(client: Any, server: LiveServer, fake: FakeUpstream) -> None:
    model = f"run-wire-{uuid.uuid4().hex[:8]}"
    fake.script(
        model,
        Reply.say("Sunny."),
        Reply.say("A long answer cut", finish_reason="length"),
        Reply.call("get_weather", {"city": "Paris"}),
        Reply.fail(400, "bad request"),
    )
    assistant = client.beta.assistants.create(model=model, instructions="Be terse.", tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris? ünïcödé ✓"}])
    completed = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        metadata={"k": "v", "émoji": "🙂"},
        temperature=0.5,
        top_p=1,
        truncation_strategy={"type": "last_messages", "last_messages": 4},
        response_format={"type": "json_object"},
    )
    assert completed.status == "completed"
    incomplete = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=256, additional_instructions="More."
    )
    assert incomplete.status == "incomplete"
    waiting = client.beta.threads.runs.create(
        thread_id=thread.id,
        assistant_id=assistant.id,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    waiting = wait_status(client, thread.id, waiting.id, {"requires_action"})
    _, body = raw_get(server, f"/threads/{thread.id}/runs/{waiting.id}")
    assert body["required_action"]["submit_tool_outputs"]["tool_calls"] and body["usage"] is None
    assert body["expires_at"] is not None
    cancelled = client.beta.threads.runs.cancel(waiting.id, thread_id=thread.id)
    cancelled = wait_status(client, thread.id, cancelled.id, {"cancelled"})
    failed = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, parallel_tool_calls=False
    )
    assert failed.status == "failed"

    _, listed = raw_get(server, f"/threads/{thread.id}/runs", limit=100)
    runs = listed["data"]
    assert {r["status"] for r in runs} == {"completed", "incomplete", "cancelled", "failed"}
    for run in runs:
        response, retrieved = raw_get(server, f"/threads/{thread.id}/runs/{run['id']}")
        assert retrieved == run
        assert list(retrieved) == list(run), "same keys in the same order"
        assert response.headers["openai-poll-after-ms"].isdigit()
    by_status = {r["status"]: r for r in runs}
    assert by_status["completed"]["metadata"] == {"k": "v", "émoji": "🙂"}
    assert by_status["completed"]["usage"]["total_tokens"] > 0
    assert by_status["completed"]["expires_at"] is None and by_status["completed"]["parallel_tool_calls"] is True
    assert by_status["failed"]["last_error"] is not None and by_status["failed"]["parallel_tool_calls"] is False
    assert by_status["incomplete"]["incomplete_details"] == {"reason": "max_completion_tokens"}
    assert by_status["cancelled"]["required_action"] is None


def test_a_missing_run_or_thread_is_a_404(client: Any) -> None:
    thread = client.beta.threads.create()
    other = client.beta.threads.create()
    with pytest.raises(openai.NotFoundError) as exc_info:
        client.beta.threads.runs.retrieve("run_missing", thread_id=thread.id)
    assert_not_found(exc_info, "run", "run_missing")
    with pytest.raises(openai.NotFoundError) as exc_info:
        client.beta.threads.runs.retrieve("run_missing", thread_id="thread_missing")
    assert_not_found(exc_info, "thread", "thread_missing")
    assistant = client.beta.assistants.create(model=f"run-wire-{uuid.uuid4().hex[:8]}")
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    with pytest.raises(openai.NotFoundError) as exc_info:  # a run of another thread is not this thread's
        client.beta.threads.runs.retrieve(run.id, thread_id=other.id)
    assert_not_found(exc_info, "run", run.id)
