"""The thread → kernel mapping of the kernel gateway sandbox (sandbox/gateway.py).

One row per session (thread): the gateway kernel holding its Python state and the input files
already copied into it. Every replica reads it, so a thread's cells reach the same kernel wherever
its runs execute. Two replicas creating a kernel for the same session at once both try to insert:
the first row wins and the loser deletes its kernel (`claim`); replacing a kernel that is gone is
conditional on the kernel id the replica saw (`replace`), so it is decided once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from assistd.db import tables as t
from assistd.db.database import Database

table = t.sandbox_sessions


@dataclass(frozen=True)
class KernelRecord:
    kernel_id: str
    placed: frozenset[str]


def _now() -> int:
    return int(time.time())


async def lookup(db: Database, session: str) -> KernelRecord | None:
    async with db.read() as conn:
        row = (
            await conn.execute(select(table.c.kernel_id, table.c.placed).where(table.c.session_key == session))
        ).first()
    if row is None:
        return None
    return KernelRecord(str(row.kernel_id), frozenset(str(p) for p in (row.placed or [])))


async def claim(db: Database, session: str, kernel_id: str) -> KernelRecord:
    """Record `kernel_id` for a session that had none; the record that holds afterwards (another
    replica's, when it inserted first)."""
    now = _now()
    try:
        async with db.write() as conn:
            await conn.execute(
                insert(table).values(
                    session_key=session, kernel_id=kernel_id, placed=[], created_at=now, updated_at=now
                )
            )
    except IntegrityError:
        found = await lookup(db, session)
        if found is not None:
            return found
        return await claim(db, session, kernel_id)  # deleted in between: try again
    return KernelRecord(kernel_id, frozenset())


async def replace(db: Database, session: str, old: str, new: str) -> KernelRecord:
    """Swap the session's kernel `old` (gone) for `new`, unless another replica already replaced it;
    the record that holds afterwards."""
    async with db.write() as conn:
        done = await conn.execute(
            update(table)
            .where(table.c.session_key == session, table.c.kernel_id == old)
            .values(kernel_id=new, placed=[], updated_at=_now())
        )
    if done.rowcount:
        return KernelRecord(new, frozenset())
    found = await lookup(db, session)
    return found if found is not None else await claim(db, session, new)


async def add_placed(db: Database, session: str, kernel_id: str, file_ids: set[str]) -> None:
    """Note input files copied into the session's kernel (kept only while that kernel is the session's)."""
    if not file_ids:
        return
    async with db.write() as conn:
        row = (
            await conn.execute(
                select(table.c.placed).where(table.c.session_key == session, table.c.kernel_id == kernel_id)
            )
        ).first()
        if row is None:
            return
        placed = sorted(set(row.placed or []) | file_ids)
        await conn.execute(
            update(table)
            .where(table.c.session_key == session, table.c.kernel_id == kernel_id)
            .values(placed=placed, updated_at=_now())
        )


async def remove(db: Database, session: str, kernel_id: str | None = None) -> None:
    """Forget the session's kernel (only if it is still `kernel_id`, when given)."""
    condition = table.c.session_key == session
    if kernel_id is not None:
        condition = condition & (table.c.kernel_id == kernel_id)
    async with db.write() as conn:
        await conn.execute(delete(table).where(condition))
