"""containers and container_files: code_interpreter containers (docs/containers.md)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _id() -> sa.types.TypeEngine[str]:
    return sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "containers",
        sa.Column("id", _id(), nullable=False),
        sa.Column("project_id", _id(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_active_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_minutes", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_containers")),
    )
    op.create_index(op.f("ix_containers_project_id_id"), "containers", ["project_id", "id"])
    op.create_index(op.f("ix_containers_status_last_active_at"), "containers", ["status", "last_active_at"])
    op.create_table(
        "container_files",
        sa.Column("id", _id(), nullable=False),
        sa.Column("container_id", _id(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("blob_key", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_container_files")),
        sa.UniqueConstraint("container_id", "path", name=op.f("uq_container_files_container_id_path")),
    )
    op.create_index(op.f("ix_container_files_container_id_id"), "container_files", ["container_id", "id"])


def downgrade() -> None:
    op.drop_table("container_files")
    op.drop_table("containers")
