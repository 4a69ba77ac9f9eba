"""The model-call loop: call the model, stream its output, run server-side tools, call again.

It works on typed conversation items (engine/items.py, given by the `Recorder`), fitted into the
budget and rendered as the provider's request by engine/prompt.py; on typed tool calls
(tools/base.py), the provider's stream and the run's settings; and records its output through a
`Recorder` (engine/output.py); it knows nothing of the wire format a run is shown in. It ends with
an `Outcome`. A cancel or the run's expiry (both set `cancel`) interrupts whatever it waits for, a
hung model call included (engine/signals.py).

Tool calls from imperfect models: a call to a tool the run does not offer, or function arguments that
are not a JSON object even repaired (tools/arguments.py), is refused: it never reaches clients (a
function call's deltas are held until the model call ends and its arguments are checked), the model
reads the error as the call's result and is called again, up to `tool_call_retries` model calls in a
row; past that the run fails saying what the model did. Built-in tools read their own arguments; one
that cannot (file_search without queries) returns the error as its result, and counts the same way.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field

from assistd import ids
from assistd.engine.output import (
    Answered,
    Failed,
    NeedsAction,
    Outcome,
    PromptTooLong,
    Recorder,
    Stopped,
)
from assistd.engine.prompt import Prompt, PromptTooLarge, Window, fit, tool_output_budget
from assistd.engine.signals import Interrupted, InterruptibleStream, RunSignals
from assistd.engine.usage import add_usage
from assistd.providers import tokens
from assistd.providers.base import Chunk, ProviderError, TokenCounter, Usage
from assistd.providers.routing import Resolved
from assistd.tools import Toolbox
from assistd.tools.arguments import Checked, check
from assistd.tools.base import Json, RefusedCall, ToolCall, ToolContext, ToolFailed

MAX_MODEL_CALLS = 16
DEFAULT_TOOL_CALL_RETRIES = 2


@dataclass(frozen=True, slots=True)
class Settings:
    """What the loop needs of a run."""

    run_id: str
    expires_at: int | None
    context: ToolContext


@dataclass
class _Held:
    """A tool call held back while it streams: a function call's deltas go out once its arguments
    are complete and checked."""

    name: str = ""
    fragments: list[str] = field(default_factory=list)

    @property
    def arguments(self) -> str:
        return "".join(self.fragments)


@dataclass
class _ModelCall:
    """One model call's output as it streams in. `offered`: the names of the tools the model is shown."""

    offered: frozenset[str]
    text: list[str] = field(default_factory=list)
    calls: dict[int, ToolCall] = field(default_factory=dict)  # provider index → call, in the order shown
    held: dict[int, _Held] = field(default_factory=dict)  # provider index → a call not shown yet
    refused: list[RefusedCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None

    def made_output(self) -> bool:
        return bool(self.text or self.calls or self.held)

    def estimated_completion(self) -> int:
        """Tokens counted here when the backend reports no usage."""
        arguments = [c.arguments for c in self.calls.values()] + [h.arguments for h in self.held.values()]
        return tokens.count_text("".join(self.text)) + sum(tokens.count_text(a) for a in arguments)

    def used(self, prompt_tokens: int) -> Usage | None:
        """The call's usage: the backend's, else counted here when it produced anything."""
        if self.usage is not None:
            return self.usage
        return Usage(prompt_tokens, self.estimated_completion()) if self.made_output() else None


@dataclass
class _Refusals:
    """The model calls in a row whose tool calls were refused, each as (reason, tool name, error)."""

    limit: int
    streak: list[list[tuple[str, str, str]]] = field(default_factory=list)

    @property
    def attempt(self) -> int:
        """The number the next refused model call gets."""
        return len(self.streak) + 1

    def over(self, faults: list[tuple[str, str, str]]) -> bool:
        """Would one more model call with these faults be one too many?"""
        return bool(faults) and len(self.streak) + 1 > self.limit

    def add(self, faults: list[tuple[str, str, str]]) -> None:
        if faults:
            self.streak.append(faults)
        else:
            self.streak.clear()

    def failure(self, faults: list[tuple[str, str, str]], available: list[str]) -> str:
        """The run's last_error: what the model did, over the refused model calls in a row."""
        attempts = [*self.streak, faults]
        counts: dict[tuple[str, str], int] = {}
        last: dict[tuple[str, str], str] = {}
        for attempt in attempts:
            for key in dict.fromkeys((reason, name) for reason, name, _ in attempt):
                counts[key] = counts.get(key, 0) + 1
            for reason, name, error in attempt:
                last[(reason, name)] = error
        parts = []
        for (reason, name), n in counts.items():
            if reason == "unknown_tool":
                parts.append(f"called an unknown tool '{name}' {_times(n)}")
            else:
                parts.append(f"sent invalid arguments for '{name}' {_times(n)} (last: {last[(reason, name)]})")
        tools = ", ".join(available) or "none"
        shown = f" (available: {tools})" if any(reason == "unknown_tool" for reason, _ in counts) else ""
        return f"The model {'; '.join(parts)}{shown}."


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


class Loop:
    def __init__(
        self,
        toolbox: Toolbox,
        signals: RunSignals,
        counter: TokenCounter | None = None,
        tool_call_retries: int = DEFAULT_TOOL_CALL_RETRIES,
    ) -> None:
        self.toolbox = toolbox
        self.signals = signals
        self.counter = counter  # None: the route's (its backend's tokens)
        self.tool_call_retries = tool_call_retries

    async def run(
        self,
        settings: Settings,
        resolved: Resolved,
        recorder: Recorder,
        totals: dict[str, int],
        cancel: asyncio.Event,
    ) -> Outcome:
        """Advance the run until it answers, waits for tool outputs, or must end. `totals`: the run's
        usage counters, added to as calls are made."""
        schemas = [schema for tool in self.toolbox.all() for schema in await tool.schemas(settings.context)]
        available = [str(schema["function"]["name"]) for schema in schemas]
        refusals = _Refusals(self.tool_call_retries)
        for _ in range(MAX_MODEL_CALLS):
            if cancel.is_set():
                return Stopped(self.signals.stop_reason(settings.run_id))
            window = Window(
                resolved.model,
                resolved.provider.context_window,
                totals["prompt_tokens"],
                totals["completion_tokens"],
                schemas,
            )
            conversation = await recorder.conversation(tool_output_budget(window.context_window))
            try:
                prompt = await fit(conversation, window, self.counter or resolved.counter)
            except PromptTooLarge as exc:
                if exc.limit == "max_prompt_tokens":
                    return PromptTooLong()
                return Failed("invalid_prompt", str(exc))
            await recorder.begin_call()
            call = _ModelCall(frozenset(available))
            try:
                await self._call_model(settings, resolved, prompt, call, recorder, cancel)
                await self._check_calls(settings, call, recorder, available, refusals.attempt)
            except Interrupted:
                used = call.used(prompt.tokens)
                if used is not None:
                    add_usage(totals, used)
                return Stopped(self.signals.stop_reason(settings.run_id), partial=True, usage=used)
            except ProviderError as exc:
                used = call.used(prompt.tokens)
                if used is not None:
                    add_usage(totals, used)
                return Failed(exc.code, exc.message, partial=True, usage=used)
            usage = call.usage or Usage(prompt.tokens, call.estimated_completion())
            add_usage(totals, usage)
            calls = list(call.calls.values())
            if not calls and not call.refused:
                hit_limit = call.finish_reason == "length" and conversation.settings.max_completion_tokens is not None
                await recorder.answered(usage, hit_limit)
                return Answered(incomplete=hit_limit)
            faults: list[tuple[str, str, str]] = [(c.reason, c.name, c.error) for c in call.refused]
            if refusals.over(faults):
                return Failed("server_error", refusals.failure(faults, available), partial=True, usage=usage)
            if call.refused:
                await recorder.refuse(call.refused)  # kept with the step the run writes next
            failed = await self._run_tools(settings, calls, recorder, cancel)
            if failed is not None:
                return dataclasses.replace(failed, usage=usage)
            if cancel.is_set():  # during a tool: the step keeps what the tool did, and ends with the run
                return Stopped(self.signals.stop_reason(settings.run_id), partial=True, calls=calls, usage=usage)
            faults += [("invalid_arguments", c.type, str(c.private["error"])) for c in calls if c.private.get("error")]
            if refusals.over(faults):
                return Failed("server_error", refusals.failure(faults, available), partial=True, usage=usage)
            refusals.add(faults)
            functions = [c for c in calls if c.type == "function"]
            if not functions:
                await recorder.tools_ran(calls, usage)
                continue  # the model answers with the results (or the errors) in view
            return NeedsAction(calls, usage)
        return Failed("server_error", f"The run made more than {MAX_MODEL_CALLS} model calls.")

    async def _call_model(
        self,
        settings: Settings,
        resolved: Resolved,
        prompt: Prompt,
        call: _ModelCall,
        recorder: Recorder,
        cancel: asyncio.Event,
    ) -> None:
        request = dataclasses.replace(prompt.request, deadline=settings.expires_at)  # no retry waits past expiry
        # A cancel or the expiry timer (both set `cancel`) interrupts the call wherever it waits.
        stream: InterruptibleStream[Chunk] = InterruptibleStream(resolved.provider.complete(request), cancel)
        try:
            async for chunk in stream:
                if chunk.text:
                    call.text.append(chunk.text)
                    await recorder.text(chunk.text)
                for delta in chunk.tool_calls:
                    await self._on_tool_delta(settings, call, recorder, delta.index, delta.name, delta.arguments)
                if chunk.finish_reason:
                    call.finish_reason = chunk.finish_reason
                if chunk.usage:
                    call.usage = chunk.usage
            await recorder.end_text()
        finally:
            await stream.aclose()

    async def _on_tool_delta(
        self, settings: Settings, call: _ModelCall, recorder: Recorder, index: int, name: str | None, args: str
    ) -> None:
        tool_call = call.calls.get(index)
        if tool_call is not None:  # a built-in tool's call, shown as it streams
            deltas = self.toolbox.by_type(tool_call.type).feed(tool_call, name, args)
            await recorder.tool_deltas(tool_call, list(call.calls).index(index), deltas)
            return
        held = call.held.setdefault(index, _Held())
        if name and not held.name:
            held.name = name
        held.fragments.append(args)
        tool = self.toolbox.builtin.get(held.name)
        if tool is not None and held.name in call.offered:
            del call.held[index]
            await self._show(
                settings, call, recorder, index, tool.begin(self._new_id(), held.name, held.arguments, settings.context)
            )

    async def _check_calls(
        self, settings: Settings, call: _ModelCall, recorder: Recorder, available: list[str], attempt: int
    ) -> None:
        """The model call ended: its held calls are shown, or refused (an unknown tool, arguments that
        are not a JSON object even repaired)."""
        for index, held in sorted(call.held.items()):
            call_id, name, raw = self._new_id(), held.name, held.arguments
            if name not in call.offered:
                tools = ", ".join(available) or "none"
                error = (
                    f"Error: no tool named '{name}'; available: {tools}. Call one of these, or answer without a tool."
                )
                call.refused.append(RefusedCall(call_id, name, _as_object(raw), error, "unknown_tool", attempt))
                continue
            checked = check(raw)
            if not isinstance(checked, Checked):
                error = f"Error: {checked.reason}. You sent: {raw[:500]}. Call '{name}' again with a JSON object."
                call.refused.append(RefusedCall(call_id, name, "{}", error, "invalid_arguments", attempt))
                continue
            fragments = ["", checked.text] if checked.repaired else held.fragments  # opened empty, as streamed
            function = self.toolbox.function
            tool_call, deltas = function.begin(call_id, name, fragments[0], settings.context)
            for fragment in fragments[1:]:
                deltas += function.feed(tool_call, None, fragment)
            await self._show(settings, call, recorder, index, (tool_call, deltas))
        call.held.clear()

    async def _show(
        self, settings: Settings, call: _ModelCall, recorder: Recorder, index: int, begun: tuple[ToolCall, list[Json]]
    ) -> None:
        tool_call, deltas = begun
        call.calls[index] = tool_call
        await recorder.tool_deltas(tool_call, list(call.calls).index(index), deltas)

    @staticmethod
    def _new_id() -> str:
        return ids.new_id(ids.CALL)  # ours: upstream ids vary by backend and are never shown to clients

    async def _run_tools(
        self, settings: Settings, calls: list[ToolCall], recorder: Recorder, cancel: asyncio.Event
    ) -> Failed | None:
        """Run the server-side tools' calls, tool by tool; a tool that fails ends the run."""

        async def delta(tool_call: ToolCall, body: Json) -> None:
            position = next(i for i, c in enumerate(calls) if c is tool_call)
            await recorder.tool_deltas(tool_call, position, [body])

        for tool in self.toolbox.builtin.values():
            mine = [c for c in calls if c.type == tool.name]
            if not mine:
                continue
            try:
                await tool.run(mine, settings.context, delta, cancel)
            except ToolFailed as exc:
                return Failed(exc.code, str(exc), partial=True)
        return None


def _as_object(raw: str) -> str:
    """Arguments replayed to the model as it wrote them when they are a JSON object, else `{}` (some
    backends parse the arguments of the calls they are shown); the error text quotes what it sent."""
    checked = check(raw)
    return checked.text if isinstance(checked, Checked) else "{}"
