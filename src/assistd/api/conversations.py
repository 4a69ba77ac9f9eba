"""The Conversations API routes (/v1/conversations): threads seen as conversations (docs/conversations.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from assistd.api.deps import json_response, parse_body, parse_query, path_param, project_id, reject_nul, services
from assistd.api.routing import Endpoint, Router
from assistd.protocol.conversations import (
    Conversation,
    ConversationCreate,
    ConversationDeleted,
    ConversationUpdate,
    ItemList,
    ItemListParams,
    ItemObject,
    ItemsCreate,
)
from assistd.services.conversations import ConversationService, FileUrl, check_include


class IncludeParams(BaseModel):
    """`include` (or `include[]`), repeated: the extra output to include."""

    model_config = ConfigDict(extra="ignore")

    include: str | None = None


def _service(request: Request) -> ConversationService:
    return services(request).conversations


def _include(request: Request) -> frozenset[str]:
    values = request.query_params.getlist("include[]") + request.query_params.getlist("include")
    for value in values:
        reject_nul(value, "include")
    return check_include(values)


def _file_url(request: Request) -> FileUrl:
    base = str(request.base_url).rstrip("/")
    return lambda file_id: f"{base}/v1/files/{file_id}/content"


async def create(request: Request) -> Response:
    body = await parse_body(request, ConversationCreate)
    return json_response(await _service(request).create(project_id(request), body))


async def retrieve(request: Request) -> Response:
    return json_response(await _service(request).get(project_id(request), path_param(request, "conversation_id")))


async def update(request: Request) -> Response:
    conversation_id = path_param(request, "conversation_id")
    body = await parse_body(request, ConversationUpdate)
    return json_response(await _service(request).update(project_id(request), conversation_id, body))


async def delete(request: Request) -> Response:
    conversation_id = path_param(request, "conversation_id")
    return json_response(await _service(request).delete(project_id(request), conversation_id))


async def create_items(request: Request) -> Response:
    conversation_id = path_param(request, "conversation_id")
    include = _include(request)
    body = await parse_body(request, ItemsCreate)
    page = await _service(request).create_items(project_id(request), conversation_id, body, include, _file_url(request))
    return json_response(page)


async def list_items(request: Request) -> Response:
    conversation_id = path_param(request, "conversation_id")
    params = parse_query(request, ItemListParams)
    include = _include(request)
    page = await _service(request).list_items(project_id(request), conversation_id, params, include, _file_url(request))
    return json_response(page)


async def retrieve_item(request: Request) -> Response:
    conversation_id, item_id = path_param(request, "conversation_id"), path_param(request, "item_id")
    include = _include(request)
    item = await _service(request).get_item(project_id(request), conversation_id, item_id, include, _file_url(request))
    return json_response(ItemObject(item))


async def delete_item(request: Request) -> Response:
    conversation_id, item_id = path_param(request, "conversation_id"), path_param(request, "item_id")
    conversation = await _service(request).delete_item(
        project_id(request), conversation_id, item_id, _file_url(request)
    )
    return json_response(conversation)


def register(router: Router) -> None:
    tag = "Conversations"
    one = "/conversations/{conversation_id}"
    items = one + "/items"
    item = items + "/{item_id}"
    router.add(
        Endpoint(
            "POST", "/conversations", create, "Create a conversation", Conversation, body=ConversationCreate, tag=tag
        )
    )
    router.add(Endpoint("GET", one, retrieve, "Retrieve a conversation (any thread)", Conversation, tag=tag))
    router.add(Endpoint("POST", one, update, "Update a conversation", Conversation, body=ConversationUpdate, tag=tag))
    router.add(Endpoint("DELETE", one, delete, "Delete a conversation and its items", ConversationDeleted, tag=tag))
    router.add(
        Endpoint("POST", items, create_items, "Create items", ItemList, body=ItemsCreate, query=IncludeParams, tag=tag)
    )
    router.add(Endpoint("GET", items, list_items, "List items", ItemList, query=ItemListParams, tag=tag))
    router.add(Endpoint("GET", item, retrieve_item, "Retrieve an item", ItemObject, query=IncludeParams, tag=tag))
    router.add(Endpoint("DELETE", item, delete_item, "Delete an item", Conversation, tag=tag))
