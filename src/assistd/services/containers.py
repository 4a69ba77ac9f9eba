"""Containers: code_interpreter sandbox sessions of their own, with files and an idle lifetime.

A container is a sandbox session whose key is the container's id (a thread's session is keyed by the
thread's id), so it runs on whichever sandbox backend the server has (local bubblewrap or a kernel
gateway). Its files are kept twice: a copy in the blob store, recorded in `container_files` (what the
API lists and serves, and what survives the kernel), and the copy the code sees under /mnt/data, placed
there before each cell. Files the code writes or changes come back after the cell and are recorded
(new paths with source "assistant").

Lifetime: `expires_after.minutes` (default 20, at most ASSISTD_CONTAINER_MAX_MINUTES) after
`last_active_at`. Then the sweeper ends the kernel (its variables are lost, as on OpenAI), removes the
session's data directory and marks the container `expired`: it can no longer run code or take files,
but — unlike OpenAI's — its files stay listable and downloadable until the container is deleted.

The service interface other features use (the Responses API's code_interpreter tool):
`open(project_id, container)` resolves "auto" or an id to a running container, `execute(...)` runs a
cell in it and records what it wrote, `add_file_id` / `add_bytes` put files in, `files` / `read` take
them out (docs/containers.md).
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from assistd import ids
from assistd.db.database import Database
from assistd.errors import InvalidRequest, not_found
from assistd.protocol.common import Deleted, ListPage, ListParams
from assistd.protocol.containers import DEFAULT_MINUTES, Container, ContainerCreate, ContainerFile, ExpiresAfter
from assistd.sandbox.base import MOUNT_POINT, Execution, InputFile, OutputFile, Sandbox
from assistd.sandbox.files import safe_name
from assistd.services.common import list_page, now
from assistd.services.files import FileService
from assistd.storage.blobs import BlobStore
from assistd.stores import containers as store
from assistd.stores import files as file_store
from assistd.stores.containers import ContainerFileRecord, ContainerRecord

log = logging.getLogger("assistd.containers")

Source = Literal["user", "assistant"]


@runtime_checkable
class RemovesFiles(Protocol):
    """A sandbox that can delete one file from a session's data directory (both backends; not MissingSandbox)."""

    async def remove_file(self, session: str, path: str) -> None: ...


def to_container(row: ContainerRecord, at: int) -> Container:
    return Container(
        id=row.id,
        name=row.name,
        created_at=row.created_at,
        status="expired" if row.expired(at) else "running",
        last_active_at=row.last_active_at,
        expires_after=ExpiresAfter(minutes=row.expires_minutes),
    )


def to_file(row: ContainerFileRecord) -> ContainerFile:
    source: Source = "assistant" if row.source == "assistant" else "user"
    return ContainerFile(
        id=row.id,
        container_id=row.container_id,
        created_at=row.created_at,
        bytes=row.bytes,
        path=f"{MOUNT_POINT}/{row.path}",
        source=source,
    )


@dataclass(frozen=True)
class ContainerRun:
    """One cell run in a container: what the sandbox returned (logs, images, notice, status; its `files`
    are the raw bytes) and the container files those writes became (new or updated)."""

    container_id: str
    execution: Execution
    files: list[ContainerFile]


class ContainerService:
    def __init__(
        self, db: Database, blobs: BlobStore, files: FileService, sandbox: Sandbox, *, max_minutes: int
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.files = files
        self.sandbox = sandbox
        self.max_minutes = max_minutes

    # --- containers ---------------------------------------------------------------------------

    async def create(self, project_id: str, body: ContainerCreate) -> Container:
        minutes = body.expires_after.minutes if body.expires_after is not None else DEFAULT_MINUTES
        if minutes > self.max_minutes:
            raise InvalidRequest(
                f"Invalid 'expires_after.minutes': expected a value between 1 and {self.max_minutes}, but got "
                f"{minutes} instead.",
                param="expires_after.minutes",
                code="invalid_value",
            )
        return await self._create(project_id, body.name, min(minutes, self.max_minutes), body.file_ids)

    async def _create(self, project_id: str, name: str, minutes: int, file_ids: Sequence[str]) -> Container:
        await self.files.require(project_id, file_ids, "file_ids")
        at = now()
        async with self.db.write() as conn:
            record = await store.create(conn, project_id, name=name, minutes=minutes, at=at)
        try:
            for file_id in dict.fromkeys(file_ids):
                await self._copy_file(project_id, record, file_id, "file_ids")
        except BaseException:
            await self._remove(record.id)
            raise
        return to_container(record, at)

    async def get(self, project_id: str, container_id: str) -> Container:
        return to_container(await self._record(project_id, container_id), now())

    async def list(self, project_id: str, params: ListParams, name: str | None = None) -> ListPage[Container]:
        at = now()
        async with self.db.read() as conn:
            page = await store.page(conn, project_id, params, name)
        return list_page(page, lambda row: to_container(row, at))

    async def delete(self, project_id: str, container_id: str) -> Deleted:
        await self._record(project_id, container_id)
        await self._remove(container_id)
        return Deleted(id=container_id, object="container.deleted")

    async def _remove(self, container_id: str) -> None:
        await self.sandbox.interrupt(container_id)  # a running cell stops instead of holding the session
        await self.sandbox.close(container_id, remove_files=True)
        async with self.db.write() as conn:
            keys = await store.remove(conn, container_id)
        for key in keys:
            await self.blobs.delete(key)

    async def _record(self, project_id: str, container_id: str) -> ContainerRecord:
        async with self.db.read() as conn:
            return await store.get(conn, project_id, container_id)

    async def _running(self, project_id: str, container_id: str) -> ContainerRecord:
        record = await self._record(project_id, container_id)
        if record.expired(now()):
            raise InvalidRequest(
                f"Container '{container_id}' has expired (it was idle for more than {record.expires_minutes} "
                "minutes); create a new one.",
                param="container_id",
                code="container_expired",
            )
        return record

    # --- the interface code_interpreter uses -------------------------------------------------

    async def open(
        self, project_id: str, container: str, *, file_ids: Sequence[str] = (), name: str = "auto"
    ) -> Container:
        """The running container a code_interpreter tool names: "auto" makes a new one (with `file_ids`
        copied in, default lifetime); an id must be this project's and not expired (400 otherwise)."""
        if container == "auto":
            return await self._create(project_id, name, min(DEFAULT_MINUTES, self.max_minutes), file_ids)
        record = await self._running(project_id, container)
        for file_id in dict.fromkeys(file_ids):
            await self.add_file_id(project_id, record.id, file_id)
        return to_container(record, now())

    async def execute(self, project_id: str, container_id: str, code: str) -> ContainerRun:
        """Run a cell in the container's session (its kernel starts on first use, its files are placed in
        /mnt/data first), record the files the cell wrote or changed, and mark the container active.
        Raises SandboxUnavailable when code cannot run on this server."""
        await self._running(project_id, container_id)
        async with self.db.write() as conn:
            await store.touch(conn, container_id, now())
        async with self.db.read() as conn:
            rows = await store.files(conn, container_id)
        inputs = [InputFile(r.id, r.path, self._reader(r.blob_key)) for r in rows if "/" not in r.path]
        execution = await self.sandbox.execute(container_id, code, inputs)
        written = await self._record_written(container_id, execution.files)
        async with self.db.write() as conn:
            await store.touch(conn, container_id, now())
        return ContainerRun(container_id, execution, written)

    async def interrupt(self, container_id: str) -> None:
        """Stop the container's running cell, if any (`execute` then returns soon, status 'stopped')."""
        await self.sandbox.interrupt(container_id)

    def _reader(self, key: str) -> Callable[[], AsyncIterator[bytes]]:
        return lambda: self.blobs.read(key)

    async def _record_written(self, container_id: str, written: Sequence[OutputFile]) -> builtins.list[ContainerFile]:
        if not written:
            return []
        async with self.db.read() as conn:
            known = await store.by_paths(conn, container_id, [w.path for w in written])
        out: list[ContainerFile] = []
        stale: list[str] = []
        for item in written:
            key = await self._put(item.data)
            async with self.db.write() as conn:
                if not await store.lock(conn, container_id):  # deleted while the cell ran
                    stale.append(key)
                    break
                previous = known.get(item.path)
                if previous is not None:
                    await store.replace_bytes(conn, previous.id, size=len(item.data), blob_key=key)
                    stale.append(previous.blob_key)
                    record = ContainerFileRecord(
                        previous.id, container_id, item.path, previous.source, len(item.data), key, previous.created_at
                    )
                else:
                    record = await store.add_file(
                        conn,
                        container_id,
                        file_id=ids.new_id(ids.CONTAINER_FILE),
                        path=item.path,
                        source="assistant",
                        size=len(item.data),
                        blob_key=key,
                        at=now(),
                    )
            out.append(to_file(record))
        for key in stale:
            await self.blobs.delete(key)
        return out

    async def _put(self, data: bytes) -> str:
        writer = self.blobs.writer()
        try:
            await writer.write(data)
            return await writer.commit()
        except BaseException:
            await writer.abort()
            raise

    # --- files --------------------------------------------------------------------------------

    async def add_file_id(self, project_id: str, container_id: str, file_id: str) -> ContainerFile:
        """Copy an existing File into the container (its bytes are copied: deleting either keeps the other)."""
        record = await self._running(project_id, container_id)
        await self.files.require(project_id, [file_id], "file_id")
        return await self._copy_file(project_id, record, file_id, "file_id")

    async def _copy_file(self, project_id: str, record: ContainerRecord, file_id: str, param: str) -> ContainerFile:
        async with self.db.read() as conn:
            found = await file_store.of_project(conn, project_id, [file_id])
        if not found:  # deleted since it was checked
            raise InvalidRequest(f"Invalid '{param}': no file found with id '{file_id}'.", param=param)
        source = found[0]
        writer = self.blobs.writer()
        try:
            async for chunk in self.blobs.read(source.blob_key):
                await writer.write(chunk)
            key = await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        return await self.add_bytes(record.id, filename=source.filename, blob_key=key, size=source.bytes)

    async def add_upload(
        self, project_id: str, container_id: str, *, filename: str, blob_key: str, size: int
    ) -> ContainerFile:
        """An uploaded file (its bytes already in the blob store under `blob_key`) into the container."""
        await self._running(project_id, container_id)
        return await self.add_bytes(container_id, filename=filename, blob_key=blob_key, size=size)

    async def add_bytes(self, container_id: str, *, filename: str, blob_key: str, size: int) -> ContainerFile:
        """Record a user file over bytes in the blob store: /mnt/data/<its name>, or
        /mnt/data/<cfile id>-<its name> when that name is taken or unusable. Marks the container active."""
        at = now()
        file_id = ids.new_id(ids.CONTAINER_FILE)
        name = safe_name(filename, "")
        async with self.db.write() as conn:
            if not await store.lock(conn, container_id):
                await self.blobs.delete(blob_key)
                raise not_found(store.KIND, container_id)
            taken = bool(name) and bool(await store.by_paths(conn, container_id, [name]))
            path = name if name and not taken else f"{file_id}-{name or 'file'}"
            record = await store.add_file(
                conn, container_id, file_id=file_id, path=path, source="user", size=size, blob_key=blob_key, at=at
            )
            await store.touch(conn, container_id, at)
        return to_file(record)

    async def list_files(self, project_id: str, container_id: str, params: ListParams) -> ListPage[ContainerFile]:
        await self._record(project_id, container_id)
        async with self.db.read() as conn:
            page = await store.file_page(conn, container_id, params)
        return list_page(page, to_file)

    async def files_of(self, project_id: str, container_id: str) -> builtins.list[ContainerFile]:
        """Every file of the container, oldest first."""
        await self._record(project_id, container_id)
        async with self.db.read() as conn:
            return [to_file(r) for r in await store.files(conn, container_id)]

    async def get_file(self, project_id: str, container_id: str, file_id: str) -> ContainerFile:
        return to_file(await self._file(project_id, container_id, file_id))

    async def _file(self, project_id: str, container_id: str, file_id: str) -> ContainerFileRecord:
        await self._record(project_id, container_id)
        async with self.db.read() as conn:
            return await store.get_file(conn, container_id, file_id)

    async def read(
        self, project_id: str, container_id: str, file_id: str
    ) -> tuple[ContainerFile, AsyncIterator[bytes]]:
        """A container file and its bytes, streamed from the blob store."""
        record = await self._file(project_id, container_id, file_id)
        return to_file(record), self.blobs.read(record.blob_key)

    async def delete_file(self, project_id: str, container_id: str, file_id: str) -> Deleted:
        """The file leaves the container's list, its bytes go, and the session's /mnt/data loses it too."""
        record = await self._file(project_id, container_id, file_id)
        async with self.db.write() as conn:
            await store.remove_file(conn, file_id)
        if isinstance(self.sandbox, RemovesFiles):
            await self.sandbox.remove_file(container_id, record.path)
        await self.blobs.delete(record.blob_key)
        return Deleted(id=file_id, object="container.file.deleted")

    # --- expiry -------------------------------------------------------------------------------

    async def expire_idle(self) -> int:
        """End the kernels of containers idle past their lifetime and mark them expired; how many."""
        async with self.db.read() as conn:
            idle = await store.idle(conn, now())
        ended = 0
        for record in idle:
            async with self.db.write() as conn:
                if not await store.mark_expired(conn, record.id, record.last_active_at):
                    continue  # used since it was found idle
            await self.sandbox.close(record.id, remove_files=True)
            ended += 1
        if ended:
            log.info("expired %d idle containers", ended)
        return ended
