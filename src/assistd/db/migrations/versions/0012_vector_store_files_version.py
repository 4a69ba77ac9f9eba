"""search: a version of each store's file rows

`vector_stores.files_version` is bumped by triggers whenever a store's file rows are added,
removed, or change `status` or `attributes` (not on lease renewals), so search can keep a store's
file map (status and attributes) in process and check it with the one indexed read it already
makes for `chunks_version`; every replica sees other replicas' writes. The triggers are raw DDL.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 07:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_BUMP = "UPDATE vector_stores SET files_version = files_version + 1 WHERE id = {row}.vector_store_id;"

SQLITE_UP = [
    f"CREATE TRIGGER vector_store_files_ai AFTER INSERT ON vector_store_files BEGIN {_BUMP.format(row='new')} END",
    f"CREATE TRIGGER vector_store_files_ad AFTER DELETE ON vector_store_files BEGIN {_BUMP.format(row='old')} END",
    "CREATE TRIGGER vector_store_files_au AFTER UPDATE OF status, attributes, vector_store_id "
    f"ON vector_store_files BEGIN {_BUMP.format(row='old')} {_BUMP.format(row='new')} END",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS vector_store_files_au",
    "DROP TRIGGER IF EXISTS vector_store_files_ad",
    "DROP TRIGGER IF EXISTS vector_store_files_ai",
]

# Inserts and deletes: statement-level with transition tables (one UPDATE per store per statement).
# Updates: row-level, since PostgreSQL allows no transition table on a trigger with a column list.
POSTGRESQL_UP = [
    """CREATE FUNCTION assistd_bump_files_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE vector_stores SET files_version = files_version + 1
        WHERE id IN (SELECT DISTINCT vector_store_id FROM changed_rows);
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION assistd_bump_files_row() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE vector_stores SET files_version = files_version + 1
        WHERE id IN (OLD.vector_store_id, NEW.vector_store_id);
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER vector_store_files_ai AFTER INSERT ON vector_store_files REFERENCING NEW TABLE AS changed_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION assistd_bump_files_changed()",
    "CREATE TRIGGER vector_store_files_ad AFTER DELETE ON vector_store_files REFERENCING OLD TABLE AS changed_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION assistd_bump_files_changed()",
    "CREATE TRIGGER vector_store_files_au AFTER UPDATE OF status, attributes, vector_store_id ON vector_store_files "
    "FOR EACH ROW EXECUTE FUNCTION assistd_bump_files_row()",
]
POSTGRESQL_DOWN = [
    "DROP TRIGGER IF EXISTS vector_store_files_au ON vector_store_files",
    "DROP TRIGGER IF EXISTS vector_store_files_ad ON vector_store_files",
    "DROP TRIGGER IF EXISTS vector_store_files_ai ON vector_store_files",
    "DROP FUNCTION IF EXISTS assistd_bump_files_row()",
    "DROP FUNCTION IF EXISTS assistd_bump_files_changed()",
]


def _run(statements: list[str]) -> None:
    for statement in statements:
        op.execute(sa.text(statement))


def upgrade() -> None:
    op.add_column(
        "vector_stores", sa.Column("files_version", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _run(SQLITE_UP)
    elif dialect == "postgresql":
        _run(POSTGRESQL_UP)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _run(SQLITE_DOWN)
    elif dialect == "postgresql":
        _run(POSTGRESQL_DOWN)
    # Not batch mode: rebuilding vector_stores on SQLite would trip over 0004's triggers on chunks.
    op.execute(sa.text("ALTER TABLE vector_stores DROP COLUMN files_version"))
