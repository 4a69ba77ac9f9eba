"""Projects and stored API keys in the database (keys are kept as their sha256, services/keys.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from sqlalchemy import Row, select, update

from assistd.db import tables as t
from assistd.db.database import Connection
from assistd.stores.common import Record


@dataclass(frozen=True, slots=True)
class KeyInfo(Record):
    """A stored key as listed: never its secret, only a hint of it."""

    id: str
    project: str
    hint: str
    created_at: int
    revoked_at: int | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(row.id, row.name, row.hint, row.created_at, row.revoked_at)


async def project_exists(conn: Connection, project_id: str) -> bool:
    return (await conn.execute(select(t.projects.c.id).where(t.projects.c.id == project_id))).first() is not None


async def project_named(conn: Connection, name: str) -> str | None:
    """The id of the project with this name, if there is one."""
    found = (await conn.execute(select(t.projects.c.id).where(t.projects.c.name == name))).scalar()
    return None if found is None else str(found)


async def insert_project(conn: Connection, project_id: str, name: str, at: int) -> None:
    await conn.execute(t.projects.insert().values(id=project_id, name=name, created_at=at))


async def insert_key(conn: Connection, info: KeyInfo, project_id: str, key_hash: str) -> None:
    await conn.execute(
        t.api_keys.insert().values(
            id=info.id, project_id=project_id, key_hash=key_hash, hint=info.hint, created_at=info.created_at
        )
    )


async def list_keys(conn: Connection) -> list[KeyInfo]:
    query = (
        select(t.api_keys.c.id, t.projects.c.name, t.api_keys.c.hint, t.api_keys.c.created_at, t.api_keys.c.revoked_at)
        .join(t.projects, t.projects.c.id == t.api_keys.c.project_id)
        .order_by(t.api_keys.c.id)
    )
    return [KeyInfo.from_row(row) for row in (await conn.execute(query)).all()]


async def revoke(conn: Connection, key_id: str, at: int) -> bool:
    """Whether an active key with this id was there (and is now revoked)."""
    result = await conn.execute(
        update(t.api_keys).where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None)).values(revoked_at=at)
    )
    return result.rowcount > 0


async def active_hashes(conn: Connection) -> dict[str, str]:
    """key hash → project id, for every key not revoked."""
    query = select(t.api_keys.c.key_hash, t.api_keys.c.project_id).where(t.api_keys.c.revoked_at.is_(None))
    return {row.key_hash: row.project_id for row in (await conn.execute(query)).all()}


async def any_key(conn: Connection) -> bool:
    """Whether any key was ever stored, revoked or not."""
    return (await conn.execute(select(t.api_keys.c.id).limit(1))).first() is not None
