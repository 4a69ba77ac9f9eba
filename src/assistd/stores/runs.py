"""Runs and run steps in the database: their SQL, and the frozen records read from their rows.

A run's status is written by engine/lifecycle.py alone (its one compare-and-set UPDATE lives there, so
that a grep shows the single writer); everything else about runs and steps is here.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

from sqlalchemy import Row, Select, Table, Text, bindparam, cast, delete, exists, select, update

from assistd.db import tables as t
from assistd.db.database import Connection, Prepared, Reader
from assistd.protocol.common import ListParams
from assistd.stores.common import Page, get_row, order_key, paginate

# JSON columns hold what the wire format defines (tools, details, errors): typed at the edges.
Json = dict[str, Any]

# Usage is stored flat (these counters; rows written before the details existed lack the last two).
NO_USAGE: dict[str, int] = {
    "prompt_tokens": 0,
    "completion_tokens": 0,
    "total_tokens": 0,
    "cached_tokens": 0,
    "reasoning_tokens": 0,
}


def usage_totals(stored: dict[str, int] | None) -> dict[str, int]:
    """A run's stored usage as counters to add to (every counter present, old rows included)."""
    return {**NO_USAGE, **(stored or {})}


def _columns_match(record: type, table: Table) -> None:
    """`from_row` reads a row by position (five times faster than by name): a record's fields must be
    its table's columns, in order. Checked once, at import, so a migration that adds a column fails loudly."""
    names = [f.name for f in fields(record)]
    if names != list(table.c.keys()):
        raise RuntimeError(f"{record.__name__} fields differ from the {table.name} table's columns")


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as stored: read once, never changed in place (a transition reads the new row)."""

    id: str
    project_id: str
    thread_id: str
    assistant_id: str
    created_at: int
    status: str
    model: str
    instructions: str | None
    tools: list[Json]
    metadata: dict[str, str]
    temperature: float | None
    top_p: float | None
    max_prompt_tokens: int | None
    max_completion_tokens: int | None
    truncation_strategy: Json | None
    tool_choice: str | Json
    parallel_tool_calls: bool
    response_format: str | Json | None
    reasoning_effort: str | None
    required_action: Json | None
    last_error: Json | None
    incomplete_details: Json | None
    usage: dict[str, int] | None
    expires_at: int | None
    started_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    lease_owner: str | None
    lease_expires_at: float | None
    resumes: int = 0  # times resumed after its executor died (engine/lifecycle.py `recover`)
    sort_key: str | None = None  # set on imported runs only (db/tables.py)

    @classmethod
    def from_row(cls, row: Row[Any]) -> RunRecord:
        return cls(*row)  # type: ignore[call-arg]  # the table's columns, in order (checked below)


@dataclass(frozen=True, slots=True)
class StepRecord:
    """A run step as stored. `step_details` may hold private per-call state (see tools/base.py)."""

    id: str
    run_id: str
    thread_id: str
    assistant_id: str
    created_at: int
    type: str
    status: str
    step_details: Json
    last_error: Json | None
    expires_at: int | None
    expired_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    metadata: dict[str, str] | None
    usage: dict[str, int] | None
    sort_key: str | None = None  # set on imported steps only (db/tables.py)

    @classmethod
    def from_row(cls, row: Row[Any]) -> StepRecord:
        return cls(*row)  # type: ignore[call-arg]  # the table's columns, in order (checked below)


# --- runs --------------------------------------------------------------------------------------


class RunJson(NamedTuple):
    """A run as the retrieve endpoint reads it: the wire's columns, JSON columns left as the JSON text we
    wrote them as (jsonio), for the wire without decoding or validating them again (adapters/assistants.py
    `run_json`). The SDK's pollers call it over and over."""

    id: str
    created_at: int
    thread_id: str
    assistant_id: str
    status: str
    required_action: str | None
    last_error: str | None
    expires_at: int | None
    started_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    incomplete_details: str | None
    model: str
    instructions: str | None
    tools: str
    metadata: str
    usage: str | None
    temperature: float | None
    top_p: float | None
    max_prompt_tokens: int | None
    max_completion_tokens: int | None
    truncation_strategy: str | None
    tool_choice: str
    parallel_tool_calls: bool | int  # SQLite's driver gives 0 / 1
    response_format: str | None


_R = t.runs.c
_JSON_RUN = {
    "required_action",
    "last_error",
    "incomplete_details",
    "tools",
    "metadata",
    "usage",
    "truncation_strategy",
    "tool_choice",
    "response_format",
}
# JSON columns cast to text, as written (PostgreSQL's `json` keeps the text it was given).
_RUN_JSON_COLUMNS = [cast(_R[name], Text).label(name) if name in _JSON_RUN else _R[name] for name in RunJson._fields]
_RUN_JSON = Prepared(
    select(*_RUN_JSON_COLUMNS).where(
        _R.id == bindparam("run_id"),
        _R.thread_id == bindparam("thread_id"),
        exists().where(t.threads.c.id == bindparam("thread_id"), t.threads.c.project_id == bindparam("project_id")),
    )
)
_THREAD_EXISTS = Prepared(
    select(t.threads.c.id).where(
        t.threads.c.id == bindparam("thread_id"), t.threads.c.project_id == bindparam("project_id")
    )
)


async def run_json(reader: Reader, project_id: str, thread_id: str, run_id: str) -> RunJson | str:
    """The project's thread's run for the wire, in one compiled statement; else what is missing ("thread"
    or "run", a second statement tells which)."""
    values = {"run_id": run_id, "thread_id": thread_id, "project_id": project_id}
    rows = await reader.fetch(_RUN_JSON, values)
    if rows:
        return RunJson._make(rows[0])
    found = await reader.fetch(_THREAD_EXISTS, {"thread_id": thread_id, "project_id": project_id})
    return "run" if found else "thread"


async def insert_run(conn: Connection, values: Json) -> None:
    await conn.execute(t.runs.insert().values(**values))


_CREATE_RUN = t.runs.insert().returning(*t.runs.c)


async def create_run(conn: Connection, values: Json) -> RunRecord:
    """Insert a run and return it as stored (INSERT ... RETURNING: one statement, no read after it)."""
    row = (await conn.execute(_CREATE_RUN, values)).one()
    return RunRecord.from_row(row)


async def load_run(conn: Connection, run_id: str, *, lock: bool = False) -> RunRecord | None:
    """`lock`: hold the row for this transaction (PostgreSQL; SQLite has one writer anyway)."""
    query = select(t.runs).where(t.runs.c.id == run_id)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    return None if row is None else RunRecord.from_row(row)


async def get_run(conn: Connection, thread_id: str, run_id: str) -> RunRecord:
    """The thread's run, or the API's 404."""
    return RunRecord.from_row(await get_row(conn, t.runs, "run", run_id, t.runs.c.thread_id == thread_id))


async def page_runs(conn: Connection, thread_id: str, params: ListParams) -> Page[RunRecord]:
    return await paginate(
        conn,
        t.runs,
        [t.runs.c.thread_id == thread_id],
        limit=params.limit,
        order=params.order,
        after=params.after,
        before=params.before,
        from_row=RunRecord.from_row,
    )


async def run_exists(conn: Connection, run_id: str) -> bool:
    return (await conn.execute(select(t.runs.c.id).where(t.runs.c.id == run_id))).first() is not None


async def statuses(conn: Connection, run_ids: Iterable[str]) -> dict[str, str]:
    rows = (await conn.execute(select(t.runs.c.id, t.runs.c.status).where(t.runs.c.id.in_(list(run_ids))))).all()
    return {row.id: row.status for row in rows}


async def holder(conn: Connection, run_id: str) -> tuple[str, str | None] | None:
    """A run's status and the worker holding its lease (None: gone with its thread)."""
    row = (await conn.execute(select(t.runs.c.status, t.runs.c.lease_owner).where(t.runs.c.id == run_id))).first()
    return None if row is None else (str(row.status), row.lease_owner)


async def run_in_status(conn: Connection, thread_id: str, statuses: Iterable[str]) -> str | None:
    """A run of the thread in one of `statuses` (engine/lifecycle.py `active_run_id` asks for the active ones)."""
    query = select(t.runs.c.id).where(t.runs.c.thread_id == thread_id, t.runs.c.status.in_(list(statuses))).limit(1)
    return (await conn.execute(query)).scalar()


async def set_metadata(conn: Connection, run_id: str, metadata: dict[str, str]) -> None:
    await conn.execute(update(t.runs).where(t.runs.c.id == run_id).values(metadata=metadata))


async def run_resources(conn: Connection, assistant_id: str, thread_id: str) -> tuple[Json, Json]:
    """The `tool_resources` of the run's assistant and of its thread (a run uses both, spec §10)."""
    assistant = (
        await conn.execute(select(t.assistants.c.tool_resources).where(t.assistants.c.id == assistant_id))
    ).scalar()
    thread = (await conn.execute(select(t.threads.c.tool_resources).where(t.threads.c.id == thread_id))).scalar()
    return assistant or {}, thread or {}


# --- steps -------------------------------------------------------------------------------------


async def run_steps(conn: Connection, run_id: str) -> list[StepRecord]:
    query = select(t.run_steps).where(t.run_steps.c.run_id == run_id).order_by(order_key(t.run_steps))
    return [StepRecord.from_row(row) for row in (await conn.execute(query)).all()]


async def get_step(conn: Connection, run_id: str, step_id: str) -> StepRecord:
    """The run's step, or the API's 404."""
    return StepRecord.from_row(await get_row(conn, t.run_steps, "run step", step_id, t.run_steps.c.run_id == run_id))


async def page_steps(conn: Connection, run_id: str, params: ListParams) -> Page[StepRecord]:
    return await paginate(
        conn,
        t.run_steps,
        [t.run_steps.c.run_id == run_id],
        limit=params.limit,
        order=params.order,
        after=params.after,
        before=params.before,
        from_row=StepRecord.from_row,
    )


async def load_step(conn: Connection, step_id: str) -> StepRecord:
    return StepRecord.from_row((await conn.execute(select(t.run_steps).where(t.run_steps.c.id == step_id))).one())


async def open_tool_step(conn: Connection, run_id: str) -> StepRecord | None:
    """The tool_calls step a run in `requires_action` waits on."""
    query = select(t.run_steps).where(
        t.run_steps.c.run_id == run_id, t.run_steps.c.type == "tool_calls", t.run_steps.c.status == "in_progress"
    )
    row = (await conn.execute(query)).first()
    return None if row is None else StepRecord.from_row(row)


# Built once: a run's writes take their columns from the parameters (no statement built per call).
_INSERT_STEP = t.run_steps.insert()
_UPDATE_STEP = update(t.run_steps).where(t.run_steps.c.id == bindparam("step_key"))


async def insert_step(conn: Connection, values: Json) -> None:
    await conn.execute(_INSERT_STEP, values)


async def update_step(conn: Connection, step_id: str, values: Json) -> None:
    await conn.execute(_UPDATE_STEP, {"step_key": step_id, **values})


async def mark_open_steps(conn: Connection, run_id: str, values: Json) -> None:
    await conn.execute(
        update(t.run_steps)
        .where(t.run_steps.c.run_id == run_id, t.run_steps.c.status == "in_progress")
        .values(**values)
    )


async def close_open_steps(conn: Connection, run_id: str, step_status: str) -> list[StepRecord]:
    """The run ended early: its in-progress steps take the run's fate. Returns them as they now are."""
    stamp = {"cancelled": "cancelled_at", "failed": "failed_at", "expired": "expired_at"}[step_status]
    query = select(t.run_steps.c.id).where(t.run_steps.c.run_id == run_id, t.run_steps.c.status == "in_progress")
    step_ids = list((await conn.execute(query)).scalars())
    if not step_ids:
        return []
    await conn.execute(
        update(t.run_steps)
        .where(t.run_steps.c.id.in_(step_ids))
        .values(status=step_status, **{stamp: int(time.time())})
    )
    rows = (await conn.execute(select(t.run_steps).where(t.run_steps.c.id.in_(step_ids)))).all()
    return [StepRecord.from_row(row) for row in rows]


async def discard_open_steps(conn: Connection, run_id: str) -> list[StepRecord]:
    """Delete the run's in-progress steps (a model call its dead executor was making, and the tools it
    ran). Returns them: the caller deletes the messages their message_creation steps opened."""
    rows = (
        await conn.execute(
            select(t.run_steps).where(t.run_steps.c.run_id == run_id, t.run_steps.c.status == "in_progress")
        )
    ).all()
    steps = [StepRecord.from_row(row) for row in rows]
    if steps:
        await conn.execute(delete(t.run_steps).where(t.run_steps.c.id.in_([s.id for s in steps])))
    return steps


async def set_resumed(conn: Connection, run_id: str, resumes: int, usage: dict[str, int]) -> None:
    """A run resumed after its executor died: the resume counted, the usage its steps recorded kept."""
    await conn.execute(update(t.runs).where(t.runs.c.id == run_id).values(resumes=resumes, usage=usage))


async def delete_steps(conn: Connection, run_id: str) -> None:
    await conn.execute(delete(t.run_steps).where(t.run_steps.c.run_id == run_id))


@dataclass(frozen=True, slots=True)
class ImageFile:
    bytes: int
    blob_key: str
    filename: str


async def image_file(conn: Connection, file_id: str) -> ImageFile | None:
    """A File a message shows as an image, for the model to see (the files table, read for a run)."""
    query = select(t.files.c.bytes, t.files.c.blob_key, t.files.c.filename).where(t.files.c.id == file_id)
    row = (await conn.execute(query)).first()
    return None if row is None else ImageFile(row.bytes, row.blob_key, row.filename)


@dataclass(frozen=True, slots=True)
class LockedThread:
    """A thread locked for a new run, and its run in one of the statuses asked for (its active run), if any."""

    run_id: str | None


async def lock_thread_for_run(
    conn: Connection, project_id: str, thread_id: str, statuses: Iterable[str], *, one_writer: bool
) -> LockedThread | None:
    """The thread locked for this transaction (PostgreSQL), with its run in one of `statuses`; None when the
    project has no such thread. `one_writer` (SQLite: writers take turns, nothing commits meanwhile): one
    statement reads both. Else two: under READ COMMITTED a statement reads with the snapshot it took before
    waiting for its lock, so a run committed by the transaction that held the lock is seen only by a
    statement after it (tests/cluster: three replicas asked at once give one active run)."""
    statuses = tuple(statuses)
    values = {"thread_id": thread_id, "project_id": project_id}
    if one_writer:
        row = (await conn.execute(_lock_thread_query(statuses), values)).first()
        return None if row is None else LockedThread(row.active)
    if not await lock_thread(conn, project_id, thread_id):
        return None
    return LockedThread(await run_in_status(conn, thread_id, statuses))


@functools.cache
def _lock_thread_query(statuses: tuple[str, ...]) -> Select[tuple[str, str | None]]:
    r, th = t.runs.c, t.threads.c
    run = select(r.id).where(r.thread_id == th.id, r.status.in_(statuses)).limit(1).scalar_subquery()
    query = select(th.id, run.label("active")).where(
        th.id == bindparam("thread_id"), th.project_id == bindparam("project_id")
    )
    return query.with_for_update(of=t.threads)


async def lock_thread(conn: Connection, project_id: str, thread_id: str) -> bool:
    """Lock the thread a run is created on, for this transaction (PostgreSQL; SQLite has one writer
    anyway), so that two runs cannot both become its active run. False when there is no such thread."""
    query = select(t.threads.c.id).where(t.threads.c.id == thread_id, t.threads.c.project_id == project_id)
    return (await conn.execute(query.with_for_update())).first() is not None


_columns_match(RunRecord, t.runs)
_columns_match(StepRecord, t.run_steps)
