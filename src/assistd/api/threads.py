from __future__ import annotations

from pydantic import ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from assistd.api.deps import json_response, parse_body, parse_query, path_param, project_id, services
from assistd.api.routing import Endpoint, Router
from assistd.protocol.common import Deleted, ListPage, ListParams
from assistd.protocol.messages import Message, MessageCreate, MessageUpdate
from assistd.protocol.threads import Thread, ThreadCreate, ThreadUpdate


class MessageListParams(ListParams):
    model_config = ConfigDict(extra="ignore")

    run_id: str | None = None


async def create(request: Request) -> Response:
    body = await parse_body(request, ThreadCreate)
    return json_response(await services(request).threads.create(project_id(request), body))


async def retrieve(request: Request) -> Response:
    return json_response(await services(request).threads.get(project_id(request), path_param(request, "thread_id")))


async def modify(request: Request) -> Response:
    thread_id = path_param(request, "thread_id")
    body = await parse_body(request, ThreadUpdate)
    return json_response(await services(request).threads.update(project_id(request), thread_id, body))


async def delete(request: Request) -> Response:
    thread_id = path_param(request, "thread_id")
    return json_response(await services(request).threads.delete(project_id(request), thread_id))


async def create_message(request: Request) -> Response:
    thread_id = path_param(request, "thread_id")
    body = await parse_body(request, MessageCreate)
    return json_response(await services(request).threads.create_message(project_id(request), thread_id, body))


async def list_messages(request: Request) -> Response:
    thread_id = path_param(request, "thread_id")
    params = parse_query(request, MessageListParams)
    body = await services(request).threads.list_messages_json(project_id(request), thread_id, params, params.run_id)
    return Response(body, media_type="application/json")


async def retrieve_message(request: Request) -> Response:
    thread_id, message_id = path_param(request, "thread_id"), path_param(request, "message_id")
    return json_response(await services(request).threads.get_message(project_id(request), thread_id, message_id))


async def modify_message(request: Request) -> Response:
    thread_id, message_id = path_param(request, "thread_id"), path_param(request, "message_id")
    body = await parse_body(request, MessageUpdate)
    message = await services(request).threads.update_message(project_id(request), thread_id, message_id, body)
    return json_response(message)


async def delete_message(request: Request) -> Response:
    thread_id, message_id = path_param(request, "thread_id"), path_param(request, "message_id")
    deleted = await services(request).threads.delete_message(project_id(request), thread_id, message_id)
    return json_response(deleted)


def register(router: Router) -> None:
    tag = "Threads"
    one = "/threads/{thread_id}"
    msgs = one + "/messages"
    msg = msgs + "/{message_id}"
    router.add(Endpoint("POST", "/threads", create, "Create a thread", Thread, body=ThreadCreate, tag=tag))
    router.add(Endpoint("GET", one, retrieve, "Retrieve a thread", Thread, tag=tag))
    router.add(Endpoint("POST", one, modify, "Modify a thread", Thread, body=ThreadUpdate, tag=tag))
    router.add(Endpoint("DELETE", one, delete, "Delete a thread and its messages", Deleted, tag=tag))
    tag = "Messages"
    router.add(Endpoint("POST", msgs, create_message, "Create a message", Message, body=MessageCreate, tag=tag))
    router.add(
        Endpoint("GET", msgs, list_messages, "List messages", ListPage[Message], query=MessageListParams, tag=tag)
    )
    router.add(Endpoint("GET", msg, retrieve_message, "Retrieve a message", Message, tag=tag))
    router.add(Endpoint("POST", msg, modify_message, "Modify a message", Message, body=MessageUpdate, tag=tag))
    router.add(Endpoint("DELETE", msg, delete_message, "Delete a message", Deleted, tag=tag))
