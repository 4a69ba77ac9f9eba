"""What the executor emits as it goes: the spec's `thread.*` stream events (§6.2).

Non-streaming runs use `NullSink`; streaming requests serialise the events to SSE.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel

from assistd.protocol.runs import Run

# Not a wire event: tells a stream that the executor returned (whatever it emitted before).
EXECUTION_OVER = "assistd.execution_over"
# Not a wire event: the run's rows are gone (its thread was deleted while it ran); the stream closes
# it with the last state it showed, as cancelled.
RUN_DELETED = "assistd.run_deleted"

# The events after which a run's stream ends: a final state, or a wait for tool outputs.
RUN_END_EVENTS = frozenset(
    {
        "thread.run.completed",
        "thread.run.failed",
        "thread.run.cancelled",
        "thread.run.expired",
        "thread.run.incomplete",
        "thread.run.requires_action",
    }
)


class RunDeleted(BaseModel):
    run_id: str


class EventSink(Protocol):
    async def emit(self, event: str, data: BaseModel | dict[str, Any]) -> None: ...


class EndWatch:
    """Passes events on to `sink`, noting whether the run's stream-ending event went by, and the
    thread of the run it showed (none: the executor had not started the run)."""

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink
        self.ended = False
        self.thread_id: str | None = None

    async def emit(self, event: str, data: BaseModel | dict[str, Any]) -> None:
        if event in RUN_END_EVENTS:
            self.ended = True
        if isinstance(data, Run):
            self.thread_id = data.thread_id
        await self.sink.emit(event, data)


class NullSink:
    async def emit(self, event: str, data: BaseModel | dict[str, Any]) -> None:
        return None
