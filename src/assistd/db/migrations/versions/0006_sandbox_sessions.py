"""sandbox_sessions: the thread → kernel mapping of the kernel gateway sandbox backend

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 04:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sandbox_sessions",
        sa.Column(
            "session_key",
            sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("kernel_id", sa.String(length=128), nullable=False),
        sa.Column("placed", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("session_key", name=op.f("pk_sandbox_sessions")),
    )


def downgrade() -> None:
    op.drop_table("sandbox_sessions")
