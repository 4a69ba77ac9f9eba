"""Resuming a background response's stream: `GET /v1/responses/{id}?stream=true&starting_after=N`
through the official SDK (`client.responses.retrieve(id, stream=True, starting_after=...)`), live and
after the end, and `response.queued` (docs/responses.md "Resuming a background response's stream")."""

from __future__ import annotations

import json
import os
import time
import warnings
from typing import Any

import httpx
import openai
import pytest

from assistd.testing.fake_upstream import FakeUpstream, Reply
from conformance import assert_conforms

from .test_responses import api_error, create, event_schema, new_model, poll

pytestmark = pytest.mark.skipif(not hasattr(openai.OpenAI, "responses"), reason="this openai SDK has no Responses API")

TEXT = "one two three four five six seven eight"


def resumed(client: Any, response_id: str, **kw: Any) -> list[Any]:
    with client.responses.retrieve(response_id, stream=True, **kw) as stream:
        return list(stream)


def raw_resumed(client: Any, response_id: str, after: int | None = None) -> list[dict[str, Any]]:
    """The resumed stream as sent, each event checked against OpenAI's schema."""
    query = "stream=true" + ("" if after is None else f"&starting_after={after}")
    url = f"{str(client.base_url).rstrip('/')}/responses/{response_id}?{query}"
    events: list[dict[str, Any]] = []
    with httpx.stream("GET", url, headers={"Authorization": f"Bearer {client.api_key}"}, timeout=30) as raw:
        assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/event-stream")
        for line in raw.iter_lines():
            if line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
                assert_conforms(data, event_schema(data["type"]))
                events.append(data)
    return events


def test_a_background_response_streams_live_and_replays_from_starting_after(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say(TEXT, delay=0.3, interval=0.05))
    body = create(client, model=model, input="Count.", background=True)
    assert body["status"] == "queued"

    live = resumed(client, body["id"])  # opened while it is queued: the kept events, then the live ones
    kinds = [e.type for e in live]
    assert kinds[:3] == ["response.created", "response.queued", "response.in_progress"]
    assert kinds[-1] == "response.completed" and live[-1].response.output_text == TEXT
    assert [e.sequence_number for e in live] == list(range(len(live)))
    assert "".join(e.delta for e in live if e.type == "response.output_text.delta") == TEXT
    assert live[1].response.status == "queued" and live[2].response.status == "in_progress"

    # After the end, from any point: exactly the events after N, the same as sent live.
    tail = resumed(client, body["id"], starting_after=4)
    assert [e.sequence_number for e in tail] == list(range(5, len(live)))
    assert [e.model_dump() for e in tail] == [e.model_dump() for e in live[5:]]
    assert resumed(client, body["id"], starting_after=live[-1].sequence_number) == []

    everything = raw_resumed(client, body["id"])
    assert [e["type"] for e in everything] == kinds


def test_a_dropped_background_stream_resumes_where_it_stopped(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say(TEXT, interval=0.1))
    seen: list[Any] = []
    with client.responses.create(model=model, input="Count.", background=True, stream=True) as stream:
        for event in stream:
            seen.append(event)
            if event.type == "response.output_text.delta":
                break  # the client goes away mid-answer; the response goes on
    assert [e.type for e in seen[:2]] == ["response.created", "response.queued"]
    response_id = seen[0].response.id
    rest = resumed(client, response_id, starting_after=seen[-1].sequence_number)
    assert rest[0].sequence_number == seen[-1].sequence_number + 1
    assert rest[-1].type == "response.completed"
    deltas = [e.delta for e in seen + rest if e.type == "response.output_text.delta"]
    assert "".join(deltas) == TEXT == poll(client, response_id).output_text


def test_only_a_background_response_streams_through_get(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("Now."))
    plain = create(client, model=model, input="Hi.")
    with pytest.raises(openai.BadRequestError) as exc:
        resumed(client, plain["id"])
    assert api_error(exc, 400)["param"] == "stream"
    with pytest.raises(openai.NotFoundError):
        resumed(client, "resp_missing")
    with pytest.raises(openai.BadRequestError) as bad:
        client.get(f"/responses/{plain['id']}?stream=true&starting_after=x", cast_to=httpx.Response)
    assert api_error(bad, 400)["param"] == "starting_after"


def test_a_cancelled_background_response_stream_ends_with_its_final_event(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say(TEXT, delay=3))
    body = create(client, model=model, input="Take long.", background=True)
    assert client.responses.cancel(body["id"]).status == "cancelled"
    events = resumed(client, body["id"])
    assert [e.type for e in events][:2] == ["response.created", "response.queued"]
    assert events[-1].type == "response.failed" and events[-1].response.status == "cancelled"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    # Replayed again: the same final event under the same number.
    (again,) = resumed(client, body["id"], starting_after=events[-2].sequence_number)
    assert again.model_dump() == events[-1].model_dump()


@pytest.fixture(scope="module")
def one_worker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Any) -> Any:
    """A server that executes one queued run at a time."""
    backend = os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")[0]
    server = launch(request, tmp_path_factory, backend, env={"ASSISTD_WORKER_CONCURRENCY": "1"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        one = openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
    yield one
    one.close()


def test_a_response_cancelled_while_queued_ends_its_stream_with_its_final_event(
    one_worker: Any, fake: FakeUpstream
) -> None:
    busy, model = new_model(), new_model()
    fake.script(busy, Reply.say("Busy.", delay=4))
    fake.script(model, Reply.say(TEXT))
    first = create(one_worker, model=busy, input="Hold the worker.", background=True)
    deadline = time.monotonic() + 10
    while one_worker.responses.retrieve(first["id"]).status == "queued" and time.monotonic() < deadline:
        time.sleep(0.05)
    waiting = create(one_worker, model=model, input="Wait.", background=True)
    assert one_worker.responses.cancel(waiting["id"]).status == "cancelled"  # nobody executed it
    started = time.monotonic()
    events = resumed(one_worker, waiting["id"])
    assert [e.type for e in events] == ["response.created", "response.queued", "response.failed"]
    assert events[-1].sequence_number == 2 and events[-1].response.status == "cancelled"
    assert time.monotonic() - started < 30
    assert fake.requests(model) == []


def test_the_kept_events_go_with_the_conversation(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.say("Kept."))
    conversation = client.conversations.create()
    body = create(client, model=model, input="Keep it.", background=True, conversation=conversation.id)
    assert poll(client, body["id"]).status == "completed"
    assert resumed(client, body["id"])[-1].type == "response.completed"
    client.conversations.delete(conversation.id)
    with pytest.raises(openai.NotFoundError):
        resumed(client, body["id"])
