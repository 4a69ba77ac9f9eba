"""Files in the database: their metadata rows (the bytes are in the blob store, under `blob_key`).

A File is live until its `expires_at`; the functions that find Files for a client take the time
to compare with (`at`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, or_, select

from assistd import ids
from assistd.db import tables as t
from assistd.db.database import Connection
from assistd.protocol.files import FileListParams
from assistd.stores.common import Page, Record, columns, get_row, paginate

KIND = "file"


@dataclass(frozen=True, slots=True)
class FileRecord(Record):
    id: str
    project_id: str
    created_at: int
    filename: str
    purpose: str
    bytes: int
    status: str
    expires_at: int | None
    blob_key: str
    sort_key: str | None = None  # set on imported files only (db/tables.py)


@dataclass(frozen=True, slots=True)
class ExpiredFile(Record):
    id: str
    blob_key: str


def _live(project_id: str, at: int) -> list[ColumnElement[bool]]:
    return [t.files.c.project_id == project_id, or_(t.files.c.expires_at.is_(None), t.files.c.expires_at > at)]


async def create(
    conn: Connection,
    project_id: str,
    *,
    blob_key: str,
    size: int,
    filename: str,
    purpose: str,
    expires_at: int | None,
    at: int,
) -> FileRecord:
    """A new File over bytes already in the blob store (uploads, and the files code_interpreter writes)."""
    record = FileRecord(
        id=ids.new_id(ids.FILE),
        project_id=project_id,
        created_at=at,
        filename=filename,
        purpose=purpose,
        bytes=size,
        status="processed",
        expires_at=expires_at,
        blob_key=blob_key,
    )
    await conn.execute(t.files.insert().values(**columns(record)))
    return record


async def get(conn: Connection, project_id: str, file_id: str, at: int) -> FileRecord:
    """A live File of the project, or the API's 404."""
    return FileRecord.from_row(await get_row(conn, t.files, KIND, file_id, *_live(project_id, at)))


async def page(conn: Connection, project_id: str, at: int, params: FileListParams) -> Page[FileRecord]:
    where = _live(project_id, at)
    if params.purpose is not None:
        where.append(t.files.c.purpose == params.purpose)
    return await paginate(
        conn,
        t.files,
        where,
        limit=params.limit,
        order=params.order,
        after=params.after,
        before=None,
        from_row=FileRecord.from_row,
    )


async def live_ids(conn: Connection, project_id: str, file_ids: Sequence[str], at: int) -> set[str]:
    """Which of these ids are live Files of the project."""
    query = select(t.files.c.id).where(t.files.c.id.in_(file_ids), *_live(project_id, at))
    return set((await conn.execute(query)).scalars())


async def of_project(conn: Connection, project_id: str, file_ids: Sequence[str]) -> list[FileRecord]:
    """The project's Files among these ids, in the order given (missing ones left out)."""
    if not file_ids:
        return []
    query = select(t.files).where(t.files.c.id.in_(file_ids), t.files.c.project_id == project_id)
    found = {record.id: record for record in map(FileRecord.from_row, (await conn.execute(query)).all())}
    return [found[i] for i in file_ids if i in found]


async def remove(conn: Connection, file_id: str) -> None:
    """The File leaves every vector store too, with its chunks."""
    await conn.execute(delete(t.files).where(t.files.c.id == file_id))
    await conn.execute(delete(t.chunks).where(t.chunks.c.file_id == file_id))
    await conn.execute(delete(t.vector_store_files).where(t.vector_store_files.c.id == file_id))


async def remove_expired(conn: Connection, at: int) -> list[ExpiredFile]:
    """Delete the rows of Files past their `expires_at`; returns them, for their bytes to go too."""
    query = select(t.files.c.id, t.files.c.blob_key).where(t.files.c.expires_at <= at)
    expired = [ExpiredFile.from_row(row) for row in (await conn.execute(query)).all()]
    if expired:
        await conn.execute(delete(t.files).where(t.files.c.id.in_([f.id for f in expired])))
    return expired
