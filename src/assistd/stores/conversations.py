"""Conversations in the database: a conversation is a thread row; its items are the thread's messages,
its runs' tool-call steps, and the `conversation_items` rows kept for what has no Assistants form.

All three sources order by the time-ordered part of their ids (ids.py), so one page of items is read
with one bounded query per source from a cursor, then merged by the caller (services/conversations.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select

from assistd.db import tables as t
from assistd.db.database import Connection
from assistd.stores.common import Json, Record, columns, get_row
from assistd.stores.messages import MessageRecord
from assistd.stores.runs import StepRecord
from assistd.stores.threads import ThreadRecord

KIND = "conversation"
MESSAGE_PREFIX = "msg_"
STEP_PREFIX = "step_"


@dataclass(frozen=True, slots=True)
class ItemRecord(Record):
    id: str
    thread_id: str
    sort_key: str
    created_at: int
    type: str
    item: Json


async def get_conversation(conn: Connection, project_id: str, conversation_id: str) -> ThreadRecord:
    """The thread with this id, or the API's 404 naming a conversation."""
    row = await get_row(conn, t.threads, KIND, conversation_id, t.threads.c.project_id == project_id)
    return ThreadRecord.from_row(row)


async def insert_items(conn: Connection, records: Sequence[ItemRecord]) -> None:
    if records:
        await conn.execute(t.conversation_items.insert(), [columns(record) for record in records])


async def find_item(conn: Connection, thread_id: str, item_id: str) -> ItemRecord | None:
    query = select(t.conversation_items).where(
        t.conversation_items.c.id == item_id, t.conversation_items.c.thread_id == thread_id
    )
    row = (await conn.execute(query)).first()
    return None if row is None else ItemRecord.from_row(row)


async def remove_item(conn: Connection, item_id: str) -> None:
    await conn.execute(delete(t.conversation_items).where(t.conversation_items.c.id == item_id))


async def find_message(conn: Connection, thread_id: str, message_id: str) -> MessageRecord | None:
    query = select(t.messages).where(t.messages.c.id == message_id, t.messages.c.thread_id == thread_id)
    row = (await conn.execute(query)).first()
    return None if row is None else MessageRecord.from_row(row)


async def find_step(conn: Connection, thread_id: str, step_id: str) -> StepRecord | None:
    query = select(t.run_steps).where(t.run_steps.c.id == step_id, t.run_steps.c.thread_id == thread_id)
    row = (await conn.execute(query)).first()
    return None if row is None else StepRecord.from_row(row)


# --- one page of each source from a cursor ----------------------------------------------------------


async def messages_from(
    conn: Connection, thread_id: str, key: str | None, ascending: bool, limit: int
) -> list[MessageRecord]:
    """Up to `limit` messages from the sort key `key` on (inclusive: the caller drops what it has shown)."""
    c = t.messages.c
    query = select(t.messages).where(c.thread_id == thread_id)
    if key is not None:
        bound = MESSAGE_PREFIX + key
        query = query.where(c.id >= bound if ascending else c.id <= bound)
    query = query.order_by(c.id.asc() if ascending else c.id.desc()).limit(limit)
    return [MessageRecord.from_row(row) for row in (await conn.execute(query)).all()]


async def tool_steps_from(
    conn: Connection, thread_id: str, key: str | None, ascending: bool, limit: int
) -> list[StepRecord]:
    """Up to `limit` tool-call steps of the thread's runs from the sort key `key` on (inclusive)."""
    c = t.run_steps.c
    query = select(t.run_steps).where(c.thread_id == thread_id, c.type == "tool_calls")
    if key is not None:
        bound = STEP_PREFIX + key
        query = query.where(c.id >= bound if ascending else c.id <= bound)
    query = query.order_by(c.id.asc() if ascending else c.id.desc()).limit(limit)
    return [StepRecord.from_row(row) for row in (await conn.execute(query)).all()]


async def items_from(
    conn: Connection, thread_id: str, key: str | None, ascending: bool, limit: int
) -> list[ItemRecord]:
    """Up to `limit` stored items from the sort key `key` on (inclusive)."""
    c = t.conversation_items.c
    query = select(t.conversation_items).where(c.thread_id == thread_id)
    if key is not None:
        query = query.where(c.sort_key >= key if ascending else c.sort_key <= key)
    order = (c.sort_key.asc(), c.id.asc()) if ascending else (c.sort_key.desc(), c.id.desc())
    query = query.order_by(*order).limit(limit)
    return [ItemRecord.from_row(row) for row in (await conn.execute(query)).all()]


async def file_names(conn: Connection, project_id: str, file_ids: Sequence[str]) -> dict[str, str]:
    """The names of the files cited in a page of items (a citation names its file in Responses)."""
    if not file_ids:
        return {}
    c = t.files.c
    query = select(c.id, c.filename).where(c.project_id == project_id, c.id.in_(sorted(set(file_ids))))
    return {row.id: row.filename for row in (await conn.execute(query)).all()}
