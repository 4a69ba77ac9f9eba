"""Ingestion of files into vector stores: what one claim of a vector-store file does.

A vector-store file is `in_progress` until a worker (in any replica) claims it, turns the File's
bytes into chunks with embeddings, and marks it `completed`, or `failed` with `last_error`
(`unsupported_file`, `invalid_file`, `server_error`). The worker is the leased queue's (engine/queue.py),
assembled in app.py from `JOBS` and an `Ingestion`: its lease is renewed while a file is ingested; a
worker that dies leaves a lapsed lease and another claims the file and starts it again; one stopped
cleanly hands it back. Retrieval does not import the engine: the queue reaches this module only as
the `Lease` an `Ingestion` ends its claim through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Table, delete, select, text

from assistd.db import tables as t
from assistd.db.database import Connection, Database
from assistd.retrieval.search import PGVECTOR_DIMENSIONS, has_pgvector, vector_literal
from assistd.storage.blobs import BlobStore

log = logging.getLogger("assistd.ingestion")

_INSERT_WITH_VECTOR = text(
    "INSERT INTO chunks (vector_store_id, file_id, seq, text, tokens, embedding, embedding_vec) "
    "VALUES (:vector_store_id, :file_id, :seq, :text, :tokens, :embedding, CAST(CAST(:vec AS text) AS vector))"
)

FileKey = tuple[str, ...]
"""(vector_store_id, file_id): a vector-store file's key, in the order of `Jobs.key`."""


class IngestError(Exception):
    """A file cannot be ingested; `code` is the vector-store file's last_error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class ChunkRecord:
    text: str
    tokens: int
    embedding: bytes  # float32, little-endian


class Pipeline(Protocol):
    async def process(self, filename: str, data: bytes, max_tokens: int, overlap: int) -> list[ChunkRecord]: ...


class Lease(Protocol):
    """The claim the worker holds on a file (engine/queue.py's LeasedQueue): `complete` writes the outcome
    and ends it, only while the claim is still this worker's and the file still in progress."""

    async def complete(self, conn: Connection, key: FileKey, **values: Any) -> bool: ...


def _pending() -> ColumnElement[bool]:
    return t.vector_store_files.c.status == "in_progress"


@dataclass(frozen=True)
class Jobs:
    """Where ingestion jobs live, for the leased queue: the table, its key columns, which rows are work,
    in which order."""

    table: Table
    key: tuple[str, ...]
    ready: Callable[[], ColumnElement[bool]]
    order_by: str


JOBS = Jobs(table=t.vector_store_files, key=("vector_store_id", "id"), ready=_pending, order_by="created_at")


class Ingestion:
    """One claim's work: load the File's bytes, parse, chunk, embed (the pipeline), store the chunks and
    mark the vector-store file completed, or failed with its last_error. Called by the queue's worker
    with the key of a file it has claimed."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        pipeline: Callable[[], Awaitable[Pipeline]],
        lease: Lease,
        *,
        owner: str,
        max_bytes: int = 512 * 1024 * 1024,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.pipeline = pipeline
        self.lease = lease
        self.owner = owner
        self.max_bytes = max_bytes

    async def __call__(self, key: FileKey) -> None:
        store_id, file_id = key
        log.info("ingesting a file", extra={"vector_store_id": store_id, "file_id": file_id, "owner": self.owner})
        started = time.monotonic()
        await self._ingest(store_id, file_id)
        seconds = round(time.monotonic() - started, 3)
        log.info("ingestion over", extra={"vector_store_id": store_id, "file_id": file_id, "seconds": seconds})

    async def _ingest(self, store_id: str, file_id: str) -> None:
        c = t.vector_store_files.c
        try:
            async with self.db.read() as conn:
                vs_file = (
                    await conn.execute(
                        select(t.vector_store_files).where(c.vector_store_id == store_id, c.id == file_id)
                    )
                ).first()
                file = (await conn.execute(select(t.files).where(t.files.c.id == file_id))).first()
            if vs_file is None:
                return
            if file is None:
                raise IngestError("invalid_file", f"The file {file_id} no longer exists.")
            if file.bytes > self.max_bytes:
                raise IngestError("invalid_file", f"The file is larger than {self.max_bytes} bytes.")
            data = b"".join([chunk async for chunk in self.blobs.read(file.blob_key)])
            static = vs_file.chunking_strategy["static"]
            pipeline = await self.pipeline()
            records = await pipeline.process(
                file.filename, data, static["max_chunk_size_tokens"], static["chunk_overlap_tokens"]
            )
            await self._store(store_id, file_id, records)
        except IngestError as exc:
            await self._finish(store_id, file_id, "failed", {"code": exc.code, "message": exc.message})
        except Exception as exc:
            log.exception("ingestion failed", extra={"vector_store_id": store_id, "file_id": file_id})
            await self._finish(
                store_id,
                file_id,
                "failed",
                {"code": "server_error", "message": f"Ingestion failed: {type(exc).__name__}."},
            )

    async def _store(self, store_id: str, file_id: str, records: list[ChunkRecord]) -> None:
        usage = sum(len(r.text.encode()) + len(r.embedding) for r in records)
        pgvector = await has_pgvector(self.db)  # before the write: it may read on a connection of its own
        async with self.db.write() as conn:
            owned = await self.lease.complete(conn, (store_id, file_id), status="completed", usage_bytes=usage)
            if not owned:  # cancelled, removed or re-attached meanwhile: keep nothing
                return
            await conn.execute(
                delete(t.chunks).where(t.chunks.c.vector_store_id == store_id, t.chunks.c.file_id == file_id)
            )
            if not records:
                return
            rows = [
                {
                    "vector_store_id": store_id,
                    "file_id": file_id,
                    "seq": i,
                    "text": r.text,
                    "tokens": r.tokens,
                    "embedding": r.embedding,
                }
                for i, r in enumerate(records)
            ]
            if not pgvector:
                await conn.execute(t.chunks.insert(), rows)
                return
            # pgvector (migration 0005): the 384-dimension vectors are copied into `embedding_vec`.
            width = PGVECTOR_DIMENSIONS * 4
            for row, r in zip(rows, records, strict=True):
                row["vec"] = vector_literal(r.embedding) if len(r.embedding) == width else None
            await conn.execute(_INSERT_WITH_VECTOR, rows)

    async def _finish(self, store_id: str, file_id: str, status: str, error: dict[str, str]) -> None:
        """End the claim with a failure; nothing is written when it is no longer ours to end."""
        async with self.db.write() as conn:
            await self.lease.complete(conn, (store_id, file_id), status=status, last_error=error)
