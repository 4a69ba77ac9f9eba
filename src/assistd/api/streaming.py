"""Run events as Server-Sent Events, in the framing the SDKs parse (spec §6.1).

The run executes in its own task; the HTTP response only reads its events. A client that goes
away stops reading, not the run. Every stream ends with the run's final event (or `requires_action`),
or an `error` event, then `[DONE]`; a run whose thread is deleted under it ends `thread.run.cancelled`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel
from starlette.responses import StreamingResponse

from assistd import jsonio
from assistd.adapters.assistants import NO_USAGE, public_details, wire_usage
from assistd.protocol.events import EXECUTION_OVER, RUN_DELETED, RUN_END_EVENTS, StreamEvent
from assistd.protocol.runs import Run, RunStep


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

    async def next(self, keepalive: float) -> tuple[str, BaseModel | dict[str, Any]] | None:
        """The next event, or None after `keepalive` seconds without one. An event already queued is
        taken at once: no timer, and no task (asyncio.wait_for made one per event)."""
        if not self.queue.empty():
            return self.queue.get_nowait()
        try:
            async with asyncio.timeout(keepalive):
                return await self.queue.get()
        except TimeoutError:
            return None


def _error_event(run: BaseModel | dict[str, Any]) -> bytes:
    last_error = (run.model_dump() if isinstance(run, BaseModel) else run).get("last_error") or {}
    return _error(last_error.get("message", "The run failed."), last_error.get("code"))


def _error(message: str, code: str | None) -> bytes:
    error = {"message": message, "type": "server_error", "param": None, "code": code}
    # Both the low-level iterator and the SDK's high-level helpers raise on this hybrid shape (spec §6.1).
    return sse("error", {"error": error, **error})


# The executor returned without the run's final event (the server is shutting down, or something ended
# the run behind it): the stream still ends with something a client can act on.
UNFINISHED = "The run stopped streaming before it reached a final state; retrieve the run for its status."


def _deleted(run: Run) -> Run:
    """The run's last streamed state, closed: its thread was deleted while it ran, which cancels it (the
    run itself went with the thread)."""
    return run.model_copy(
        update={
            "status": "cancelled",
            "cancelled_at": int(time.time()),
            "expires_at": None,
            "required_action": None,
            "usage": run.usage or wire_usage(NO_USAGE),
        }
    )


async def _events(
    sink: QueueSink, prelude: list[tuple[str, BaseModel | dict[str, Any]]], keepalive: float
) -> AsyncIterator[bytes]:
    """The stream's bytes. Events queued together go out in one write (a busy server's tokens pile up
    between two turns of its stream: one send each cost a syscall and the ASGI stack per token)."""
    last_run: Run | None = None  # the run as the stream last showed it
    out: list[bytes] = []
    try:
        for event, data in prelude:
            if isinstance(data, Run):
                last_run = data
            out.append(sse(event, data))
        while True:
            if out and sink.queue.empty():
                yield b"".join(out)
                out.clear()
            found = await sink.next(keepalive)
            if found is None:
                yield b": keep-alive\n\n"
                continue
            event, data = found
            if event == RUN_DELETED and last_run is not None:
                out.append(sse("thread.run.cancelled", _deleted(last_run)))
                break
            if event in (EXECUTION_OVER, RUN_DELETED):
                out.append(_error(UNFINISHED, "server_error"))
                break
            if isinstance(data, Run):
                last_run = data
            out.append(sse(event, data))
            if event in RUN_END_EVENTS:
                if event == "thread.run.failed":
                    out.append(_error_event(data))
                break
        out.append(b"event: done\ndata: [DONE]\n\n")
        yield b"".join(out)
    finally:
        sink.closed = True


def event_stream(sink: QueueSink, prelude: list[StreamEvent], keepalive: float) -> StreamingResponse:
    """The response streaming a run: `prelude` (the request's own events), then the executor's."""
    opening: list[tuple[str, BaseModel | dict[str, Any]]] = [(event.event, event.data) for event in prelude]
    return StreamingResponse(
        _events(sink, opening, keepalive),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
