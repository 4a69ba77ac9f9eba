"""Assistants in the database."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, update

from assistd.db import tables as t
from assistd.db.database import Connection
from assistd.protocol.common import ListParams
from assistd.stores.common import Json, Page, Record, columns, get_row, paginate

KIND = "assistant"


@dataclass(frozen=True, slots=True)
class AssistantRecord(Record):
    id: str
    project_id: str
    created_at: int
    name: str | None
    description: str | None
    model: str
    instructions: str | None
    tools: list[Json]
    tool_resources: Json
    metadata: dict[str, str]
    temperature: float | None
    top_p: float | None
    response_format: Any  # "auto" or a JSON object; null on rows written before it existed
    reasoning_effort: str | None
    sort_key: str | None = None  # set on imported assistants only (db/tables.py)


async def insert(conn: Connection, record: AssistantRecord) -> None:
    await conn.execute(t.assistants.insert().values(**columns(record)))


async def get(conn: Connection, project_id: str, assistant_id: str) -> AssistantRecord:
    row = await get_row(conn, t.assistants, KIND, assistant_id, t.assistants.c.project_id == project_id)
    return AssistantRecord.from_row(row)


async def page(conn: Connection, project_id: str, params: ListParams) -> Page[AssistantRecord]:
    return await paginate(
        conn,
        t.assistants,
        [t.assistants.c.project_id == project_id],
        limit=params.limit,
        order=params.order,
        after=params.after,
        before=params.before,
        from_row=AssistantRecord.from_row,
    )


async def update_fields(conn: Connection, assistant_id: str, changes: Mapping[str, object]) -> None:
    await conn.execute(update(t.assistants).where(t.assistants.c.id == assistant_id).values(**changes))


async def remove(conn: Connection, assistant_id: str) -> None:
    await conn.execute(delete(t.assistants).where(t.assistants.c.id == assistant_id))
