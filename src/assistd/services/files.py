"""Files: metadata rows plus bytes in the blob store."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from sqlalchemy import ColumnElement, Row, delete, or_, select

from assistd import ids
from assistd.db import tables as t
from assistd.db.database import Database
from assistd.errors import InvalidRequest
from assistd.protocol.common import Deleted, ListPage
from assistd.protocol.files import FileListParams, FileObject
from assistd.services.common import get_row, now, paginate
from assistd.storage.blobs import BlobStore

log = logging.getLogger("assistd.files")

# OpenAI refuses to hand back the bytes of these purposes (spec §3.5).
NOT_DOWNLOADABLE = frozenset({"assistants"})


def to_file(row: Row[Any]) -> FileObject:
    return FileObject(
        id=row.id,
        bytes=row.bytes,
        created_at=row.created_at,
        expires_at=row.expires_at,
        filename=row.filename,
        purpose=row.purpose,
        status=row.status,
    )


def _live(project_id: str, at: int) -> list[ColumnElement[bool]]:
    return [t.files.c.project_id == project_id, or_(t.files.c.expires_at.is_(None), t.files.c.expires_at > at)]


class FileService:
    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs

    async def create(
        self, project_id: str, *, blob_key: str, size: int, filename: str, purpose: str, expires_at: int | None
    ) -> FileObject:
        row = {
            "id": ids.new_id(ids.FILE),
            "project_id": project_id,
            "created_at": now(),
            "filename": filename,
            "purpose": purpose,
            "bytes": size,
            "status": "processed",
            "expires_at": expires_at,
            "blob_key": blob_key,
        }
        async with self.db.write() as conn:
            await conn.execute(t.files.insert().values(**row))
        return FileObject(**{k: v for k, v in row.items() if k not in ("project_id", "blob_key")})

    async def _row(self, project_id: str, file_id: str) -> Row[Any]:
        async with self.db.read() as conn:
            return await get_row(conn, t.files, "file", file_id, *_live(project_id, now()))

    async def get(self, project_id: str, file_id: str) -> FileObject:
        return to_file(await self._row(project_id, file_id))

    async def list(self, project_id: str, params: FileListParams) -> ListPage[FileObject]:
        where = _live(project_id, now())
        if params.purpose is not None:
            where.append(t.files.c.purpose == params.purpose)
        async with self.db.read() as conn:
            return await paginate(
                conn,
                t.files,
                where,
                limit=params.limit,
                order=params.order,
                after=params.after,
                before=None,
                to_model=to_file,
            )

    async def content(self, project_id: str, file_id: str) -> tuple[FileObject, AsyncIterator[bytes]]:
        row = await self._row(project_id, file_id)
        if row.purpose in NOT_DOWNLOADABLE:
            raise InvalidRequest(f"Not allowed to download files of purpose: {row.purpose}")
        return to_file(row), self.blobs.read(row.blob_key)

    async def delete(self, project_id: str, file_id: str) -> Deleted:
        async with self.db.write() as conn:
            row = await get_row(conn, t.files, "file", file_id, *_live(project_id, now()))
            await conn.execute(delete(t.files).where(t.files.c.id == file_id))
            # A deleted File leaves every vector store, with its chunks.
            await conn.execute(delete(t.chunks).where(t.chunks.c.file_id == file_id))
            await conn.execute(delete(t.vector_store_files).where(t.vector_store_files.c.id == file_id))
        await self.blobs.delete(row.blob_key)
        return Deleted(id=file_id, object="file")

    async def require(self, project_id: str, file_ids: Iterable[str], param: str) -> None:
        """400 naming the parameter when any id is not a live file of this project."""
        wanted = list(dict.fromkeys(file_ids))
        if not wanted:
            return
        async with self.db.read() as conn:
            found = set(
                (
                    await conn.execute(select(t.files.c.id).where(t.files.c.id.in_(wanted), *_live(project_id, now())))
                ).scalars()
            )
        for file_id in wanted:
            if file_id not in found:
                raise InvalidRequest(
                    f"Invalid '{param}': no file found with id '{file_id}'.", param=param, code="invalid_value"
                )

    async def sweep_expired(self) -> int:
        """Delete files past `expires_at`, rows and bytes. Returns how many went."""
        at = now()
        async with self.db.write() as conn:
            rows = (
                await conn.execute(select(t.files.c.id, t.files.c.blob_key).where(t.files.c.expires_at <= at))
            ).all()
            if rows:
                await conn.execute(delete(t.files).where(t.files.c.id.in_([r.id for r in rows])))
        for row in rows:
            await self.blobs.delete(row.blob_key)
        if rows:
            log.info("deleted %d expired files", len(rows))
        return len(rows)
