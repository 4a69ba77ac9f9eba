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
from assistd.protocol.events import MessageEvent, RunEvent, StepEvent, StreamEvent, ThreadEvent
from assistd.protocol.runs import Run, RunStep
from assistd.protocol.threads import Thread


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
        # Nobody sees this stream's events (a run nobody streams, nor reads events of itself, as a subclass
        # that overrides `send` does): a recorder need not build them (adapters/assistants_run.py).
        self.quiet = sink is None and type(self).send is AssistantsStream.send

    async def send(self, event: StreamEvent) -> None:
        if event.event in wire.RUN_END_EVENTS:
            self.ended = True
        if isinstance(event, RunEvent):
            self.thread_id = event.data.thread_id
        await self.sink.emit(event.event, event.data)

    async def emit(self, event: LifecycleEvent) -> None:
        match event:
            case RunChanged(run=run):
                await self.send(RunEvent.of(to_run(run)))
            case StepClosed(step=step):
                await self.send(StepEvent.of(to_step(step)))
            case MessageClosed(message=message):
                await self.send(MessageEvent(event="thread.message.incomplete", data=to_message(message)))
            case RunDeleted(run_id=run_id):
                await self.sink.emit(wire.RUN_DELETED, wire.RunDeleted(run_id=run_id))
            case ExecutionOver():
                await self.sink.emit(wire.EXECUTION_OVER, {})


def assistants_stream(emitter: Emitter) -> AssistantsStream:
    """The stream a run's output goes to: the emitter itself when it is one (a streaming request)."""
    return emitter if isinstance(emitter, AssistantsStream) else AssistantsStream()


def run_opened(run: Run, thread: Thread | None = None) -> list[StreamEvent]:
    """A new run's first events (a stream starts with them; the executor's follow)."""
    opened: list[StreamEvent] = [ThreadEvent(data=thread)] if thread is not None else []
    return [*opened, RunEvent(event="thread.run.created", data=run), RunEvent(event="thread.run.queued", data=run)]


def run_resumed(run: Run, step: RunStep | None) -> list[StreamEvent]:
    """A run's first events once its tool outputs are in: the step they completed, the run queued again."""
    completed: list[StreamEvent] = [StepEvent(event="thread.run.step.completed", data=step)] if step else []
    return [*completed, RunEvent(event="thread.run.queued", data=run)]
