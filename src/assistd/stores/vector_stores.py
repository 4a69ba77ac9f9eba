"""Vector stores in the database: the stores, the files in them and file batches.

The chunks of a file are written and searched by retrieval/ (ingestion, search); here they are only
deleted, with the file or store they belong to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Text, bindparam, cast, delete, func, select, update

from assistd.db import tables as t
from assistd.db.database import Connection, Database
from assistd.protocol.common import ListParams
from assistd.stores.common import Json, Page, Record, columns, get_row, paginate

DAY = 86_400
# A store made for a thread's file_search attachments expires this long after its last activity.
THREAD_STORE_EXPIRY = {"anchor": "last_active_at", "days": 7}


@dataclass(frozen=True, slots=True)
class VectorStoreRecord(Record):
    id: str
    project_id: str
    created_at: int
    name: str
    description: str | None
    expires_after: Json | None
    last_active_at: int
    metadata: dict[str, str]
    chunks_version: int
    files_version: int = 0  # bumped by triggers on `vector_store_files` (migration 0012)

    @property
    def expires_at(self) -> int | None:
        after = self.expires_after
        return None if not after else int(self.last_active_at) + int(after["days"]) * DAY


@dataclass(frozen=True, slots=True)
class StoreFileRecord(Record):
    """A File in a store: `id` is the File's id, the key is (store, file)."""

    vector_store_id: str
    id: str
    project_id: str
    batch_id: str | None
    created_at: int
    status: str
    last_error: Json | None
    chunking_strategy: Json
    attributes: Json
    usage_bytes: int
    lease_owner: str | None
    lease_expires_at: float | None


@dataclass(frozen=True, slots=True)
class BatchRecord(Record):
    id: str
    vector_store_id: str
    project_id: str
    created_at: int
    cancelled: bool


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A File being added to a store, with how to chunk it and its attributes."""

    file_id: str
    chunking_strategy: Json
    attributes: Json


@dataclass(frozen=True, slots=True)
class FileStats:
    """The files of a store or batch: how many in each status, and the bytes they take."""

    by_status: dict[str, int]
    usage_bytes: int


# --- stores ----------------------------------------------------------------------------------------


async def insert_store(conn: Connection, record: VectorStoreRecord) -> None:
    values = columns(record)
    del values["chunks_version"]  # the database's default, bumped by triggers on `chunks`
    del values["files_version"]  # likewise, by triggers on `vector_store_files`
    await conn.execute(t.vector_stores.insert().values(**values))


async def get_store(conn: Connection, project_id: str, store_id: str) -> VectorStoreRecord:
    row = await get_row(conn, t.vector_stores, "vector store", store_id, t.vector_stores.c.project_id == project_id)
    return VectorStoreRecord.from_row(row)


async def page_stores(conn: Connection, project_id: str, params: ListParams) -> Page[VectorStoreRecord]:
    return await paginate(
        conn,
        t.vector_stores,
        [t.vector_stores.c.project_id == project_id],
        limit=params.limit,
        order=params.order,
        after=params.after,
        before=params.before,
        from_row=VectorStoreRecord.from_row,
    )


async def existing_store_ids(conn: Connection, project_id: str, store_ids: Sequence[str]) -> set[str]:
    """Which of these ids are stores of the project."""
    vs = t.vector_stores.c
    query = select(vs.id).where(vs.id.in_(store_ids), vs.project_id == project_id)
    return set((await conn.execute(query)).scalars())


async def update_store(conn: Connection, store_id: str, changes: Mapping[str, object]) -> None:
    await conn.execute(update(t.vector_stores).where(t.vector_stores.c.id == store_id).values(**changes))


async def remove_store(conn: Connection, project_id: str, store_id: str) -> int:
    """The store goes with its files, chunks and batches, and leaves every assistant's and thread's
    `file_search.vector_store_ids`, as on OpenAI. Returns how many assistants and threads changed."""
    await conn.execute(delete(t.chunks).where(t.chunks.c.vector_store_id == store_id))
    await conn.execute(delete(t.vector_store_files).where(t.vector_store_files.c.vector_store_id == store_id))
    await conn.execute(delete(t.file_batches).where(t.file_batches.c.vector_store_id == store_id))
    await conn.execute(delete(t.vector_stores).where(t.vector_stores.c.id == store_id))
    return await _detach_store(conn, project_id, store_id)


async def _detach_store(conn: Connection, project_id: str, store_id: str) -> int:
    """Only rows whose tool resources mention the id are read (a text match on the JSON, the same on
    SQLite and PostgreSQL); the exact edit is made here, and written back in one executemany per table."""
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


# Searching moves `last_active_at` (and so the expiry), but writes it at most this often per store:
# a search is a read, not a write transaction.
ACTIVITY_RESOLUTION = 60


async def search_state(conn: Connection, store_ids: Sequence[str], at: int) -> tuple[str | None, list[str]]:
    """Stores about to be searched (by the API or a run's file_search): the first one past its expiry
    (the search must fail) or None, and those whose `last_active_at` is `ACTIVITY_RESOLUTION` seconds
    or more before `at` (to `mark_active`)."""
    if not store_ids:
        return None, []
    c = t.vector_stores.c
    rows = (await conn.execute(select(c.id, c.expires_after, c.last_active_at).where(c.id.in_(list(store_ids))))).all()
    stale: list[str] = []
    for row in rows:
        after: Json | None = row.expires_after
        if after and int(row.last_active_at) + int(after["days"]) * DAY <= at:
            return str(row.id), []
        if int(row.last_active_at) <= at - ACTIVITY_RESOLUTION:
            stale.append(str(row.id))
    return None, stale


async def mark_active(conn: Connection, store_ids: Sequence[str], at: int) -> None:
    """`last_active_at = at` for those of the stores not already marked within `ACTIVITY_RESOLUTION`."""
    c = t.vector_stores.c
    await conn.execute(
        update(t.vector_stores)
        .where(c.id.in_(list(store_ids)), c.last_active_at <= at - ACTIVITY_RESOLUTION)
        .values(last_active_at=at)
    )


async def begin_search(db: Database, store_ids: Sequence[str], at: int) -> str | None:
    """`search_state` in a read, then `mark_active` in a write only when a store's mark is stale."""
    async with db.read() as conn:
        expired, stale = await search_state(conn, store_ids, at)
    if expired is None and stale:
        async with db.write() as conn:
            await mark_active(conn, stale, at)
    return expired


async def any_ingesting(conn: Connection, store_ids: Sequence[str]) -> bool:
    """Whether a file of these stores is still being ingested (a run's search waits for it)."""
    vsf = t.vector_store_files.c
    query = select(vsf.id).where(vsf.vector_store_id.in_(store_ids), vsf.status == "in_progress").limit(1)
    return (await conn.execute(query)).first() is not None


# --- files in stores -------------------------------------------------------------------------------


async def file_stats(conn: Connection, where: ColumnElement[bool]) -> FileStats:
    """File counts by status and their bytes, in one grouped query."""
    vsf = t.vector_store_files.c
    rows = (
        await conn.execute(
            select(vsf.status, func.count().label("n"), func.coalesce(func.sum(vsf.usage_bytes), 0).label("bytes"))
            .where(where)
            .group_by(vsf.status)
        )
    ).all()
    return FileStats({r.status: int(r.n) for r in rows}, sum(int(r.bytes) for r in rows))


async def store_file_stats(conn: Connection, store_id: str) -> FileStats:
    return await file_stats(conn, t.vector_store_files.c.vector_store_id == store_id)


async def batch_file_stats(conn: Connection, batch_id: str) -> FileStats:
    return await file_stats(conn, t.vector_store_files.c.batch_id == batch_id)


async def attach_files(
    conn: Connection, project_id: str, store_id: str, entries: Sequence[FileEntry], *, batch_id: str | None, at: int
) -> None:
    """Add files to a store, `in_progress`; a file already there is re-ingested. The store is active at `at`."""
    if not entries:
        return
    file_ids = [e.file_id for e in entries]
    vsf = t.vector_store_files.c
    await conn.execute(delete(t.vector_store_files).where(vsf.vector_store_id == store_id, vsf.id.in_(file_ids)))
    await conn.execute(delete(t.chunks).where(t.chunks.c.vector_store_id == store_id, t.chunks.c.file_id.in_(file_ids)))
    await conn.execute(
        t.vector_store_files.insert(),
        [
            {
                "vector_store_id": store_id,
                "id": entry.file_id,
                "project_id": project_id,
                "batch_id": batch_id,
                "created_at": at,
                "status": "in_progress",
                "last_error": None,
                "chunking_strategy": entry.chunking_strategy,
                "attributes": entry.attributes,
                "usage_bytes": 0,
                "lease_owner": None,
                "lease_expires_at": None,
            }
            for entry in entries
        ],
    )
    await conn.execute(update(t.vector_stores).where(t.vector_stores.c.id == store_id).values(last_active_at=at))


def _file_key(store_id: str, file_id: str) -> list[ColumnElement[bool]]:
    return [t.vector_store_files.c.vector_store_id == store_id, t.vector_store_files.c.id == file_id]


async def get_file(conn: Connection, store_id: str, file_id: str) -> StoreFileRecord:
    """A file of the store, or the API's 404."""
    row = await get_row(conn, t.vector_store_files, "file", file_id, *_file_key(store_id, file_id))
    return StoreFileRecord.from_row(row)


async def page_files(
    conn: Connection, store_id: str, status: str | None, batch_id: str | None, params: ListParams
) -> Page[StoreFileRecord]:
    vsf = t.vector_store_files.c
    where = [vsf.vector_store_id == store_id]
    if status is not None:
        where.append(vsf.status == status)
    if batch_id is not None:
        where.append(vsf.batch_id == batch_id)
    return await paginate(
        conn,
        t.vector_store_files,
        where,
        limit=params.limit,
        order=params.order,
        after=params.after,
        before=params.before,
        from_row=StoreFileRecord.from_row,
    )


async def set_file_attributes(conn: Connection, store_id: str, file_id: str, attributes: Json) -> None:
    await conn.execute(update(t.vector_store_files).where(*_file_key(store_id, file_id)).values(attributes=attributes))


async def remove_file(conn: Connection, store_id: str, file_id: str) -> None:
    """The file leaves the store, with its chunks; the File itself is kept."""
    await conn.execute(delete(t.vector_store_files).where(*_file_key(store_id, file_id)))
    await conn.execute(delete(t.chunks).where(t.chunks.c.vector_store_id == store_id, t.chunks.c.file_id == file_id))


# --- batches ---------------------------------------------------------------------------------------


async def insert_batch(conn: Connection, record: BatchRecord) -> None:
    await conn.execute(t.file_batches.insert().values(**columns(record)))


async def get_batch(conn: Connection, store_id: str, batch_id: str) -> BatchRecord:
    row = await get_row(conn, t.file_batches, "file batch", batch_id, t.file_batches.c.vector_store_id == store_id)
    return BatchRecord.from_row(row)


async def cancel_batch(conn: Connection, batch_id: str) -> None:
    """The batch is cancelled: its files not yet ingested are too (finished ones stay)."""
    await conn.execute(update(t.file_batches).where(t.file_batches.c.id == batch_id).values(cancelled=True))
    vsf = t.vector_store_files.c
    await conn.execute(
        update(t.vector_store_files)
        .where(vsf.batch_id == batch_id, vsf.status == "in_progress")
        .values(status="cancelled", lease_owner=None, lease_expires_at=None)
    )
