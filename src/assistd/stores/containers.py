"""Containers and their files in the database (the bytes are in the blob store, under `blob_key`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from assistd import ids
from assistd.db import tables as t
from assistd.db.database import Connection
from assistd.protocol.common import ListParams
from assistd.stores.common import Page, Record, columns, get_row, paginate

KIND = "container"
FILE_KIND = "container file"


@dataclass(frozen=True, slots=True)
class ContainerRecord(Record):
    id: str
    project_id: str
    name: str
    created_at: int
    last_active_at: int
    expires_minutes: int
    status: str

    def expired(self, at: int) -> bool:
        """Ended by the sweeper, or idle past its lifetime (the sweeper has not come round yet)."""
        return self.status == "expired" or at >= self.last_active_at + self.expires_minutes * 60


@dataclass(frozen=True, slots=True)
class ContainerFileRecord(Record):
    id: str
    container_id: str
    path: str
    source: str
    bytes: int
    blob_key: str
    created_at: int


async def create(conn: Connection, project_id: str, *, name: str, minutes: int, at: int) -> ContainerRecord:
    record = ContainerRecord(
        id=ids.new_id(ids.CONTAINER),
        project_id=project_id,
        name=name,
        created_at=at,
        last_active_at=at,
        expires_minutes=minutes,
        status="running",
    )
    await conn.execute(t.containers.insert().values(**columns(record)))
    return record


async def get(conn: Connection, project_id: str, container_id: str) -> ContainerRecord:
    """The project's container, or the API's 404."""
    row = await get_row(conn, t.containers, KIND, container_id, t.containers.c.project_id == project_id)
    return ContainerRecord.from_row(row)


async def page(conn: Connection, project_id: str, params: ListParams, name: str | None) -> Page[ContainerRecord]:
    where = [t.containers.c.project_id == project_id]
    if name is not None:
        where.append(t.containers.c.name == name)
    return await paginate(
        conn,
        t.containers,
        where,
        limit=params.limit,
        order=params.order,
        after=params.after,
        before=params.before,
        from_row=ContainerRecord.from_row,
    )


async def lock(conn: Connection, container_id: str) -> bool:
    """Lock the container's row for this transaction (PostgreSQL; SQLite's writes are serial anyway), so
    that choosing a file path and inserting it are one step; False when the container is gone."""
    query = select(t.containers.c.id).where(t.containers.c.id == container_id).with_for_update()
    return (await conn.execute(query)).first() is not None


async def touch(conn: Connection, container_id: str, at: int) -> None:
    """The container was used: its idle lifetime starts again (a running one only)."""
    await conn.execute(
        update(t.containers)
        .where(t.containers.c.id == container_id, t.containers.c.status == "running")
        .values(last_active_at=at)
    )


async def idle(conn: Connection, at: int) -> list[ContainerRecord]:
    """Running containers idle past their lifetime (`at` ≥ last_active_at + minutes)."""
    table = t.containers
    query = select(table).where(
        table.c.status == "running", table.c.last_active_at + table.c.expires_minutes * 60 <= at
    )
    return [ContainerRecord.from_row(row) for row in (await conn.execute(query)).all()]


async def mark_expired(conn: Connection, container_id: str, last_active_at: int) -> bool:
    """Expire the container unless it was used since it was found idle; whether it was expired here."""
    done = await conn.execute(
        update(t.containers)
        .where(
            t.containers.c.id == container_id,
            t.containers.c.status == "running",
            t.containers.c.last_active_at == last_active_at,
        )
        .values(status="expired")
    )
    return bool(done.rowcount)


async def remove(conn: Connection, container_id: str) -> list[str]:
    """Delete the container and its file rows; returns the blob keys to delete."""
    keys = list(
        (
            await conn.execute(
                select(t.container_files.c.blob_key).where(t.container_files.c.container_id == container_id)
            )
        ).scalars()
    )
    await conn.execute(delete(t.container_files).where(t.container_files.c.container_id == container_id))
    await conn.execute(delete(t.containers).where(t.containers.c.id == container_id))
    return keys


# --- files ------------------------------------------------------------------------------------


async def add_file(
    conn: Connection, container_id: str, *, file_id: str, path: str, source: str, size: int, blob_key: str, at: int
) -> ContainerFileRecord:
    record = ContainerFileRecord(
        id=file_id,
        container_id=container_id,
        path=path,
        source=source,
        bytes=size,
        blob_key=blob_key,
        created_at=at,
    )
    await conn.execute(t.container_files.insert().values(**columns(record)))
    return record


async def replace_bytes(conn: Connection, file_id: str, *, size: int, blob_key: str) -> None:
    await conn.execute(
        update(t.container_files).where(t.container_files.c.id == file_id).values(bytes=size, blob_key=blob_key)
    )


async def get_file(conn: Connection, container_id: str, file_id: str) -> ContainerFileRecord:
    row = await get_row(conn, t.container_files, FILE_KIND, file_id, t.container_files.c.container_id == container_id)
    return ContainerFileRecord.from_row(row)


async def files(conn: Connection, container_id: str) -> list[ContainerFileRecord]:
    """Every file of the container, oldest first."""
    query = (
        select(t.container_files)
        .where(t.container_files.c.container_id == container_id)
        .order_by(t.container_files.c.id)
    )
    return [ContainerFileRecord.from_row(row) for row in (await conn.execute(query)).all()]


async def by_paths(conn: Connection, container_id: str, paths: Sequence[str]) -> dict[str, ContainerFileRecord]:
    if not paths:
        return {}
    query = select(t.container_files).where(
        t.container_files.c.container_id == container_id, t.container_files.c.path.in_(paths)
    )
    return {r.path: r for r in map(ContainerFileRecord.from_row, (await conn.execute(query)).all())}


async def file_page(conn: Connection, container_id: str, params: ListParams) -> Page[ContainerFileRecord]:
    return await paginate(
        conn,
        t.container_files,
        [t.container_files.c.container_id == container_id],
        limit=params.limit,
        order=params.order,
        after=params.after,
        before=params.before,
        from_row=ContainerFileRecord.from_row,
    )


async def remove_file(conn: Connection, file_id: str) -> None:
    await conn.execute(delete(t.container_files).where(t.container_files.c.id == file_id))


async def cited(conn: Connection, project_id: str, file_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(container id, path) of the project's container files a response's answer links to, by file id."""
    if not file_ids:
        return {}
    f, c = t.container_files.c, t.containers.c
    query = (
        select(f.id, f.container_id, f.path)
        .join(t.containers, c.id == f.container_id)
        .where(c.project_id == project_id, f.id.in_(sorted(set(file_ids))))
    )
    return {row.id: (row.container_id, row.path) for row in (await conn.execute(query)).all()}
