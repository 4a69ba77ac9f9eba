"""Where the engine's events become the Assistants stream: `AssistantsStream` is the engine's
`Emitter` for a run shown as `thread.*` events, and carries the wire sink the run's output goes to.

Non-streaming runs use a `NullSink`; streaming requests give an api/streaming.py `QueueSink`.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel

from assistd.adapters.assistants import to_message, to_run, to_step
from assistd.engine.events import (
    Emitter,
    ExecutionOver,
    LifecycleEvent,
    MessageClosed,
    RunChanged,
    RunDeleted,
    StepClosed,
)
from assistd.protocol import events as wire
from assistd.protocol.runs import Run


class EventSink(Protocol):
    async def emit(self, event: str, data: BaseModel | dict[str, Any]) -> None: ...


class NullSink:
    async def emit(self, event: str, data: BaseModel | dict[str, Any]) -> None:
        return None


class AssistantsStream:
    """Maps engine events to `thread.*` events on `sink`, noting whether the run's stream-ending event
    went by, and the thread of the run it showed (none: the executor had not started the run)."""

    def __init__(self, sink: EventSink | None = None) -> None:
        self.sink: EventSink = sink or NullSink()
        self.ended = False
        self.thread_id: str | None = None

    async def wire(self, event: str, data: BaseModel | dict[str, Any]) -> None:
        if event in wire.RUN_END_EVENTS:
            self.ended = True
        if isinstance(data, Run):
            self.thread_id = data.thread_id
        await self.sink.emit(event, data)

    async def emit(self, event: LifecycleEvent) -> None:
        match event:
            case RunChanged(run=run):
                await self.wire(f"thread.run.{run.status}", to_run(run))
            case StepClosed(step=step):
                await self.wire(f"thread.run.step.{step.status}", to_step(step))
            case MessageClosed(message=message):
                await self.wire("thread.message.incomplete", to_message(message))
            case RunDeleted(run_id=run_id):
                await self.wire(wire.RUN_DELETED, wire.RunDeleted(run_id=run_id))
            case ExecutionOver():
                await self.wire(wire.EXECUTION_OVER, {})


def assistants_stream(emitter: Emitter) -> AssistantsStream:
    """The stream a run's output goes to: the emitter itself when it is one (a streaming request)."""
    return emitter if isinstance(emitter, AssistantsStream) else AssistantsStream()
