"""A background response's stream events, kept in the database (docs/responses.md "Resuming a stream").

`KeptEvents` is the `EventSink` a background response's `ResponsesStream` writes to: each
`response.*` event goes to the `response_events` table under its `sequence_number`, so
`GET /v1/responses/{id}?stream=true&starting_after=N` can replay them, then follow the new ones, on any
replica. Text and argument deltas are written in batches (at the latest when `FLUSH_SECONDS` passed,
when `FLUSH_EVENTS` are waiting, or with the next event that is not a delta); every other event is
written at once. `Tee` sends events to a live client's queue and to the kept events both.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel

from assistd.adapters.stream import EventSink
from assistd.db.database import Database
from assistd.protocol.events import RUN_DELETED
from assistd.protocol.responses import END_EVENTS
from assistd.stores import responses as store
from assistd.stores.responses import StoredEvent

FLUSH_SECONDS = 0.1
FLUSH_EVENTS = 64
_DELTAS = frozenset({"response.output_text.delta", "response.function_call_arguments.delta"})


def kept(event: str, data: BaseModel) -> StoredEvent:
    """The event as the database keeps it: its JSON as sent."""
    shown = json.loads(data.__pydantic_serializer__.to_json(data))
    return StoredEvent(int(shown["sequence_number"]), event, shown)


class KeptEvents:
    """Writes a response's `response.*` events (those with a `sequence_number`) to the database."""

    def __init__(self, db: Database, response_id: str) -> None:
        self.db = db
        self.response_id = response_id
        self.waiting: list[StoredEvent] = []
        self.flushed_at = time.monotonic()

    async def emit(self, event: str, data: BaseModel | dict[str, Any]) -> None:
        if event == RUN_DELETED:  # its thread was deleted, the kept events with it: write no more
            self.waiting = []
            return
        if not isinstance(data, BaseModel) or not isinstance(getattr(data, "sequence_number", None), int):
            await self.flush()  # the engine's own marker (execution over): nothing to keep
            return
        self.waiting.append(kept(event, data))
        late = time.monotonic() - self.flushed_at >= FLUSH_SECONDS
        if event not in _DELTAS or event in END_EVENTS or late or len(self.waiting) >= FLUSH_EVENTS:
            await self.flush()

    async def flush(self) -> None:
        self.flushed_at = time.monotonic()
        if not self.waiting:
            return
        events, self.waiting = self.waiting, []
        async with self.db.write() as conn:
            await store.add_events(conn, self.response_id, events)


class Tee:
    """Sends each event to every sink, in order."""

    def __init__(self, *sinks: EventSink) -> None:
        self.sinks = sinks

    async def emit(self, event: str, data: BaseModel | dict[str, Any]) -> None:
        for sink in self.sinks:
            await sink.emit(event, data)
