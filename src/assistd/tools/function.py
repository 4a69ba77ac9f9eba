"""Function tools: the client runs them; the run waits in `requires_action` for their outputs."""

from __future__ import annotations

import asyncio

from assistd.tools.base import DeltaSink, Json, ToolCall, ToolContext

NAME = "function"


class FunctionTool:
    name = NAME
    client_side = True

    async def schemas(self, context: ToolContext) -> list[Json]:
        """The run's functions, as given."""
        return [{"type": NAME, "function": tool["function"]} for tool in context.tools if tool["type"] == NAME]

    def begin(self, call_id: str, name: str, arguments: str, context: ToolContext) -> tuple[ToolCall, list[Json]]:
        call = ToolCall(call_id, NAME, {"name": name, "arguments": arguments, "output": None})
        return call, [{"id": call_id, "type": NAME, "function": dict(call.details)}]

    def feed(self, call: ToolCall, name: str | None, arguments: str) -> list[Json]:
        if name and not call.details["name"]:
            call.details["name"] = name
        call.details["arguments"] += arguments
        return [{"type": NAME, "function": {"arguments": arguments}}] if arguments else []

    async def run(self, calls: list[ToolCall], context: ToolContext, delta: DeltaSink, cancel: asyncio.Event) -> None:
        return None  # the client's: its outputs arrive through submit_tool_outputs

    def replay(self, call: ToolCall, number: int, budget: int) -> tuple[str, str] | None:
        output = call.details.get("output")
        return None if output is None else (str(call.details["arguments"]), str(output))
