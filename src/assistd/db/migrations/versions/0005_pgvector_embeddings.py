"""pgvector: chunk embeddings as a `vector(384)` column with an HNSW index (PostgreSQL only)

Where the `vector` extension is available (`pg_available_extensions`) and can be created, chunks
get `embedding_vec vector(384)`, a copy of `embedding` for 384-dimension vectors (the bundled
MiniLM; NULL for other dimensions), filled here for existing rows and by ingestion for new ones,
and `ix_chunks_embedding_vec`, an HNSW index with `vector_cosine_ops`. Search uses them for the
vector side (retrieval/search.py). Without the extension nothing changes and search keeps its
numpy path. SQLite: a no-op. Like 0004's raw DDL, the column and index are outside the models
(`migrate.include_name`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 14:55:00.000000
"""

from __future__ import annotations

import struct

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

DIMENSIONS = 384
_BATCH = 1000


def _vector_literal(embedding: bytes) -> str:
    # struct, not numpy: migrations run at every start, and numpy is only in the `retrieval` extra.
    return "[" + ",".join(map(repr, struct.unpack(f"<{len(embedding) // 4}f", embedding))) + "]"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'vector'")).first() is None:
        if bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first() is None:
            return
        try:
            with bind.begin_nested():  # a savepoint: without the privilege, carry on without pgvector
                bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
        except sa.exc.DBAPIError:
            return
    op.execute(sa.text(f"ALTER TABLE chunks ADD COLUMN embedding_vec vector({DIMENSIONS})"))
    rows = bind.execute(
        sa.text("SELECT vector_store_id, file_id, seq, embedding FROM chunks WHERE length(embedding) = :width"),
        {"width": DIMENSIONS * 4},
    ).all()
    update = sa.text(
        "UPDATE chunks SET embedding_vec = CAST(CAST(:vec AS text) AS vector) "
        "WHERE vector_store_id = :store AND file_id = :file AND seq = :seq"
    )
    for start in range(0, len(rows), _BATCH):
        bind.execute(
            update,
            [
                {"vec": _vector_literal(r.embedding), "store": r.vector_store_id, "file": r.file_id, "seq": r.seq}
                for r in rows[start : start + _BATCH]
            ],
        )
    op.execute(sa.text("CREATE INDEX ix_chunks_embedding_vec ON chunks USING hnsw (embedding_vec vector_cosine_ops)"))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(sa.text("DROP INDEX IF EXISTS ix_chunks_embedding_vec"))
    op.execute(sa.text("ALTER TABLE chunks DROP COLUMN IF EXISTS embedding_vec"))
