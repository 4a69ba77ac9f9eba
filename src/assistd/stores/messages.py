"""Messages in the database: a thread's messages as the API writes and reads them, and (second
section) the assistant messages a run writes as it goes. One record, `MessageRecord`, for both."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import Text, bindparam, cast, delete, exists, select, update

from assistd.db import tables as t
from assistd.db.database import Connection, Prepared, Reader
from assistd.protocol.common import ListParams
from assistd.stores.common import (
    Json,
    Page,
    Record,
    columns,
    get_row,
    order_key,
    page_conditions,
    page_of,
)

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
    token_count: int | None = None  # the tokens `token_counter` counted (a prompt's, `history_page`)
    token_counter: str | None = None


async def insert_messages(conn: Connection, records: Sequence[MessageRecord]) -> None:
    """Messages added to a thread (one executemany for many)."""
    if len(records) == 1:
        await conn.execute(t.messages.insert().values(**columns(records[0])))
    elif records:
        await conn.execute(t.messages.insert(), [columns(record) for record in records])


async def get_message(conn: Connection, thread_id: str, message_id: str) -> MessageRecord:
    row = await get_row(conn, t.messages, KIND, message_id, t.messages.c.thread_id == thread_id)
    return MessageRecord.from_row(row)


class MessageJson(NamedTuple):
    """A message as the list endpoint reads it: the JSON columns left as the JSON text we wrote them as
    (jsonio: valid JSON, possibly after one leading space), for the wire without decoding them. A named
    tuple, built from a driver's row ten times faster than a frozen dataclass (bench/bench_list.py)."""

    id: str
    thread_id: str
    created_at: int
    role: str
    status: str
    content: str
    attachments: str | None
    metadata: str
    incomplete_details: str | None
    completed_at: int | None
    incomplete_at: int | None
    assistant_id: str | None
    run_id: str | None


_M = t.messages.c
# The columns of MessageJson, in its order; JSON columns cast to text, as written (PostgreSQL's `json` keeps the
# text it was given), so no driver or SQLAlchemy decodes them.
_JSON_COLUMNS = (
    _M.id,
    _M.thread_id,
    _M.created_at,
    _M.role,
    _M.status,
    cast(_M.content, Text).label("content"),
    cast(_M.attachments, Text).label("attachments"),
    cast(_M.metadata, Text).label("metadata"),
    cast(_M.incomplete_details, Text).label("incomplete_details"),
    _M.completed_at,
    _M.incomplete_at,
    _M.assistant_id,
    _M.run_id,
)


@functools.cache
def _json_page_query(ascending: bool, after: bool, before: bool, by_run: bool) -> Prepared:
    """One statement per shape of request, compiled once: the page, and only if the thread is the
    project's (so one query answers a list; an empty answer is told from a missing thread by `json_page`)."""
    owned = exists().where(t.threads.c.id == bindparam("thread_id"), t.threads.c.project_id == bindparam("project_id"))
    where = [_M.thread_id == bindparam("thread_id"), owned]
    if by_run:
        where.append(_M.run_id == bindparam("run_id"))
    conditions, scan, _ = page_conditions(
        t.messages, ascending, bindparam("after") if after else None, bindparam("before") if before else None
    )
    return Prepared(select(*_JSON_COLUMNS).where(*where, *conditions).order_by(scan).limit(bindparam("limit")))


_THREAD_EXISTS = Prepared(
    select(t.threads.c.id).where(
        t.threads.c.id == bindparam("thread_id"), t.threads.c.project_id == bindparam("project_id")
    )
)


async def json_page(
    reader: Reader, project_id: str, thread_id: str, run_id: str | None, params: ListParams
) -> Page[MessageJson] | None:
    """A page of the thread's messages for the wire, or None when the project has no such thread."""
    ascending = params.order == "asc"
    query = _json_page_query(ascending, params.after is not None, params.before is not None, run_id is not None)
    values = {"thread_id": thread_id, "project_id": project_id, "limit": params.limit + 1}
    if run_id is not None:
        values["run_id"] = run_id
    if params.after is not None:
        values["after"] = params.after
    if params.before is not None:
        values["before"] = params.before
    rows = await reader.fetch(query, values)
    if not rows and not await reader.fetch(_THREAD_EXISTS, {"thread_id": thread_id, "project_id": project_id}):
        return None
    backwards = params.before is not None and params.after is None
    return page_of(rows, params.limit, backwards, MessageJson._make)


async def set_message_metadata(conn: Connection, message_id: str, metadata: dict[str, str]) -> None:
    await conn.execute(update(t.messages).where(t.messages.c.id == message_id).values(metadata=metadata))


async def remove_message(conn: Connection, message_id: str) -> None:
    await conn.execute(delete(t.messages).where(t.messages.c.id == message_id))


# --- run output: the assistant messages a run writes (insert, content updates, status) --------


# Built once: a run's writes take their columns from the parameters (no statement built per call).
_INSERT_RUN_MESSAGE = t.messages.insert()
_UPDATE_RUN_MESSAGE = update(t.messages).where(t.messages.c.id == bindparam("message_key"))


async def insert_run_message(conn: Connection, values: Json) -> None:
    await conn.execute(_INSERT_RUN_MESSAGE, values)


async def update_run_message(conn: Connection, message_id: str, values: Json) -> None:
    if "content" in values:  # a count of the old content must not stay with the new
        values = {**values, "token_count": None, "token_counter": None}
    await conn.execute(_UPDATE_RUN_MESSAGE, {"message_key": message_id, **values})


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


class HistoryRow(NamedTuple):
    """A message as a run's prompt reads it: its content left as the JSON text we wrote (decoded only
    when the prompt counts or shows it), and its token count with what counted it."""

    id: str
    role: str
    status: str
    content: str
    token_count: int | None
    token_counter: str | None
    position: str  # where it sorts (`order_key`): the next page starts before it


@functools.cache
def _history_query(after_first_page: bool) -> Prepared:
    position = order_key(t.messages)
    where = [_M.thread_id == bindparam("thread_id"), (_M.run_id != bindparam("run_id")) | _M.run_id.is_(None)]
    if after_first_page:
        where.append(position < bindparam("before"))
    query = select(
        _M.id,
        _M.role,
        _M.status,
        cast(_M.content, Text).label("content"),
        _M.token_count,
        _M.token_counter,
        position.label("position"),
    )
    return Prepared(query.where(*where).order_by(position.desc()).limit(bindparam("limit")))


async def history_page(reader: Reader, thread_id: str, run_id: str, before: str | None, limit: int) -> list[HistoryRow]:
    """The thread's messages other than the run's own, newest first, `limit` at a time from before the
    `position` of the last one read (a run's prompt: adapters/prompt.py)."""
    values = {"thread_id": thread_id, "run_id": run_id, "limit": limit}
    if before is not None:
        values["before"] = before
    return [HistoryRow._make(row) for row in await reader.fetch(_history_query(before is not None), values)]


async def keep_token_counts(conn: Connection, counts: Sequence[tuple[str, int, str]]) -> None:
    """(message id, tokens, counter key) of messages a prompt counted: kept with them for the next prompt.
    Only finished messages (a message a run is still writing changes: stores/messages.py clears its
    count with every content update, and an in-progress one is not kept at all)."""
    if not counts:
        return
    statement = (
        update(t.messages)
        .where(t.messages.c.id == bindparam("message_id"), t.messages.c.status != "in_progress")
        .values(token_count=bindparam("tokens"), token_counter=bindparam("counter"))
    )
    await conn.execute(statement, [{"message_id": m, "tokens": n, "counter": k} for m, n, k in counts])
