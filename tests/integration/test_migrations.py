"""Migrations: upgrading an empty database to head gives exactly the schema in db/tables.py.

Runs on SQLite (a temp file) and on PostgreSQL (pgserver). A difference here means a change to
tables.py without a matching migration (or the reverse): write the migration.
"""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from assistd.db import migrate
from assistd.db import tables as t
from assistd.db.database import create_engine

T = TypeVar("T")

BACKENDS = [
    pytest.param(name, marks=pytest.mark.postgres) if name == "postgres" else name
    for name in os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")
]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres").new_database())
    raise ValueError(f"unknown backend {request.param!r}")


def run_with_engine(url: str, body: Callable[[AsyncEngine], Any]) -> Any:
    """Run `await body(engine)` on a fresh engine, always disposing of it."""

    async def main() -> Any:
        engine = create_engine(url)
        try:
            return await body(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


async def on_sync_connection(engine: AsyncEngine, fn: Callable[[Any], T]) -> T:
    async with engine.connect() as conn:
        return await conn.run_sync(fn)


def schema_diff(sync_conn: Any) -> list[Any]:
    context = MigrationContext.configure(sync_conn, opts={"compare_type": True, "include_name": migrate.include_name})
    with warnings.catch_warnings():
        # SQLite cannot reflect expression indexes (migration 0010's, which include_name leaves out anyway).
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        return list(compare_metadata(context, t.metadata))


def current_revision(sync_conn: Any) -> str | None:
    return MigrationContext.configure(sync_conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()


def test_upgrade_from_empty_matches_models(database_url: str) -> None:
    async def body(engine: AsyncEngine) -> tuple[str | None, list[Any]]:
        assert await on_sync_connection(engine, current_revision) is None
        await migrate.upgrade(engine)
        return (
            await on_sync_connection(engine, current_revision),
            await on_sync_connection(engine, schema_diff),
        )

    revision, diff = run_with_engine(database_url, body)
    assert revision == head_revision()
    assert diff == [], "the migrations and db/tables.py disagree; add a migration:\n" + "\n".join(map(repr, diff))


def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    async def body(engine: AsyncEngine) -> tuple[str | None, int, list[Any]]:
        await migrate.upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(t.projects.insert().values(id="proj_keep", name="keep", created_at=1))
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            kept = (await conn.execute(select(func.count()).select_from(t.projects))).scalar_one()
        return (
            await on_sync_connection(engine, current_revision),
            kept,
            await on_sync_connection(engine, schema_diff),
        )

    revision, kept, diff = run_with_engine(database_url, body)
    assert revision == head_revision()
    assert kept == 1
    assert diff == []


def test_there_is_exactly_one_head() -> None:
    heads = ScriptDirectory.from_config(migrate.alembic_config()).get_heads()
    assert len(heads) == 1, f"migration history has branched: heads {heads}; add a merge revision"
