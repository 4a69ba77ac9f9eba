"""Messages in the database.

# --- run output ---------------------------------------------------------------------------------
The functions below are the assistant messages a run writes (insert, content updates, status). They
are self-contained (their own names and record) so that they merge beside the thread-message store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Row, Table, delete, select, update

from assistd.db import tables as t
from assistd.db.database import Connection

Json = dict[str, Any]


def _columns_match(record: type, table: Table) -> None:
    """`from_row` reads a row by position (five times faster than by name): a record's fields must be
    its table's columns, in order. Checked once, at import, so a migration that adds a column fails loudly."""
    names = [f.name for f in fields(record)]
    if names != list(table.c.keys()):
        raise RuntimeError(f"{record.__name__} fields differ from the {table.name} table's columns")


@dataclass(frozen=True, slots=True)
class RunMessageRecord:
    """A message as stored (one a run wrote, or any other: the columns are the same)."""

    id: str
    thread_id: str
    created_at: int
    role: str
    status: str
    content: list[Json]
    attachments: list[Json]
    metadata: dict[str, str]
    incomplete_details: Json | None
    completed_at: int | None
    incomplete_at: int | None
    assistant_id: str | None
    run_id: str | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> RunMessageRecord:
        return cls(*row)  # type: ignore[call-arg]  # the table's columns, in order (checked below)


async def insert_run_message(conn: Connection, values: Json) -> None:
    await conn.execute(t.messages.insert().values(**values))


async def update_run_message(conn: Connection, message_id: str, values: Json) -> None:
    await conn.execute(update(t.messages).where(t.messages.c.id == message_id).values(**values))


async def load_run_message(conn: Connection, message_id: str) -> RunMessageRecord:
    row = (await conn.execute(select(t.messages).where(t.messages.c.id == message_id))).one()
    return RunMessageRecord.from_row(row)


async def close_run_messages(conn: Connection, run_id: str, reason: str) -> list[RunMessageRecord]:
    """The run ended early: its in-progress messages become incomplete. Returns them as they now are."""
    query = select(t.messages.c.id).where(t.messages.c.run_id == run_id, t.messages.c.status == "in_progress")
    message_ids = list((await conn.execute(query)).scalars())
    if not message_ids:
        return []
    await conn.execute(
        update(t.messages)
        .where(t.messages.c.id.in_(message_ids))
        .values(status="incomplete", incomplete_at=int(time.time()), incomplete_details={"reason": reason})
    )
    rows = (await conn.execute(select(t.messages).where(t.messages.c.id.in_(message_ids)))).all()
    return [RunMessageRecord.from_row(row) for row in rows]


async def delete_run_messages(conn: Connection, thread_id: str, run_id: str) -> None:
    await conn.execute(delete(t.messages).where(t.messages.c.thread_id == thread_id, t.messages.c.run_id == run_id))


async def run_message_texts(conn: Connection, message_ids: list[str]) -> dict[str, str]:
    """The text of the messages a run wrote, by id (what the model said, for its next call)."""
    if not message_ids:
        return {}
    query = select(t.messages.c.id, t.messages.c.content).where(t.messages.c.id.in_(message_ids))
    rows = (await conn.execute(query)).all()
    return {r.id: "\n".join(p["text"]["value"] for p in r.content if p["type"] == "text") for r in rows}


async def history_page(
    conn: Connection, thread_id: str, run_id: str, before: str | None, limit: int
) -> list[RunMessageRecord]:
    """The thread's messages other than the run's own, newest first, `limit` at a time (a run's prompt)."""
    query = select(t.messages).where(
        t.messages.c.thread_id == thread_id, (t.messages.c.run_id != run_id) | t.messages.c.run_id.is_(None)
    )
    if before is not None:
        query = query.where(t.messages.c.id < before)
    rows = (await conn.execute(query.order_by(t.messages.c.id.desc()).limit(limit))).all()
    return [RunMessageRecord.from_row(row) for row in rows]


async def insert_run_messages(conn: Connection, rows: list[Json]) -> None:
    """Messages that come with a run (its `additional_messages`), in one statement."""
    await conn.execute(t.messages.insert(), rows)


_columns_match(RunMessageRecord, t.messages)
