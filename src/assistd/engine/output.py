"""The boundary between the model-call loop and the protocol a run is shown in.

The loop (engine/loop.py) knows model calls, tool calls and token budgets. What a protocol makes of
them — the conversation the model reads (as items, engine/items.py), the messages and steps a run's
output is stored as, the
stream events clients see — is a `Recorder`, given by an adapter (adapters/assistants_run.py for the
Assistants API; the Responses API adds its own in Step 12). The loop ends with a typed `Outcome`;
engine/executor.py turns it into a lifecycle transition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from assistd.engine.events import Emitter
from assistd.engine.items import Conversation
from assistd.engine.lifecycle import Parts, Shown, StopReason
from assistd.providers.base import Usage
from assistd.stores.runs import Json, RunRecord
from assistd.tools.base import RefusedCall, ToolCall


class Recorder(Protocol):
    """A run's output as one protocol records and shows it. One model call at a time: `begin_call`
    starts a fresh message / tool step."""

    @property
    def waits_for_outputs(self) -> bool:
        """True: function calls pause the run (`requires_action`) until the client submits their
        outputs (Assistants). False: the run completes with the calls, whose outputs a client sends in
        a new run (Responses: `keep_calls` then closes the calls' step)."""
        ...

    async def conversation(self, tool_output_tokens: int) -> Conversation:
        """The conversation so far, as items (tool outputs replayed within `tool_output_tokens`)."""
        ...

    async def begin_call(self) -> None: ...

    async def text(self, fragment: str) -> None:
        """Streamed answer text."""
        ...

    async def end_text(self) -> None:
        """The model call's text is complete (text held back, such as a citation marker, goes out)."""
        ...

    async def tool_deltas(self, call: ToolCall, position: int, deltas: list[Json]) -> None:
        """Public deltas of the model call's `position`-th tool call (the first opens the tool step)."""
        ...

    async def answered(self, usage: Usage, incomplete: bool) -> None:
        """The call answered in text: the message and its step complete (incomplete at the token limit),
        written with the run's end (`answer`)."""
        ...

    def answer(self) -> tuple[Parts, Shown]:
        """What `answered` completes, written in the transaction that ends the run, and the events that
        show it (sent once that commits, before the run's own): one transaction for the run's last step."""
        ...

    async def tools_ran(self, calls: list[ToolCall], usage: Usage) -> None:
        """Server-side tools ran: text before them and the tool step complete. `calls` is empty when
        every call of the model call was refused: its text completes, with the call's usage."""
        ...

    async def refuse(self, calls: list[RefusedCall]) -> None:
        """Calls the model made that are not run (an unknown tool, unusable arguments): kept privately
        with the step this model call or the next writes, so the model reads them, and their errors,
        before that step's own output. Clients never see them."""
        ...

    async def before_action(self) -> None:
        """The run is about to wait for the client's tool outputs: text before the calls completes."""
        ...

    def required_action(self, calls: list[ToolCall]) -> Json:
        """What the client is asked to do with the calls it must run."""
        ...

    def keep_calls(self, calls: list[ToolCall], usage: Usage) -> Parts:
        """Stores the calls on their step (in the transaction that ends or pauses the run)."""
        ...

    def partial(self, usage: Usage | None = None) -> Parts:
        """Stores the text streamed so far, and `usage` (the interrupted model call's) on the step it
        opened (in the transaction that ends the run)."""
        ...


class RunAdapter(Protocol):
    """A protocol's side of executing runs: the recorder of each run it shows."""

    def recorder(self, run: RunRecord, emitter: Emitter) -> Recorder: ...


@dataclass(frozen=True, slots=True)
class Answered:
    incomplete: bool  # stopped at max_completion_tokens


@dataclass(frozen=True, slots=True)
class PromptTooLong:
    """The conversation no longer fits in max_prompt_tokens."""


@dataclass(frozen=True, slots=True)
class NeedsAction:
    calls: list[ToolCall]  # every call of the model call (the client answers the function calls)
    usage: Usage


@dataclass(frozen=True, slots=True)
class Stopped:
    reason: StopReason
    partial: bool = False
    calls: list[ToolCall] | None = None  # the calls the tools worked on when the stop came
    usage: Usage | None = None  # the usage of the model call it interrupted (counted in the run's totals)


@dataclass(frozen=True, slots=True)
class Failed:
    """The run fails. Its usage is the run's totals, the failed model call's included (`usage`: that
    call's, kept on the step it opened)."""

    code: str
    message: str
    partial: bool = False
    usage: Usage | None = None


Outcome = Answered | PromptTooLong | NeedsAction | Stopped | Failed
