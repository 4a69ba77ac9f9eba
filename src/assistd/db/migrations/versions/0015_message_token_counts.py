"""messages.token_count, messages.token_counter: a message's tokens as its prompt counted them, and
which counter counted them (providers/base.py `TokenCounter.key`), so a long thread is not counted
again on every model call (engine/prompt.py). NULL until a prompt counts the message; cleared when its
content changes.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 10:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("token_count", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("token_counter", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("token_counter")
        batch.drop_column("token_count")
