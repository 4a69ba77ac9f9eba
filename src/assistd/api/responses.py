"""The Responses API routes (/v1/responses): responses as runs of the engine (docs/responses.md)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Literal

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response as HttpResponse
from starlette.responses import StreamingResponse

from assistd.adapters.response_events import KeptEvents, Tee
from assistd.adapters.responses import file_content_url, load_response
from assistd.adapters.responses_stream import ResponsesStream
from assistd.api.deps import json_response, parse_body, parse_query, path_param, project_id, reject_nul, services
from assistd.api.routing import Endpoint, Router
from assistd.api.streaming import QueueSink, sse
from assistd.db.database import Database
from assistd.engine.lifecycle import TERMINAL
from assistd.protocol.events import EXECUTION_OVER, RUN_DELETED
from assistd.protocol.responses import (
    END_EVENTS,
    ErrorEvent,
    InputItemList,
    InputItemListParams,
    Response,
    ResponseCreate,
    ResponseDeleted,
    ResponseEvent,
)
from assistd.services.conversations import check_include
from assistd.services.responses import Finished, ResponseService
from assistd.stores import responses as response_store
from assistd.stores import runs as run_store
from assistd.stores.responses import ResponseRecord

UNFINISHED = "The response stopped streaming before it reached a final state; retrieve it for its status."


class IncludeParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include: str | None = None
    stream: bool | None = None
    starting_after: int | None = None


_FINAL: dict[str, Literal["response.completed", "response.incomplete"]] = {
    "completed": "response.completed",
    "incomplete": "response.incomplete",
}
POLL_SECONDS = 0.1  # how often a resumed stream looks for new kept events
# A response that ended without its final event kept (its executor died and nobody resumed it) ends a
# resumed stream with an `error` event after this long without new events.
SETTLE_SECONDS = 5.0


def _service(request: Request) -> ResponseService:
    return services(request).responses


def _include(request: Request) -> frozenset[str]:
    values = request.query_params.getlist("include[]") + request.query_params.getlist("include")
    for value in values:
        reject_nul(value, "include")
    return check_include(values)


async def create(request: Request) -> HttpResponse:
    body = await parse_body(request, ResponseCreate)
    include = check_include(body.include or [])
    svc = services(request)
    background = bool(body.background) and not body.stream
    owner = None if background else svc.worker.owner
    record, response = await svc.responses.create(project_id(request), body, owner=owner)
    if background:
        return json_response(response)
    if body.stream:
        sink = QueueSink()
        # A background response's events are kept too, for `GET ?stream=true&starting_after=`.
        stream = ResponsesStream(
            svc.db, record, Tee(sink, KeptEvents(svc.db, record.id)) if record.background else sink, include
        )
        await stream.opened_with(response)
        if record.background:
            await stream.queued()
        svc.worker.spawn(record.id, stream)
        return StreamingResponse(
            _events(sink, stream, svc.settings.stream_keepalive_seconds),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
    finished = Finished()
    svc.worker.spawn(record.id, finished)
    await finished.done.wait()
    return json_response(await svc.responses.result(record, include))


async def _events(sink: QueueSink, stream: ResponsesStream, keepalive: float) -> AsyncIterator[bytes]:
    """The response's events until its final one (or an `error` event when execution ended without it)."""
    try:
        while True:
            found = await sink.next(keepalive)
            if found is None:
                yield b": keep-alive\n\n"
                continue
            event, data = found
            if event in (EXECUTION_OVER, RUN_DELETED):
                error = ErrorEvent(code="server_error", message=UNFINISHED, param=None, sequence_number=stream.sequence)
                yield sse(error.type, error)
                break
            yield sse(event, data)
            if event in END_EVENTS:
                break
    finally:
        sink.closed = True


async def retrieve(request: Request) -> HttpResponse:
    response_id = path_param(request, "response_id")
    params = parse_query(request, IncludeParams)
    if params.stream:
        record = await _service(request).streamable(project_id(request), response_id)
        after = -1 if params.starting_after is None else params.starting_after
        svc = services(request)
        return StreamingResponse(
            _kept_events(svc.db, record, after, svc.settings.stream_keepalive_seconds),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
    return json_response(await _service(request).get(project_id(request), response_id, _include(request)))


async def _kept_events(db: Database, record: ResponseRecord, after: int, keepalive: float) -> AsyncIterator[bytes]:
    """A background response's kept events after `after`, then the new ones, until its final event."""
    response_id = record.id
    quiet_since = time.monotonic()
    ended_at: float | None = None
    while True:
        async with db.read() as conn:
            events = await response_store.events_after(conn, response_id, after, 500)
            run = None if events else await run_store.load_run(conn, response_id)
            last = None if events else await response_store.last_event(conn, response_id)
        if last is not None and last.type in END_EVENTS and last.sequence_number <= after:
            return  # it ended at or before `after`: nothing follows
        for event in events:
            yield sse(event.type, event.data)
            after = event.sequence_number
            if event.type in END_EVENTS:
                return
        now = time.monotonic()
        if events:
            quiet_since, ended_at = now, None
            continue
        if run is None or run.status in TERMINAL:
            ended_at = ended_at or now
            if now - ended_at >= SETTLE_SECONDS or run is None:
                # Ended with no final event kept (cancelled while queued, or its executor gone): the final
                # event from the stored response, numbered after the last kept one.
                number = max(after, last.sequence_number if last is not None else -1) + 1
                async with db.read() as conn:
                    response = None if run is None else await load_response(conn, record, frozenset(), file_content_url)
                if response is None:
                    error = ErrorEvent(code="server_error", message=UNFINISHED, param=None, sequence_number=number)
                    yield sse(error.type, error)
                else:
                    kind = _FINAL.get(response.status, "response.failed")
                    yield sse(kind, ResponseEvent(type=kind, response=response, sequence_number=number))
                return
        if now - quiet_since >= keepalive:
            quiet_since = now
            yield b": keep-alive\n\n"
        await asyncio.sleep(POLL_SECONDS)


async def delete(request: Request) -> HttpResponse:
    response_id = path_param(request, "response_id")
    return json_response(await _service(request).delete(project_id(request), response_id))


async def cancel(request: Request) -> HttpResponse:
    response_id = path_param(request, "response_id")
    return json_response(await _service(request).cancel(project_id(request), response_id))


async def input_items(request: Request) -> HttpResponse:
    response_id = path_param(request, "response_id")
    params = parse_query(request, InputItemListParams)
    page = await _service(request).input_items(project_id(request), response_id, params, _include(request))
    return json_response(page)


def register(router: Router) -> None:
    tag = "Responses"
    one = "/responses/{response_id}"
    router.add(Endpoint("POST", "/responses", create, "Create a response", Response, body=ResponseCreate, tag=tag))
    router.add(Endpoint("GET", one, retrieve, "Retrieve a response", Response, query=IncludeParams, tag=tag))
    router.add(Endpoint("DELETE", one, delete, "Delete a response", ResponseDeleted, tag=tag))
    router.add(Endpoint("POST", one + "/cancel", cancel, "Cancel a background response", Response, tag=tag))
    router.add(
        Endpoint(
            "GET",
            one + "/input_items",
            input_items,
            "List a response's input items",
            InputItemList,
            query=InputItemListParams,
            tag=tag,
        )
    )
