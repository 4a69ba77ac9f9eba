"""The one protocol every tool implements, and the typed tool call the engine passes around.

A tool gives: the schema shown to the model (`schema`), what its streamed arguments become for
clients (`begin`, `feed`: public deltas), `run` (server-side tools; the function tool is run by the
client), the text fed back to the model (`replay`), and the step details (`ToolCall.public`).

A call's private state (the raw arguments, file_search's queries, the files code wrote) lives in
`ToolCall.private` and is stored beside the public calls (`"private"` in the step's details), which
the wire mapping never emits. Rows written before this layout kept it inline as `_arguments`,
`_queries`, `_files` keys: `calls_from_details` still reads them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from assistd.stores.runs import StepRecord

Json = dict[str, Any]
# Streams a public delta of a call's details (its index among the model call's tool calls is added).
DeltaSink = Callable[["ToolCall", Json], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Excerpt:
    """One piece of a tool's output a budget may shorten (its `text`; the `heading`, such as a citation
    marker, stays whole) or leave out: a file_search result."""

    heading: str
    text: str


def excerpts_text(excerpts: tuple[Excerpt, ...]) -> str:
    """What the model reads of a tool output made of excerpts: each under its heading, best first."""
    return "\n\n".join(f"{e.heading}\n{e.text}" if e.heading else e.text for e in excerpts)


@dataclass(slots=True)
class ToolCall:
    """One call the model made: `details` is what clients see under `type`; `private` never leaves."""

    id: str
    type: str
    details: Json
    private: Json = field(default_factory=dict)

    @property
    def arguments(self) -> str:
        """The raw arguments the model streamed (for a function call: its public `arguments`)."""
        if self.type == "function":
            return str(self.details["arguments"])
        return str(self.private.get("arguments", ""))

    def public(self) -> Json:
        return {"id": self.id, "type": self.type, self.type: self.details}

    @classmethod
    def from_stored(cls, call: Json, private: Json | None = None) -> ToolCall:
        legacy = {key[1:]: value for key, value in call.items() if key.startswith("_")}
        return cls(str(call["id"]), str(call["type"]), dict(call[call["type"]]), {**legacy, **(private or {})})


@dataclass(frozen=True, slots=True)
class RefusedCall:
    """A call the model made that was not run: an unknown tool, or arguments that are not a JSON object
    even repaired. The model reads `error` as its result and may call again; clients never see it
    (it is kept in the private part of a step's details, under `"refused"`). `attempt`: the run's
    model call that made it (1 for the first refused model call in a row)."""

    id: str
    name: str
    arguments: str
    error: str
    reason: Literal["unknown_tool", "invalid_arguments"]
    attempt: int = 1

    def stored(self) -> Json:
        return {
            "id": self.id,
            "name": self.name,
            "arguments": self.arguments,
            "error": self.error,
            "reason": self.reason,
            "attempt": self.attempt,
        }

    @classmethod
    def from_stored(cls, row: Json) -> RefusedCall:
        reason: Literal["unknown_tool", "invalid_arguments"] = (
            "unknown_tool" if row.get("reason") == "unknown_tool" else "invalid_arguments"
        )
        return cls(
            str(row["id"]), str(row["name"]), str(row["arguments"]), str(row["error"]), reason, int(row["attempt"])
        )


def stored_details(calls: Sequence[ToolCall], refused: Sequence[RefusedCall] = ()) -> Json:
    """A tool_calls step's details as stored: the public calls, and their private state beside them
    (with the refused calls replayed to the model before them)."""
    details: Json = {"type": "tool_calls", "tool_calls": [call.public() for call in calls]}
    private: Json = {call.id: call.private for call in calls if call.private}
    if refused:
        private[REFUSED] = [call.stored() for call in refused]
    if private:
        details["private"] = private
    return details


REFUSED = "refused"  # the key of a step's refused calls in its private details (never a call id)


def refused_in(details: Json) -> list[RefusedCall]:
    """The refused calls a step keeps privately (the model read them before the step's own output)."""
    return [RefusedCall.from_stored(row) for row in (details.get("private") or {}).get(REFUSED) or []]


def calls_from_details(details: Json) -> list[ToolCall]:
    private = details.get("private") or {}
    return [ToolCall.from_stored(call, private.get(call["id"])) for call in details.get("tool_calls") or []]


def run_calls(steps: Sequence[StepRecord], kind: str) -> list[ToolCall]:
    """The run's calls of one type, in the order they were made."""
    return [
        call
        for step in steps
        if step.type == "tool_calls"
        for call in calls_from_details(step.step_details)
        if call.type == kind
    ]


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a tool knows of the run it serves."""

    run_id: str
    project_id: str
    thread_id: str
    assistant_id: str
    tools: list[Json]  # the run's tools, as configured (options such as file_search's ranking)


class ToolFailed(Exception):
    """The run must fail: `code` is its last_error code, the message its last_error message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Tool(Protocol):
    name: str
    client_side: bool  # True: the client runs the calls (the run waits in requires_action)

    async def schemas(self, context: ToolContext) -> list[Json]:
        """The functions shown to the model for this run (none when the run does not have the tool)."""
        ...

    def begin(self, call_id: str, name: str, arguments: str, context: ToolContext) -> tuple[ToolCall, list[Json]]:
        """A new call from the model's first argument fragment, and the deltas that announce it."""
        ...

    def feed(self, call: ToolCall, name: str | None, arguments: str) -> list[Json]:
        """Another argument fragment: the public deltas it makes."""
        ...

    async def run(self, calls: list[ToolCall], context: ToolContext, delta: DeltaSink, cancel: asyncio.Event) -> None:
        """Fill the calls' results (server-side tools). Raises ToolFailed when the run must fail."""
        ...

    def replay(self, call: ToolCall, number: int, budget: int) -> tuple[str, str | tuple[Excerpt, ...]] | None:
        """The call as the model made it and the result it reads: (arguments, output text, or the excerpts
        it is made of, which a budget may shorten or leave out: engine/prompt.py); None while the result
        is not in. `number`: the call's position among the run's calls of this tool; `budget`: tokens the
        output may take at most."""
        ...
