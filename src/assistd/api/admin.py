"""The admin API under /admin/v1: endpoints OpenAI never had, for the web console and operators.

Same keys, same project scoping, same list and error conventions as /v1.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from assistd.api.deps import json_response, parse_query, project_id, services
from assistd.api.routing import Endpoint, Router
from assistd.protocol.admin import MissingFileList, ModelList, ThreadSearchParams
from assistd.protocol.common import ListPage
from assistd.protocol.threads import Thread

PREFIX = "/admin/v1"


async def list_threads(request: Request) -> Response:
    params = parse_query(request, ThreadSearchParams)
    return json_response(await services(request).admin.list_threads(project_id(request), params))


async def list_missing_files(request: Request) -> Response:
    return json_response(await services(request).admin.missing_files(project_id(request)))


async def list_models(request: Request) -> Response:
    return json_response(services(request).admin.model_routes())


def register(router: Router) -> None:
    tag = "Admin"
    router.add(
        Endpoint(
            "GET",
            "/threads",
            list_threads,
            "List the project's threads (searchable by id and metadata values)",
            ListPage[Thread],
            query=ThreadSearchParams,
            tag=tag,
        )
    )
    router.add(Endpoint("GET", "/models", list_models, "The model routing table", ModelList, tag=tag))
    router.add(
        Endpoint(
            "GET",
            "/imports/missing_files",
            list_missing_files,
            "Files an import referenced without their bytes",
            MissingFileList,
            tag=tag,
        )
    )
