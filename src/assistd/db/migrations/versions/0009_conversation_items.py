"""conversation_items: conversation items with no Assistants equivalent (docs/conversations.md)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 07:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _id() -> sa.types.TypeEngine[str]:
    return sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "conversation_items",
        sa.Column("id", _id(), nullable=False),
        sa.Column("thread_id", _id(), nullable=False),
        sa.Column("sort_key", _id(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("item", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_items")),
    )
    with op.batch_alter_table("conversation_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversation_items_thread_id_sort_key"), ["thread_id", "sort_key"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("conversation_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_items_thread_id_sort_key"))
    op.drop_table("conversation_items")
