"""search: PostgreSQL keeps each chunk's tsvector instead of re-parsing its text per match

`chunks.text_tsv`, a stored generated column `to_tsvector('english', text)`, with the GIN index
`ix_chunks_text_tsv` moved onto it from the expression. The keyword query ranks with
`ts_rank_cd(text_tsv, q)`: before, it parsed and stemmed every matching chunk's text again (twice,
with the recheck), ~0.1 ms a row, so a query matching 10k of 100k chunks took over a second.
Raw DDL outside the models, like 0004's (`migrate.UNMODELLED_COLUMNS`). SQLite: a no-op (FTS5 keeps
its own index).

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 10:25:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

POSTGRESQL_UP = [
    "ALTER TABLE chunks ADD COLUMN text_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED",
    "DROP INDEX IF EXISTS ix_chunks_text_tsv",
    "CREATE INDEX ix_chunks_text_tsv ON chunks USING gin (text_tsv)",
]
POSTGRESQL_DOWN = [
    "DROP INDEX IF EXISTS ix_chunks_text_tsv",
    "ALTER TABLE chunks DROP COLUMN IF EXISTS text_tsv",
    "CREATE INDEX ix_chunks_text_tsv ON chunks USING gin (to_tsvector('english', text))",
]


def _run(statements: list[str]) -> None:
    for statement in statements:
        op.execute(sa.text(statement))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _run(POSTGRESQL_UP)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _run(POSTGRESQL_DOWN)
