"""Helpers every service uses: the clock, one cursor pagination, one get-or-404."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Row, Table, select

from assistd.db.database import Connection
from assistd.errors import not_found
from assistd.protocol.common import ListPage

T = TypeVar("T")


def now() -> int:
    return int(time.time())


async def get_row(conn: Connection, table: Table, kind: str, object_id: str, *where: ColumnElement[bool]) -> Row[Any]:
    row = (await conn.execute(select(table).where(table.c.id == object_id, *where))).first()
    if row is None:
        raise not_found(kind, object_id)
    return row


async def paginate(
    conn: Connection,
    table: Table,
    where: Sequence[ColumnElement[bool]],
    *,
    limit: int,
    order: str,
    after: str | None,
    before: str | None,
    to_model: Callable[[Row[Any]], T],
) -> ListPage[T]:
    """Cursor pages ordered by id, which sorts by creation time (ids.py)."""
    key = table.c.id
    conditions = list(where)
    ascending = order == "asc"
    if after is not None:
        conditions.append(key > after if ascending else key < after)
    # With `before`, read backwards from the cursor, then restore the requested order.
    backwards = before is not None and after is None
    if before is not None:
        conditions.append(key < before if ascending else key > before)
    scan_ascending = ascending != backwards
    query = select(table).where(*conditions).order_by(key.asc() if scan_ascending else key.desc()).limit(limit + 1)
    rows = list((await conn.execute(query)).all())
    has_more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    data = [to_model(row) for row in rows]
    return ListPage[T](
        data=data,
        first_id=rows[0].id if rows else None,
        last_id=rows[-1].id if rows else None,
        has_more=has_more,
    )
