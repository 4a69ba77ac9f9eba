"""Messages in the database: a thread's messages as the API writes and reads them.

(The run engine writes the assistant's messages of a run in its own section of this module.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, update

from assistd.db import tables as t
from assistd.db.database import Connection
from assistd.protocol.common import ListParams
from assistd.stores.common import Json, Page, Record, columns, get_row, paginate

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
