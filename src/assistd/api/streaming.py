"""Run events as Server-Sent Events, in the framing the SDKs parse (spec §6.1).

The run executes in its own task; the HTTP response only reads its events. A client that goes
away stops reading, not the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel
from starlette.responses import StreamingResponse

from assistd import jsonio
from assistd.protocol.runs import RunStep
from assistd.runs.events import EXECUTION_OVER
from assistd.runs.store import public_details

END_EVENTS = frozenset(
    {
        "thread.run.completed",
        "thread.run.failed",
        "thread.run.cancelled",
        "thread.run.expired",
        "thread.run.incomplete",
        "thread.run.requires_action",
    }
)


def sse(event: str, data: BaseModel | dict[str, Any]) -> bytes:
    payload = data.__pydantic_serializer__.to_json(data) if isinstance(data, BaseModel) else jsonio.dumps(data)
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


class QueueSink:
    """Collects a run's events for one streaming response. File-search result content goes out only
    when the run was created with `include[]` asking for it."""

    def __init__(self, include_content: bool = False) -> None:
        self.queue: asyncio.Queue[tuple[str, BaseModel | dict[str, Any]]] = asyncio.Queue()
        self.closed = False
        self.include_content = include_content

    async def emit(self, event: str, data: BaseModel | dict[str, Any]) -> None:
        if self.closed:
            return
        if isinstance(data, RunStep) and not self.include_content:
            data = data.model_copy(update={"step_details": public_details(data.step_details, False)})
        self.queue.put_nowait((event, data))


def _error_event(run: BaseModel | dict[str, Any]) -> bytes:
    last_error = (run.model_dump() if isinstance(run, BaseModel) else run).get("last_error") or {}
    error = {
        "message": last_error.get("message", "The run failed."),
        "type": "server_error",
        "param": None,
        "code": last_error.get("code"),
    }
    # Both the low-level iterator and the SDK's high-level helpers raise on this hybrid shape (spec §6.1).
    return sse("error", {"error": error, **error})


async def _events(
    sink: QueueSink, prelude: list[tuple[str, BaseModel | dict[str, Any]]], keepalive: float
) -> AsyncIterator[bytes]:
    try:
        for event, data in prelude:
            yield sse(event, data)
        while True:
            try:
                event, data = await asyncio.wait_for(sink.queue.get(), keepalive)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if event == EXECUTION_OVER:
                break
            yield sse(event, data)
            if event in END_EVENTS:
                if event == "thread.run.failed":
                    yield _error_event(data)
                break
        yield b"event: done\ndata: [DONE]\n\n"
    finally:
        sink.closed = True


def event_stream(
    sink: QueueSink, prelude: list[tuple[str, BaseModel | dict[str, Any]]], keepalive: float
) -> StreamingResponse:
    return StreamingResponse(
        _events(sink, prelude, keepalive),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
