"""Responses in the database: a `responses` row beside the run of the same id (docs/responses.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select

from assistd.db import tables as t
from assistd.db.database import Connection
from assistd.stores.common import Json, Record, columns
from assistd.stores.conversations import ItemRecord
from assistd.stores.messages import MessageRecord


@dataclass(frozen=True, slots=True)
class ResponseRecord(Record):
    id: str
    project_id: str
    thread_id: str
    created_at: int
    previous_response_id: str | None
    conversation_id: str | None
    store: bool
    background: bool
    input_ids: list[str]
    request: Json


async def insert(conn: Connection, record: ResponseRecord) -> None:
    await conn.execute(t.responses.insert(), [columns(record)])


async def find(conn: Connection, project_id: str, response_id: str) -> ResponseRecord | None:
    c = t.responses.c
    row = (await conn.execute(select(t.responses).where(c.id == response_id, c.project_id == project_id))).first()
    return None if row is None else ResponseRecord.from_row(row)


async def get(conn: Connection, response_id: str) -> ResponseRecord | None:
    row = (await conn.execute(select(t.responses).where(t.responses.c.id == response_id))).first()
    return None if row is None else ResponseRecord.from_row(row)


async def remove(conn: Connection, response_id: str) -> None:
    await conn.execute(delete(t.responses).where(t.responses.c.id == response_id))
    await conn.execute(delete(t.response_events).where(t.response_events.c.response_id == response_id))
    await conn.execute(delete(t.runs).where(t.runs.c.id == response_id))


async def last_in_thread(conn: Connection, thread_id: str) -> str | None:
    """The newest run of a thread (any protocol's): a chain goes on in its thread only from its end."""
    c = t.runs.c
    row = (
        await conn.execute(
            select(c.id).where(c.thread_id == thread_id).order_by(c.created_at.desc(), c.id.desc()).limit(1)
        )
    ).first()
    return None if row is None else str(row.id)


async def input_items(
    conn: Connection, thread_id: str, item_ids: Sequence[str]
) -> tuple[list[MessageRecord], list[ItemRecord]]:
    """The thread messages and stored items among `item_ids` (a response's input)."""
    if not item_ids:
        return [], []
    m, i = t.messages.c, t.conversation_items.c
    rows = await conn.execute(select(t.messages).where(m.thread_id == thread_id, m.id.in_(list(item_ids))))
    messages = [MessageRecord.from_row(row) for row in rows.all()]
    rows = await conn.execute(select(t.conversation_items).where(i.thread_id == thread_id, i.id.in_(list(item_ids))))
    return messages, [ItemRecord.from_row(row) for row in rows.all()]


async def run_messages(conn: Connection, run_id: str) -> list[MessageRecord]:
    c = t.messages.c
    rows = await conn.execute(select(t.messages).where(c.run_id == run_id).order_by(c.id))
    return [MessageRecord.from_row(row) for row in rows.all()]


async def thread_entries(conn: Connection, thread_id: str, limit: int) -> tuple[list[MessageRecord], list[ItemRecord]]:
    """A thread's newest `limit` messages and stored items (a response's history is built from them)."""
    m, i = t.messages.c, t.conversation_items.c
    rows = await conn.execute(select(t.messages).where(m.thread_id == thread_id).order_by(m.id.desc()).limit(limit))
    messages = [MessageRecord.from_row(row) for row in rows.all()]
    rows = await conn.execute(
        select(t.conversation_items).where(i.thread_id == thread_id).order_by(i.sort_key.desc()).limit(limit)
    )
    return messages, [ItemRecord.from_row(row) for row in rows.all()]


async def function_call_ids(conn: Connection, thread_id: str, limit: int) -> set[str]:
    """The call ids of the function calls in a thread's newest `limit` tool steps and stored items."""
    found: set[str] = set()
    s, i = t.run_steps.c, t.conversation_items.c
    query = select(s.step_details).where(s.thread_id == thread_id, s.type == "tool_calls")
    for row in (await conn.execute(query.order_by(s.id.desc()).limit(limit))).all():
        found |= {
            str(call["id"]) for call in row.step_details.get("tool_calls") or [] if call.get("type") == "function"
        }
    query = select(i.item).where(i.thread_id == thread_id, i.type == "function_call")
    for row in (await conn.execute(query.order_by(i.sort_key.desc()).limit(limit))).all():
        found.add(str(row.item["call_id"]))
    return found


# --- a background response's stream events -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredEvent:
    sequence_number: int
    type: str
    data: Json


async def add_events(conn: Connection, response_id: str, events: Sequence[StoredEvent]) -> None:
    rows = [
        {"response_id": response_id, "sequence_number": e.sequence_number, "type": e.type, "data": e.data}
        for e in events
    ]
    if rows:
        await conn.execute(t.response_events.insert(), rows)


async def events_after(conn: Connection, response_id: str, after: int, limit: int) -> list[StoredEvent]:
    """The response's kept events with a sequence number above `after`, in order."""
    c = t.response_events.c
    query = (
        select(c.sequence_number, c.type, c.data)
        .where(c.response_id == response_id, c.sequence_number > after)
        .order_by(c.sequence_number)
        .limit(limit)
    )
    return [StoredEvent(int(r.sequence_number), str(r.type), dict(r.data)) for r in (await conn.execute(query)).all()]


async def next_sequence(conn: Connection, response_id: str) -> int:
    """The sequence number the response's next event takes (0 when none is kept)."""
    c = t.response_events.c
    query = select(func.max(c.sequence_number)).where(c.response_id == response_id)
    last = (await conn.execute(query)).scalar()
    return 0 if last is None else int(last) + 1


async def last_event(conn: Connection, response_id: str) -> StoredEvent | None:
    c = t.response_events.c
    query = (
        select(c.sequence_number, c.type, c.data)
        .where(c.response_id == response_id)
        .order_by(c.sequence_number.desc())
        .limit(1)
    )
    row = (await conn.execute(query)).first()
    return None if row is None else StoredEvent(int(row.sequence_number), str(row.type), dict(row.data))
