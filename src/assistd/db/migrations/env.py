"""Alembic environment: always given a live connection by assistd.db.migrate."""

from __future__ import annotations

from alembic import context

from assistd.db.migrate import include_name
from assistd.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through assistd.db.migrate (it passes a connection)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=include_name,
)
with context.begin_transaction():
    context.run_migrations()
