"""The model-call loop: call the model, stream its output, run server-side tools, call again.

It works on typed conversation items (engine/items.py, given by the `Recorder`), fitted into the
budget and rendered as the provider's request by engine/prompt.py; on typed tool calls
(tools/base.py), the provider's stream and the run's settings; and records its output through a
`Recorder` (engine/output.py); it knows nothing of the wire format a run is shown in. It ends with
an `Outcome`. A cancel or the run's expiry (both set `cancel`) interrupts whatever it waits for, a
hung model call included (engine/signals.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field

import orjson

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
from assistd.tools.base import Json, ToolCall, ToolContext, ToolFailed
from assistd.tools.function import offered

MAX_MODEL_CALLS = 16


@dataclass(frozen=True, slots=True)
class Settings:
    """What the loop needs of a run."""

    run_id: str
    expires_at: int | None
    context: ToolContext


@dataclass
class _ModelCall:
    """One model call's output as it streams in."""

    text: list[str] = field(default_factory=list)
    calls: dict[int, ToolCall] = field(default_factory=dict)  # provider index → call, in order made
    finish_reason: str | None = None
    usage: Usage | None = None

    def estimated_completion(self) -> int:
        """Tokens counted here when the backend reports no usage."""
        return tokens.count_text("".join(self.text)) + sum(tokens.count_text(c.arguments) for c in self.calls.values())


class Loop:
    def __init__(self, toolbox: Toolbox, signals: RunSignals, counter: TokenCounter | None = None) -> None:
        self.toolbox = toolbox
        self.signals = signals
        self.counter = counter  # None: the route's (its backend's tokens)

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
                return Failed("invalid_prompt", str(exc), with_usage=True)
            await recorder.begin_call()
            call = _ModelCall()
            try:
                await self._call_model(settings, resolved, prompt, call, recorder, cancel)
            except Interrupted:
                return Stopped(self.signals.stop_reason(settings.run_id), partial=True)
            except ProviderError as exc:
                return Failed(exc.code, exc.message, partial=True)
            usage = call.usage or Usage(prompt.tokens, call.estimated_completion())
            add_usage(totals, usage)
            if not call.calls:
                hit_limit = call.finish_reason == "length" and conversation.settings.max_completion_tokens is not None
                await recorder.answered(usage, hit_limit)
                return Answered(incomplete=hit_limit)
            calls = list(call.calls.values())
            failed = await self._run_tools(settings, calls, recorder, cancel)
            if failed is not None:
                return failed
            if cancel.is_set():  # during a tool: the step keeps what the tool did, and ends with the run
                return Stopped(self.signals.stop_reason(settings.run_id), partial=True, calls=calls, usage=usage)
            functions = [c for c in calls if c.type == "function"]
            if not functions:
                await recorder.tools_ran(calls, usage)
                continue  # the model answers with the results in view
            failed = _check_functions(functions, settings)
            if failed is not None:
                return failed
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
        if tool_call is None:
            # Our own ids: upstream ids vary by backend and are never shown to clients.
            tool = self.toolbox.by_name(name)
            tool_call, deltas = tool.begin(ids.new_id(ids.CALL), name or "", args, settings.context)
            call.calls[index] = tool_call
        else:
            deltas = self.toolbox.by_type(tool_call.type).feed(tool_call, name, args)
        await recorder.tool_deltas(tool_call, list(call.calls).index(index), deltas)

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
                return Failed(exc.code, str(exc), with_usage=True, partial=True)
        return None


def _check_functions(functions: list[ToolCall], settings: Settings) -> Failed | None:
    """A function call the client cannot answer (not offered, arguments not JSON) fails the run."""
    names = offered(settings.context.tools)
    for call in functions:
        name = call.details["name"]
        if name not in names:
            return Failed("server_error", f"The model called a function that is not offered: '{name}'.", True, True)
        try:
            orjson.loads(call.details["arguments"] or "{}")
        except orjson.JSONDecodeError:
            return Failed("server_error", f"The model produced invalid JSON arguments for '{name}'.", True, True)
    return None
