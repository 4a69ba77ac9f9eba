"""Alembic, driven from code: the server upgrades the schema to head on start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import base as postgresql_base
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import UserDefinedType

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# An arbitrary constant: replicas starting together take turns to migrate.
PG_MIGRATION_LOCK = 7_402_113
# Raw-DDL objects of migrations 0004 (the keyword index), 0005 (pgvector's column and index), 0010 (the
# list-order indexes over imported objects' sort keys) and 0016 (PostgreSQL's stored tsvector) that
# db/tables.py does not model: schema comparison (autogenerate, tests/integration/test_migrations.py)
# leaves them out.
UNMODELLED_TABLE_PREFIX = "chunks_fts"
UNMODELLED_INDEXES = frozenset(
    {
        "ix_chunks_text_tsv",
        "ix_chunks_embedding_vec",
        # migration 0010: lists in coalesce(sort_key, id) order, per table (expression indexes)
        "ix_assistants_order",
        "ix_threads_order",
        "ix_messages_order",
        "ix_runs_order",
        "ix_run_steps_order",
        "ix_files_order",
    }
)
UNMODELLED_COLUMNS = frozenset({("chunks", "embedding_vec"), ("chunks", "text_tsv")})


class _Vector(UserDefinedType[Any]):
    """pgvector's `vector(n)`, known by name only so that reflecting `chunks` does not warn."""

    cache_ok = True

    def __init__(self, dimensions: int | None = None) -> None:
        self.dimensions = dimensions

    def get_col_spec(self, **kw: Any) -> str:
        return "vector" if self.dimensions is None else f"vector({self.dimensions})"


postgresql_base.ischema_names.setdefault("vector", _Vector)


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    if type_ == "table" and name is not None and name.startswith(UNMODELLED_TABLE_PREFIX):
        return False
    if type_ == "column" and (parent_names.get("table_name"), name) in UNMODELLED_COLUMNS:
        return False
    return not (type_ == "index" and name in UNMODELLED_INDEXES)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _upgrade(sync_conn: Any, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK})
        await conn.run_sync(_upgrade, revision)
