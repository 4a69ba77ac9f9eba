"""The counts /metrics reports from the database (services/metrics.py): what every replica sees alike.

Two statements in one read: runs grouped by status and model (a scan of the (status, model) index
alone: a whole scrape takes 7 ms on SQLite, 17 ms on PostgreSQL with 10k runs, bench/bench_metrics.py),
and three counts on indexed status columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select

from assistd.db import tables as t
from assistd.db.database import Connection


@dataclass(frozen=True, slots=True)
class RunCount:
    status: str
    model: str
    count: int


@dataclass(frozen=True, slots=True)
class Counts:
    runs: tuple[RunCount, ...]
    queued_waiting: int  # queued runs no worker holds: waiting to be claimed
    files_in_progress: int  # vector store files waiting for, or in, ingestion
    sandbox_sessions: int | None  # rows of the gateway sandbox's thread → kernel mapping (None: not asked)


async def read_counts(conn: Connection, now: float, *, sandbox_sessions: bool) -> Counts:
    """Two statements: the runs grouped, then the other counts as scalar subqueries of one SELECT."""
    r = t.runs.c
    grouped = await conn.execute(select(r.status, r.model, func.count().label("runs")).group_by(r.status, r.model))
    runs = tuple(RunCount(str(row.status), str(row.model), int(row.runs)) for row in grouped.all())
    f = t.vector_store_files.c
    free = or_(r.lease_owner.is_(None), r.lease_expires_at < now)
    counts = [
        select(func.count()).select_from(t.runs).where(r.status == "queued", free).scalar_subquery(),
        select(func.count()).select_from(t.vector_store_files).where(f.status == "in_progress").scalar_subquery(),
    ]
    if sandbox_sessions:
        counts.append(select(func.count()).select_from(t.sandbox_sessions).scalar_subquery())
    values = [int(value) for value in (await conn.execute(select(*counts))).one()]
    return Counts(runs, values[0], values[1], values[2] if sandbox_sessions else None)
