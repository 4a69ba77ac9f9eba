from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from assistd.api.deps import json_response, parse_body, parse_query, path_param, project_id, services
from assistd.api.routing import Endpoint, Router
from assistd.protocol.assistants import Assistant, AssistantCreate, AssistantUpdate
from assistd.protocol.common import Deleted, ListPage, ListParams


async def create(request: Request) -> Response:
    body = await parse_body(request, AssistantCreate)
    return json_response(await services(request).assistants.create(project_id(request), body))


async def list_(request: Request) -> Response:
    params = parse_query(request, ListParams)
    return json_response(await services(request).assistants.list(project_id(request), params))


async def retrieve(request: Request) -> Response:
    assistant_id = path_param(request, "assistant_id")
    return json_response(await services(request).assistants.get(project_id(request), assistant_id))


async def modify(request: Request) -> Response:
    assistant_id = path_param(request, "assistant_id")
    body = await parse_body(request, AssistantUpdate)
    return json_response(await services(request).assistants.update(project_id(request), assistant_id, body))


async def delete(request: Request) -> Response:
    assistant_id = path_param(request, "assistant_id")
    return json_response(await services(request).assistants.delete(project_id(request), assistant_id))


def register(router: Router) -> None:
    tag = "Assistants"
    one = "/assistants/{assistant_id}"
    router.add(Endpoint("POST", "/assistants", create, "Create an assistant", Assistant, body=AssistantCreate, tag=tag))
    router.add(Endpoint("GET", "/assistants", list_, "List assistants", ListPage[Assistant], query=ListParams, tag=tag))
    router.add(Endpoint("GET", one, retrieve, "Retrieve an assistant", Assistant, tag=tag))
    router.add(Endpoint("POST", one, modify, "Modify an assistant", Assistant, body=AssistantUpdate, tag=tag))
    router.add(Endpoint("DELETE", one, delete, "Delete an assistant", Deleted, tag=tag))
