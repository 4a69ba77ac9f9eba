"""Files: metadata rows plus bytes in the blob store."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable

from assistd.db.database import Database
from assistd.errors import InvalidRequest
from assistd.protocol.common import Deleted, ListPage
from assistd.protocol.files import FileListParams, FileObject
from assistd.services.common import list_page, now
from assistd.storage.blobs import BlobStore
from assistd.stores import files as store
from assistd.stores.files import FileRecord

log = logging.getLogger("assistd.files")

# OpenAI refuses to hand back the bytes of these purposes (spec §3.5).
NOT_DOWNLOADABLE = frozenset({"assistants"})


def to_file(row: FileRecord) -> FileObject:
    return FileObject(
        id=row.id,
        bytes=row.bytes,
        created_at=row.created_at,
        expires_at=row.expires_at,
        filename=row.filename,
        purpose=row.purpose,
        status=row.status,
    )


class FileService:
    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs

    async def create(
        self, project_id: str, *, blob_key: str, size: int, filename: str, purpose: str, expires_at: int | None
    ) -> FileObject:
        async with self.db.write() as conn:
            record = await store.create(
                conn,
                project_id,
                blob_key=blob_key,
                size=size,
                filename=filename,
                purpose=purpose,
                expires_at=expires_at,
                at=now(),
            )
        return to_file(record)

    async def _record(self, project_id: str, file_id: str) -> FileRecord:
        async with self.db.read() as conn:
            return await store.get(conn, project_id, file_id, now())

    async def get(self, project_id: str, file_id: str) -> FileObject:
        return to_file(await self._record(project_id, file_id))

    async def list(self, project_id: str, params: FileListParams) -> ListPage[FileObject]:
        async with self.db.read() as conn:
            page = await store.page(conn, project_id, now(), params)
        return list_page(page, to_file)

    async def content(self, project_id: str, file_id: str) -> tuple[FileObject, AsyncIterator[bytes]]:
        record = await self._record(project_id, file_id)
        if record.purpose in NOT_DOWNLOADABLE:
            raise InvalidRequest(f"Not allowed to download files of purpose: {record.purpose}")
        return to_file(record), self.blobs.read(record.blob_key)

    async def delete(self, project_id: str, file_id: str) -> Deleted:
        async with self.db.write() as conn:
            record = await store.get(conn, project_id, file_id, now())
            await store.remove(conn, file_id)  # from every vector store too
        await self.blobs.delete(record.blob_key)
        return Deleted(id=file_id, object="file")

    async def require(self, project_id: str, file_ids: Iterable[str], param: str) -> None:
        """400 naming the parameter when any id is not a live file of this project."""
        wanted = list(dict.fromkeys(file_ids))
        if not wanted:
            return
        async with self.db.read() as conn:
            found = await store.live_ids(conn, project_id, wanted, now())
        for file_id in wanted:
            if file_id not in found:
                raise InvalidRequest(
                    f"Invalid '{param}': no file found with id '{file_id}'.", param=param, code="invalid_value"
                )

    async def sweep_expired(self) -> int:
        """Delete files past `expires_at`, rows and bytes. Returns how many went."""
        async with self.db.write() as conn:
            expired = await store.remove_expired(conn, now())
        for file in expired:
            await self.blobs.delete(file.blob_key)
        if expired:
            log.info("deleted %d expired files", len(expired))
        return len(expired)
