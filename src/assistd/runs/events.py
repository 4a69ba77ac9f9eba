"""What the executor emits as it goes: the spec's `thread.*` stream events (§6.2).

Non-streaming runs use `NullSink`; streaming requests serialise the events to SSE.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel

# Not a wire event: tells a stream that the executor returned (whatever it emitted before).
EXECUTION_OVER = "assistd.execution_over"


class EventSink(Protocol):
    async def emit(self, event: str, data: BaseModel | dict[str, Any]) -> None: ...


class NullSink:
    async def emit(self, event: str, data: BaseModel | dict[str, Any]) -> None:
        return None
