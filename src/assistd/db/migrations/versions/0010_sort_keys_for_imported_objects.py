"""sort_key on assistants, threads, messages, runs, run_steps and files: where an imported object sorts;
import_missing_files: the files an import referenced without their bytes

Objects made here sort by id (ids.py); objects imported with ids from elsewhere (OpenAI's) carry a key
derived from their created_at and their order in the export. NULL for everything made here.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# table -> what its lists are scoped by (the order index's first column)
TABLES = {
    "assistants": "project_id",
    "threads": "project_id",
    "messages": "thread_id",
    "runs": "thread_id",
    "run_steps": "run_id",
    "files": "project_id",
}


def upgrade() -> None:
    for table, scope in TABLES.items():
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column(
                    "sort_key",
                    sa.String(length=128).with_variant(sa.String(length=128, collation="C"), "postgresql"),
                    nullable=True,
                )
            )
        # An expression index (raw DDL, not modelled in db/tables.py): the lists' ORDER BY, scoped.
        op.execute(f"CREATE INDEX ix_{table}_order ON {table} ({scope}, coalesce(sort_key, id))")
    id_type = sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql")
    op.create_table(
        "import_missing_files",
        sa.Column("project_id", id_type, nullable=False),
        sa.Column("id", id_type, nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=True),
        sa.Column("thread_id", id_type, nullable=True),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_import_missing_files")),
    )


def downgrade() -> None:
    op.drop_table("import_missing_files")
    for table in TABLES:
        op.execute(f"DROP INDEX ix_{table}_order")
        with op.batch_alter_table(table) as batch:
            batch.drop_column("sort_key")
