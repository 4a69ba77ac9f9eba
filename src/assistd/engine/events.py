"""What the engine tells the protocol around it, as typed events (frozen dataclasses, one union).

The engine never builds wire events: an adapter (adapters/assistants.py for the `thread.*` stream)
receives these through an `Emitter` and turns them into its own protocol's events. Non-streaming
runs use `NullEmitter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from assistd.stores.messages import MessageRecord
from assistd.stores.runs import RunRecord, StepRecord


@dataclass(frozen=True, slots=True)
class RunChanged:
    """The run reached `run.status` (a lifecycle transition committed)."""

    run: RunRecord


@dataclass(frozen=True, slots=True)
class StepClosed:
    """A step the run left open ended with it (cancelled, failed, expired)."""

    step: StepRecord


@dataclass(frozen=True, slots=True)
class MessageClosed:
    """A message the run left open became incomplete with it."""

    message: MessageRecord


@dataclass(frozen=True, slots=True)
class RunDeleted:
    """The run's rows are gone (its thread was deleted while it ran)."""

    run_id: str


@dataclass(frozen=True, slots=True)
class ExecutionOver:
    """The executor returned, whatever it emitted before (a stream that saw no final event ends)."""


LifecycleEvent = RunChanged | StepClosed | MessageClosed | RunDeleted | ExecutionOver


class Emitter(Protocol):
    async def emit(self, event: LifecycleEvent) -> None: ...


class NullEmitter:
    async def emit(self, event: LifecycleEvent) -> None:
        return None
