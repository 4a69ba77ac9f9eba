"""Queries behind the admin API (/admin/v1): the project's threads, searchable, and the routing table."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, func, literal, or_, select

from assistd.db import tables as t
from assistd.db.database import Database
from assistd.protocol.admin import DefaultModelRoute, ModelList, ModelRoute, ThreadSearchParams
from assistd.protocol.common import ListPage
from assistd.protocol.threads import Thread
from assistd.providers.routing import ModelRouter
from assistd.services.common import paginate
from assistd.services.threads import to_thread


class AdminService:
    def __init__(self, db: Database, models: ModelRouter) -> None:
        self.db = db
        self.models = models

    async def list_threads(self, project_id: str, params: ThreadSearchParams) -> ListPage[Thread]:
        """The project's threads, paged by id like every list; `q` keeps those whose id or any
        metadata value contains it (case-insensitive). A scan of the project's threads: fine for a
        console, and no index to keep for it."""
        where: list[ColumnElement[bool]] = [t.threads.c.project_id == project_id]
        if params.q:
            where.append(self._matches(params.q))
        async with self.db.read() as conn:
            return await paginate(
                conn,
                t.threads,
                where,
                limit=params.limit,
                order=params.order,
                after=params.after,
                before=params.before,
                to_model=to_thread,
            )

    def _matches(self, q: str) -> ColumnElement[bool]:
        # Metadata is a JSON object of strings: look at its values only, not its keys or JSON syntax.
        each = func.json_each_text if self.db.dialect == "postgresql" else func.json_each
        values = each(t.threads.c.metadata).table_valued("key", "value")
        in_metadata = exists(select(literal(1)).select_from(values).where(values.c.value.icontains(q, autoescape=True)))
        return or_(t.threads.c.id.icontains(q, autoescape=True), in_metadata)

    def model_routes(self) -> ModelList:
        routes = [
            ModelRoute(
                id=route.match,
                pattern=any(c in route.match for c in "*?["),
                backend=route.backend,
                upstream_model=route.model,
            )
            for route in self.models.routes
        ]
        default = self.models.default
        return ModelList(
            data=routes,
            default=DefaultModelRoute(backend=default.backend, upstream_model=default.model) if default else None,
        )
