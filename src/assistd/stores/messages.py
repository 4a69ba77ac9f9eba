"""Messages in the database: a thread's messages as the API writes and reads them, and (second
section) the assistant messages a run writes as it goes. One record, `MessageRecord`, for both."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from assistd.db import tables as t
from assistd.db.database import Connection
from assistd.protocol.common import ListParams
from assistd.stores.common import Json, Page, Record, columns, cursor_key, get_row, order_key, paginate

KIND = "message"


@dataclass(frozen=True, slots=True)
class MessageRecord(Record):
    id: str
    thread_id: str
    created_at: int
    role: str
    status: str
    content: list[Json]
    attachments: list[Json] | None
    metadata: dict[str, str]
    incomplete_details: Json | None
    completed_at: int | None
    incomplete_at: int | None
    assistant_id: str | None
    run_id: str | None
    sort_key: str | None = None  # set on imported messages only (db/tables.py)


async def insert_messages(conn: Connection, records: Sequence[MessageRecord]) -> None:
    """Messages added to a thread (one executemany for many)."""
    if len(records) == 1:
        await conn.execute(t.messages.insert().values(**columns(records[0])))
    elif records:
        await conn.execute(t.messages.insert(), [columns(record) for record in records])


async def get_message(conn: Connection, thread_id: str, message_id: str) -> MessageRecord:
    row = await get_row(conn, t.messages, KIND, message_id, t.messages.c.thread_id == thread_id)
    return MessageRecord.from_row(row)


async def page_messages(
    conn: Connection, thread_id: str, run_id: str | None, params: ListParams
) -> Page[MessageRecord]:
    where = [t.messages.c.thread_id == thread_id]
    if run_id is not None:
        where.append(t.messages.c.run_id == run_id)
    return await paginate(
        conn,
        t.messages,
        where,
        limit=params.limit,
        order=params.order,
        after=params.after,
        before=params.before,
        from_row=MessageRecord.from_row,
    )


async def set_message_metadata(conn: Connection, message_id: str, metadata: dict[str, str]) -> None:
    await conn.execute(update(t.messages).where(t.messages.c.id == message_id).values(metadata=metadata))


async def remove_message(conn: Connection, message_id: str) -> None:
    await conn.execute(delete(t.messages).where(t.messages.c.id == message_id))


# --- run output: the assistant messages a run writes (insert, content updates, status) --------


async def insert_run_message(conn: Connection, values: Json) -> None:
    await conn.execute(t.messages.insert().values(**values))


async def update_run_message(conn: Connection, message_id: str, values: Json) -> None:
    await conn.execute(update(t.messages).where(t.messages.c.id == message_id).values(**values))


async def load_run_message(conn: Connection, message_id: str) -> MessageRecord:
    row = (await conn.execute(select(t.messages).where(t.messages.c.id == message_id))).one()
    return MessageRecord.from_row(row)


async def close_run_messages(conn: Connection, run_id: str, reason: str) -> list[MessageRecord]:
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
    return [MessageRecord.from_row(row) for row in rows]


async def delete_unfinished_run_messages(conn: Connection, message_ids: list[str]) -> None:
    """Delete messages a run was still writing (`in_progress`), when the run is resumed elsewhere."""
    if message_ids:
        await conn.execute(
            delete(t.messages).where(t.messages.c.id.in_(message_ids), t.messages.c.status == "in_progress")
        )


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
) -> list[MessageRecord]:
    """The thread's messages other than the run's own, newest first, `limit` at a time (a run's prompt)."""
    query = select(t.messages).where(
        t.messages.c.thread_id == thread_id, (t.messages.c.run_id != run_id) | t.messages.c.run_id.is_(None)
    )
    key = order_key(t.messages)
    if before is not None:
        query = query.where(key < cursor_key(t.messages, before))
    rows = (await conn.execute(query.order_by(key.desc()).limit(limit))).all()
    return [MessageRecord.from_row(row) for row in rows]
