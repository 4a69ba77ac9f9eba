"""The SQL of import and export (assistd/migrate/): which ids are already taken and by whom, objects
written with the ids and times they came with, and everything of a project read back in list order.

Records go in as they are (`columns`), sort key included; the caller owns the transaction (one per
thread on import, so a thread is written whole or not at all).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, Table, delete, literal, select, union_all

from assistd.db import tables as t
from assistd.db.database import Connection
from assistd.stores.assistants import AssistantRecord
from assistd.stores.common import Record, order_key
from assistd.stores.files import FileRecord
from assistd.stores.messages import MessageRecord
from assistd.stores.runs import RunRecord, StepRecord
from assistd.stores.threads import ThreadRecord

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# Ids per IN (...) list and rows per executemany: well under SQLite's and asyncpg's parameter limits.
CHUNK = 500

# What an id found in each table belongs to: the project (top-level objects) or the thread.
_OWNER = {
    "assistants": "project_id",
    "threads": "project_id",
    "files": "project_id",
    "messages": "thread_id",
    "runs": "thread_id",
    "run_steps": "thread_id",
    "vector_stores": "project_id",
}
TABLES: dict[str, Table] = {
    "assistants": t.assistants,
    "threads": t.threads,
    "files": t.files,
    "messages": t.messages,
    "runs": t.runs,
    "run_steps": t.run_steps,
    "vector_stores": t.vector_stores,
    "import_missing_files": t.import_missing_files,
}


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


async def owners(conn: Connection, table: str, object_ids: Sequence[str]) -> dict[str, str]:
    """Of these ids, those already in `table`, each with what holds it (its project, or its thread)."""
    tbl = TABLES[table]
    owner = tbl.c[_OWNER[table]]
    found: dict[str, str] = {}
    for part in _chunks(list(dict.fromkeys(object_ids))):
        query = select(tbl.c.id.label("id"), owner.label("owner")).where(tbl.c.id.in_(part))
        found.update({str(row.id): str(row.owner) for row in (await conn.execute(query)).all()})
    return found


async def owners_of(conn: Connection, wanted: Mapping[str, Sequence[str]]) -> dict[str, dict[str, str]]:
    """`owners` for several tables in one round trip: table -> {id: what holds it}, for ids already there."""
    parts: list[Select[Any]] = []
    for table, object_ids in wanted.items():
        tbl = TABLES[table]
        for part in _chunks(list(dict.fromkeys(object_ids))):
            parts.append(
                select(literal(table).label("tbl"), tbl.c.id.label("id"), tbl.c[_OWNER[table]].label("owner")).where(
                    tbl.c.id.in_(part)
                )
            )
    found: dict[str, dict[str, str]] = {table: {} for table in wanted}
    if not parts:
        return found
    query = parts[0] if len(parts) == 1 else union_all(*parts)
    for row in (await conn.execute(query)).all():
        found[str(row.tbl)][str(row.id)] = str(row.owner)
    return found


def _values(record: DataclassInstance) -> dict[str, object]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


async def insert(conn: Connection, table: str, records: Sequence[DataclassInstance]) -> None:
    """Write records with the ids and times they carry (one executemany per chunk)."""
    tbl = TABLES[table]
    for start in range(0, len(records), CHUNK):
        part = records[start : start + CHUNK]
        await conn.execute(tbl.insert(), [_values(record) for record in part])


# --- export: a project's objects in list order -------------------------------------------------


async def assistants(conn: Connection, project_id: str) -> list[AssistantRecord]:
    query = select(t.assistants).where(t.assistants.c.project_id == project_id).order_by(order_key(t.assistants))
    return [AssistantRecord.from_row(row) for row in (await conn.execute(query)).all()]


async def threads(conn: Connection, project_id: str, thread_ids: Sequence[str] | None) -> list[ThreadRecord]:
    """The project's threads (those of `thread_ids` only, when given), oldest first."""
    query = select(t.threads).where(t.threads.c.project_id == project_id).order_by(order_key(t.threads))
    if thread_ids is None:
        return [ThreadRecord.from_row(row) for row in (await conn.execute(query)).all()]
    found: list[ThreadRecord] = []
    for part in _chunks(list(thread_ids)):
        rows = (await conn.execute(query.where(t.threads.c.id.in_(part)))).all()
        found.extend(ThreadRecord.from_row(row) for row in rows)
    return found


async def messages(conn: Connection, thread_id: str) -> list[MessageRecord]:
    query = select(t.messages).where(t.messages.c.thread_id == thread_id).order_by(order_key(t.messages))
    return [MessageRecord.from_row(row) for row in (await conn.execute(query)).all()]


async def runs(conn: Connection, thread_id: str) -> list[RunRecord]:
    query = select(t.runs).where(t.runs.c.thread_id == thread_id).order_by(order_key(t.runs))
    return [RunRecord.from_row(row) for row in (await conn.execute(query)).all()]


async def steps(conn: Connection, thread_id: str) -> list[StepRecord]:
    """Every step of the thread's runs, in order (the caller groups them by run)."""
    query = select(t.run_steps).where(t.run_steps.c.thread_id == thread_id).order_by(order_key(t.run_steps))
    return [StepRecord.from_row(row) for row in (await conn.execute(query)).all()]


async def files(conn: Connection, project_id: str, file_ids: Sequence[str]) -> list[FileRecord]:
    found: list[FileRecord] = []
    for part in _chunks(list(dict.fromkeys(file_ids))):
        query = select(t.files).where(t.files.c.project_id == project_id, t.files.c.id.in_(part))
        found.extend(FileRecord.from_row(row) for row in (await conn.execute(query)).all())
    return found


async def store_file_ids(conn: Connection, store_id: str) -> set[str]:
    """The files a vector store already has (whatever their status)."""
    query = select(t.vector_store_files.c.id).where(t.vector_store_files.c.vector_store_id == store_id)
    return {str(file_id) for file_id in (await conn.execute(query)).scalars()}


# --- files an import referenced without their bytes ------------------------------------------------


@dataclass(frozen=True, slots=True)
class MissingFileRecord(Record):
    project_id: str
    id: str
    filename: str
    bytes: int | None
    created_at: int | None
    thread_id: str | None
    recorded_at: int


async def record_missing(conn: Connection, records: Sequence[MissingFileRecord]) -> None:
    """Note these files as missing (a file already noted keeps its first note)."""
    if not records:
        return
    project_id = records[0].project_id
    known = set(await missing_ids(conn, project_id, [r.id for r in records]))
    await insert(conn, "import_missing_files", [r for r in records if r.id not in known])


async def missing_ids(conn: Connection, project_id: str, file_ids: Sequence[str]) -> list[str]:
    mf = t.import_missing_files.c
    found: list[str] = []
    for part in _chunks(list(dict.fromkeys(file_ids))):
        query = select(mf.id).where(mf.project_id == project_id, mf.id.in_(part))
        found.extend(str(file_id) for file_id in (await conn.execute(query)).scalars())
    return found


async def clear_missing(conn: Connection, project_id: str, file_ids: Sequence[str]) -> None:
    """These files' bytes came: they are missing no more."""
    mf = t.import_missing_files.c
    for part in _chunks(list(file_ids)):
        await conn.execute(delete(t.import_missing_files).where(mf.project_id == project_id, mf.id.in_(part)))


async def missing_files(conn: Connection, project_id: str) -> list[MissingFileRecord]:
    mf = t.import_missing_files.c
    query = select(t.import_missing_files).where(mf.project_id == project_id).order_by(mf.recorded_at, mf.id)
    return [MissingFileRecord.from_row(row) for row in (await conn.execute(query)).all()]
