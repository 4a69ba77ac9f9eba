"""Ingestion of files into vector stores: parse, chunk, embed, store; claimed with a lease like runs.

A vector-store file is `in_progress` until a worker (in any replica) claims it, turns the File's
bytes into chunks with embeddings, and marks it `completed`, or `failed` with `last_error`
(`unsupported_file`, `invalid_file`, `server_error`). A worker that dies leaves a lapsed lease:
another claims the file and starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import and_, delete, or_, select, text, update

from assistd.db import tables as t
from assistd.db.database import Connection, Database
from assistd.retrieval.search import PGVECTOR_DIMENSIONS, has_pgvector, vector_literal
from assistd.runs.control import poll_loop
from assistd.storage.blobs import BlobStore

log = logging.getLogger("assistd.ingestion")

_INSERT_WITH_VECTOR = text(
    "INSERT INTO chunks (vector_store_id, file_id, seq, text, tokens, embedding, embedding_vec) "
    "VALUES (:vector_store_id, :file_id, :seq, :text, :tokens, :embedding, CAST(CAST(:vec AS text) AS vector))"
)


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


def _claimable(now: float) -> Any:
    c = t.vector_store_files.c
    return and_(c.status == "in_progress", or_(c.lease_owner.is_(None), c.lease_expires_at < now))


class IngestionWorker:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        pipeline: Callable[[], Awaitable[Pipeline]],
        *,
        owner: str,
        concurrency: int = 2,
        poll_seconds: float = 1.0,
        lease_seconds: float = 300.0,
        max_bytes: int = 512 * 1024 * 1024,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.pipeline = pipeline
        self.owner = owner
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.max_bytes = max_bytes
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="assistd-ingestion")

    def notify(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self) -> None:
        await poll_loop(self._claim_some, self._wake, self.poll_seconds, "ingestion")

    async def _claim_some(self) -> None:
        free = self.concurrency - len(self._tasks)
        if free <= 0:
            return
        c = t.vector_store_files.c
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(c.vector_store_id, c.id).where(_claimable(time.time())).order_by(c.created_at).limit(free)
                )
            ).all()
        for row in rows:
            async with self.db.write() as conn:
                claimed = (
                    await conn.execute(
                        update(t.vector_store_files)
                        .where(c.vector_store_id == row.vector_store_id, c.id == row.id, _claimable(time.time()))
                        .values(lease_owner=self.owner, lease_expires_at=time.time() + self.lease_seconds)
                    )
                ).rowcount
            if claimed:
                task = asyncio.create_task(self._ingest(row.vector_store_id, row.id))
                self._tasks.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()

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
            owned = await self._release(conn, store_id, file_id, status="completed", usage_bytes=usage)
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
        async with self.db.write() as conn:
            await self._release(conn, store_id, file_id, status=status, last_error=error)

    async def _release(self, conn: Connection, store_id: str, file_id: str, **values: Any) -> bool:
        """End this worker's claim on a file still in progress; False when it is no longer ours to end
        (cancelled, removed or re-attached meanwhile)."""
        c = t.vector_store_files.c
        result = await conn.execute(
            update(t.vector_store_files)
            .where(
                c.vector_store_id == store_id, c.id == file_id, c.lease_owner == self.owner, c.status == "in_progress"
            )
            .values(lease_owner=None, lease_expires_at=None, **values)
        )
        return bool(result.rowcount)
