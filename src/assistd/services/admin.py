"""Queries behind the admin API (/admin/v1): the project's threads, searchable, and the routing table."""

from __future__ import annotations

from assistd.db.database import Database
from assistd.protocol.admin import DefaultModelRoute, ModelList, ModelRoute, ThreadSearchParams
from assistd.protocol.common import ListPage
from assistd.protocol.threads import Thread
from assistd.providers.routing import ModelRouter
from assistd.services.common import list_page
from assistd.services.threads import to_thread
from assistd.stores import threads as thread_store


class AdminService:
    def __init__(self, db: Database, models: ModelRouter) -> None:
        self.db = db
        self.models = models

    async def list_threads(self, project_id: str, params: ThreadSearchParams) -> ListPage[Thread]:
        """The project's threads, paged by id; `q` keeps those whose id or a metadata value contains it."""
        async with self.db.read() as conn:
            page = await thread_store.search(conn, self.db.dialect, project_id, params.q, params)
        return list_page(page, to_thread)

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
