"""Threads in the database (their messages: stores/messages.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, exists, func, literal, or_, select, update

from assistd.db import tables as t
from assistd.db.database import Connection
from assistd.protocol.common import ListParams
from assistd.stores.common import Json, Page, Record, columns, get_row, paginate

KIND = "thread"


@dataclass(frozen=True, slots=True)
class ThreadRecord(Record):
    id: str
    project_id: str
    created_at: int
    tool_resources: Json
    metadata: dict[str, str]
    sort_key: str | None = None  # set on imported threads only (db/tables.py)


async def insert(conn: Connection, record: ThreadRecord) -> None:
    await conn.execute(t.threads.insert().values(**columns(record)))


async def get(conn: Connection, project_id: str, thread_id: str) -> ThreadRecord:
    row = await get_row(conn, t.threads, KIND, thread_id, t.threads.c.project_id == project_id)
    return ThreadRecord.from_row(row)


async def update_fields(conn: Connection, thread_id: str, changes: Mapping[str, object]) -> None:
    await conn.execute(update(t.threads).where(t.threads.c.id == thread_id).values(**changes))


async def remove_with_contents(conn: Connection, thread_id: str) -> None:
    """The thread goes with everything in it: its messages, conversation items, runs and run steps."""
    await conn.execute(delete(t.messages).where(t.messages.c.thread_id == thread_id))
    await conn.execute(delete(t.conversation_items).where(t.conversation_items.c.thread_id == thread_id))
    await conn.execute(delete(t.run_steps).where(t.run_steps.c.thread_id == thread_id))
    # Its responses (docs/responses.md) and their kept stream events go with their runs.
    responses = select(t.responses.c.id).where(t.responses.c.thread_id == thread_id)
    await conn.execute(delete(t.response_events).where(t.response_events.c.response_id.in_(responses)))
    await conn.execute(delete(t.responses).where(t.responses.c.thread_id == thread_id))
    await conn.execute(delete(t.runs).where(t.runs.c.thread_id == thread_id))
    await conn.execute(delete(t.threads).where(t.threads.c.id == thread_id))


async def search(
    conn: Connection, dialect: str, project_id: str, q: str | None, params: ListParams
) -> Page[ThreadRecord]:
    """The project's threads, paged by id like every list; `q` keeps those whose id or any metadata
    value contains it (case-insensitive). A scan of the project's threads: fine for a console, and no
    index to keep for it."""
    where: list[ColumnElement[bool]] = [t.threads.c.project_id == project_id]
    if q:
        where.append(_matches(dialect, q))
    return await paginate(
        conn,
        t.threads,
        where,
        limit=params.limit,
        order=params.order,
        after=params.after,
        before=params.before,
        from_row=ThreadRecord.from_row,
    )


def _matches(dialect: str, q: str) -> ColumnElement[bool]:
    # Metadata is a JSON object of strings: look at its values only, not its keys or JSON syntax.
    each = func.json_each_text if dialect == "postgresql" else func.json_each
    values = each(t.threads.c.metadata).table_valued("key", "value")
    in_metadata = exists(select(literal(1)).select_from(values).where(values.c.value.icontains(q, autoescape=True)))
    return or_(t.threads.c.id.icontains(q, autoescape=True), in_metadata)
