"""The `thread.*` stream events (spec §6.2) as ONE discriminated union: each event is its name and
its data model; the deltas are models too. api/streaming.py serialises them to SSE.

Deltas carry only the keys they were built with (a text delta's `annotations` appears in the first
delta of a message and with a citation, not in the others), which is what the SDKs accumulate.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from assistd.protocol.messages import Message
from assistd.protocol.runs import Run, RunStep
from assistd.protocol.threads import Thread

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


class Delta(BaseModel):
    """A delta: an optional key (default None) is serialised only when it was given, null included.

    A delta is serialised by one plain serializer for the whole tree (`given_only`), not by pydantic
    calling back into Python for every nested delta: a token's `thread.message.delta` took 25 µs that
    way, 6 µs this way. The values below a delta are JSON already (strings, numbers, dicts of them)."""

    model_config = ConfigDict(extra="forbid")

    @model_serializer(mode="plain")
    def _given_only(self) -> dict[str, Any]:
        return given_only(self)


# Per delta class: its fields in order, and whether each is always written (a default other than None).
_FIELDS: dict[type[Delta], tuple[tuple[str, bool], ...]] = {}


def given_only(delta: Delta) -> dict[str, Any]:
    """The delta as plain JSON values, nested deltas included, with the keys `Delta` says."""
    kind = type(delta)
    fields = _FIELDS.get(kind)
    if fields is None:
        fields = _FIELDS[kind] = tuple((name, info.default is not None) for name, info in kind.model_fields.items())
    given = delta.__pydantic_fields_set__
    values = delta.__dict__
    found: dict[str, Any] = {}
    for name, always in fields:
        if always or name in given:
            value = values[name]
            if isinstance(value, Delta):
                value = given_only(value)
            elif type(value) is list:
                value = [given_only(item) if isinstance(item, Delta) else item for item in value]
            found[name] = value
    return found


# --- message deltas -----------------------------------------------------------------------------


class TextDelta(Delta):
    value: str
    annotations: list[dict[str, Any]] | None = None


class TextPartDelta(Delta):
    index: int
    type: Literal["text"] = "text"
    text: TextDelta


class ImageFileRef(Delta):
    file_id: str


class ImagePartDelta(Delta):
    index: int
    type: Literal["image_file"] = "image_file"
    image_file: ImageFileRef


class MessageContentDelta(Delta):
    content: list[Annotated[TextPartDelta | ImagePartDelta, Field(discriminator="type")]]


class MessageDelta(Delta):
    id: str
    object: Literal["thread.message.delta"] = "thread.message.delta"
    delta: MessageContentDelta


# --- run step deltas ----------------------------------------------------------------------------


class FunctionDelta(Delta):
    name: str | None = None
    arguments: str | None = None
    output: str | None = None


class FunctionCallDelta(Delta):
    index: int
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionDelta


class FileSearchCallDelta(Delta):
    index: int
    id: str | None = None
    type: Literal["file_search"] = "file_search"
    file_search: dict[str, Any]


class CodeInterpreterDelta(Delta):
    input: str | None = None
    outputs: list[dict[str, Any]] | None = None


class CodeInterpreterCallDelta(Delta):
    index: int
    id: str | None = None
    type: Literal["code_interpreter"] = "code_interpreter"
    code_interpreter: CodeInterpreterDelta


ToolCallDelta = Annotated[
    FunctionCallDelta | FileSearchCallDelta | CodeInterpreterCallDelta, Field(discriminator="type")
]


class ToolCallsDelta(Delta):
    type: Literal["tool_calls"] = "tool_calls"
    tool_calls: list[ToolCallDelta]


class StepDetailsDelta(Delta):
    step_details: ToolCallsDelta


class RunStepDelta(Delta):
    id: str
    object: Literal["thread.run.step.delta"] = "thread.run.step.delta"
    delta: StepDetailsDelta


# --- the events ---------------------------------------------------------------------------------

RunEventName = Literal[
    "thread.run.created",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.requires_action",
    "thread.run.cancelling",
    "thread.run.cancelled",
    "thread.run.failed",
    "thread.run.completed",
    "thread.run.incomplete",
    "thread.run.expired",
]
StepEventName = Literal[
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.run.step.completed",
    "thread.run.step.failed",
    "thread.run.step.cancelled",
    "thread.run.step.expired",
]
MessageEventName = Literal[
    "thread.message.created",
    "thread.message.in_progress",
    "thread.message.completed",
    "thread.message.incomplete",
]

# A run's, a step's status -> the event that announces it.
RUN_STATUS_EVENTS: dict[str, RunEventName] = {
    "queued": "thread.run.queued",
    "in_progress": "thread.run.in_progress",
    "requires_action": "thread.run.requires_action",
    "cancelling": "thread.run.cancelling",
    "cancelled": "thread.run.cancelled",
    "failed": "thread.run.failed",
    "completed": "thread.run.completed",
    "incomplete": "thread.run.incomplete",
    "expired": "thread.run.expired",
}
STEP_STATUS_EVENTS: dict[str, StepEventName] = {
    "in_progress": "thread.run.step.in_progress",
    "completed": "thread.run.step.completed",
    "failed": "thread.run.step.failed",
    "cancelled": "thread.run.step.cancelled",
    "expired": "thread.run.step.expired",
}


class ThreadEvent(BaseModel):
    event: Literal["thread.created"] = "thread.created"
    data: Thread


class RunEvent(BaseModel):
    event: RunEventName
    data: Run

    @classmethod
    def of(cls, run: Run) -> RunEvent:
        """The event of the status the run is in."""
        return cls(event=RUN_STATUS_EVENTS[run.status], data=run)


class StepEvent(BaseModel):
    event: StepEventName
    data: RunStep

    @classmethod
    def of(cls, step: RunStep) -> StepEvent:
        return cls(event=STEP_STATUS_EVENTS[step.status], data=step)


class StepDeltaEvent(BaseModel):
    event: Literal["thread.run.step.delta"] = "thread.run.step.delta"
    data: RunStepDelta


class MessageEvent(BaseModel):
    event: MessageEventName
    data: Message


class MessageDeltaEvent(BaseModel):
    event: Literal["thread.message.delta"] = "thread.message.delta"
    data: MessageDelta


StreamEvent = Annotated[
    ThreadEvent | RunEvent | StepEvent | StepDeltaEvent | MessageEvent | MessageDeltaEvent,
    Field(discriminator="event"),
]
