"""Queries behind the admin API (/admin/v1): the project's threads, searchable, the routing table, and the
files an import is still missing."""

from __future__ import annotations

from assistd.db.database import Database
from assistd.protocol.admin import (
    DefaultModelRoute,
    MissingFile,
    MissingFileList,
    ModelList,
    ModelRoute,
    ThreadSearchParams,
)
from assistd.protocol.common import ListPage
from assistd.protocol.threads import Thread
from assistd.providers.routing import ModelRouter
from assistd.services.common import list_page
from assistd.services.threads import to_thread
from assistd.stores import threads as thread_store
from assistd.stores import transfer


class AdminService:
    def __init__(self, db: Database, models: ModelRouter) -> None:
        self.db = db
        self.models = models

    async def list_threads(self, project_id: str, params: ThreadSearchParams) -> ListPage[Thread]:
        """The project's threads, paged by id; `q` keeps those whose id or a metadata value contains it."""
        async with self.db.read() as conn:
            page = await thread_store.search(conn, self.db.dialect, project_id, params.q, params)
        return list_page(page, to_thread)

    async def missing_files(self, project_id: str) -> MissingFileList:
        """Files `assistd import` was told about but not given the bytes of (docs/import-export.md)."""
        async with self.db.read() as conn:
            rows = await transfer.missing_files(conn, project_id)
        return MissingFileList(
            data=[
                MissingFile(
                    id=r.id,
                    filename=r.filename,
                    bytes=r.bytes,
                    created_at=r.created_at,
                    thread_id=r.thread_id,
                    recorded_at=r.recorded_at,
                )
                for r in rows
            ]
        )

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
