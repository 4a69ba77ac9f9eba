"""engine/loop.py against a scripted provider (a real implementation of the Provider protocol) and an
in-memory recorder (a real implementation of the Recorder protocol): the loop knows no wire format."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson

from assistd.engine.items import Conversation, TurnSettings, no_history
from assistd.engine.lifecycle import Parts
from assistd.engine.loop import MAX_MODEL_CALLS, Loop, Settings
from assistd.engine.output import Answered, Failed, NeedsAction, Outcome, Stopped
from assistd.engine.signals import RunSignals
from assistd.providers.base import ChatRequest, Chunk, ProviderError, ToolCallDelta, Usage
from assistd.providers.counting import Tiktoken
from assistd.providers.routing import Resolved
from assistd.stores.runs import NO_USAGE
from assistd.tools import Toolbox
from assistd.tools.base import DeltaSink, Json, RefusedCall, ToolCall, ToolContext, ToolFailed

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


class Scripted:
    """A provider that answers each call with the next script (a list of chunks, or an error)."""

    name = "scripted"
    context_window = 8192

    def __init__(self, *scripts: list[Chunk] | ProviderError) -> None:
        self.scripts = list(scripts)
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        self.requests.append(request)
        script = self.scripts.pop(0) if len(self.scripts) > 1 else self.scripts[0]
        if isinstance(script, ProviderError):
            raise script
        for chunk in script:
            yield chunk

    def counter(self, model: str) -> Tiktoken:
        return Tiktoken()

    async def close(self) -> None:
        return None


class Memory:
    """A recorder that keeps the run's output in memory."""

    def __init__(self, max_completion_tokens: int | None = None) -> None:
        self.settings = TurnSettings(max_completion_tokens=max_completion_tokens)
        self.said: list[str] = []
        self.deltas: list[tuple[str, int, Json]] = []
        self.answers: list[tuple[Usage, bool]] = []
        self.tool_steps: list[list[Json]] = []
        self.budgets: list[int] = []
        self.refused: list[RefusedCall] = []

    async def conversation(self, tool_output_tokens: int) -> Conversation:
        self.budgets.append(tool_output_tokens)
        return Conversation("", no_history, (), self.settings)

    async def begin_call(self) -> None:
        return None

    async def text(self, fragment: str) -> None:
        self.said.append(fragment)

    async def end_text(self) -> None:
        return None

    async def tool_deltas(self, call: ToolCall, position: int, deltas: list[Json]) -> None:
        self.deltas += [(call.id, position, delta) for delta in deltas]

    async def answered(self, usage: Usage, incomplete: bool) -> None:
        self.answers.append((usage, incomplete))

    async def tools_ran(self, calls: list[ToolCall], usage: Usage) -> None:
        self.tool_steps.append([call.public() for call in calls])

    async def refuse(self, calls: list[RefusedCall]) -> None:
        self.refused += calls

    async def before_action(self) -> None:
        return None

    def required_action(self, calls: list[ToolCall]) -> Json:
        return {"calls": [call.id for call in calls]}

    def keep_calls(self, calls: list[ToolCall], usage: Usage) -> Parts:
        raise AssertionError("the loop never writes")

    def partial(self, usage: Usage | None = None) -> Parts:
        raise AssertionError("the loop never writes")


class Echo:
    """A server-side tool: keeps its raw arguments private, shows only its result."""

    name = "echo"
    client_side = False

    async def schemas(self, context: ToolContext) -> list[Json]:
        return [{"type": "function", "function": {"name": "echo"}}]

    def begin(self, call_id: str, name: str, arguments: str, context: ToolContext) -> tuple[ToolCall, list[Json]]:
        call = ToolCall(call_id, "echo", {"result": None}, {"arguments": arguments})
        return call, [{"id": call_id, "type": "echo"}]

    def feed(self, call: ToolCall, name: str | None, arguments: str) -> list[Json]:
        call.private["arguments"] = call.arguments + arguments
        return []

    async def run(self, calls: list[ToolCall], context: ToolContext, delta: DeltaSink, cancel: asyncio.Event) -> None:
        for call in calls:
            if orjson.loads(call.arguments)["say"] == "fail":
                raise ToolFailed("server_error", "echo failed")
            call.details["result"] = orjson.loads(call.arguments)["say"]
            await delta(call, {"type": "echo", "echo": {"result": call.details["result"]}})

    def replay(self, call: ToolCall, number: int, budget: int) -> tuple[str, str] | None:
        return call.arguments, str(call.details["result"])


def settings(tools: list[Json] | None = None) -> Settings:
    context = ToolContext("run_1", "proj_1", "thread_1", "asst_1", tools if tools is not None else [WEATHER])
    return Settings("run_1", None, context)


def run(
    provider: Scripted, *, tools: list[Json] | None = None, limit: int | None = None, cancel: bool = False
) -> tuple[Outcome, Memory, dict[str, int]]:
    async def main() -> tuple[Outcome, Memory, dict[str, int]]:
        memory = Memory(limit)
        totals = dict(NO_USAGE)
        stop = asyncio.Event()
        if cancel:
            stop.set()
        loop = Loop(Toolbox([Echo()]), RunSignals())
        outcome = await loop.run(settings(tools), Resolved(provider, "upstream-m"), memory, totals, stop)
        return outcome, memory, totals

    return asyncio.run(main())


def call(index: int, name: str | None, arguments: str) -> Chunk:
    return Chunk(tool_calls=[ToolCallDelta(index=index, id="upstream", name=name, arguments=arguments)])


def test_a_text_answer_completes_with_the_backends_usage() -> None:
    provider = Scripted([Chunk(text="Hel"), Chunk(text="lo"), Chunk(finish_reason="stop", usage=Usage(7, 2))])
    outcome, memory, totals = run(provider)
    assert outcome == Answered(incomplete=False)
    assert "".join(memory.said) == "Hello" and memory.answers == [(Usage(7, 2), False)]
    assert totals["prompt_tokens"] == 7 and totals["completion_tokens"] == 2 and totals["total_tokens"] == 9
    assert provider.requests[0].model == "upstream-m"
    assert [t["function"]["name"] for t in provider.requests[0].tools] == ["get_weather", "echo"]
    assert memory.budgets == [4096]  # tool outputs may take half the window


def test_a_call_cut_at_max_completion_tokens_is_incomplete_and_usage_is_estimated_without_a_report() -> None:
    provider = Scripted([Chunk(text="a b c"), Chunk(finish_reason="length")])
    outcome, memory, totals = run(provider, limit=300)
    assert outcome == Answered(incomplete=True)
    prompt = asyncio.run(Tiktoken().fixed(provider.requests[0].tools))  # an empty conversation: only the tools
    assert prompt > 0 and totals["prompt_tokens"] == prompt and totals["completion_tokens"] > 0  # counted here
    assert provider.requests[0].max_tokens == 300  # the turn's settings bound the answer


def test_a_function_call_waits_for_the_client_as_a_typed_call() -> None:
    outcome, memory, _ = run(Scripted([call(0, "get_weather", '{"city":'), call(0, None, '"Paris"}')]))
    assert isinstance(outcome, NeedsAction)
    (weather,) = outcome.calls
    assert weather.type == "function" and weather.details["arguments"] == '{"city":"Paris"}'
    assert weather.public() == {
        "id": weather.id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}', "output": None},
    }
    assert [d[2]["function"]["arguments"] for d in memory.deltas] == ['{"city":', '"Paris"}']


def test_a_function_that_was_not_offered_is_refused_and_the_model_corrects_itself() -> None:
    provider = Scripted([call(0, "launch", "{}")], [call(0, "get_weather", '{"city": "Oslo"}')])
    outcome, memory, totals = run(provider)
    assert isinstance(outcome, NeedsAction) and outcome.calls[0].details["name"] == "get_weather"
    (refused,) = memory.refused
    assert refused.name == "launch" and refused.reason == "unknown_tool"
    assert refused.error.startswith("Error: no tool named 'launch'; available: get_weather, echo")
    assert [d[0] for d in memory.deltas] == [outcome.calls[0].id], "the refused call was never shown"
    assert len(provider.requests) == 2 and totals["total_tokens"] > 0


def test_past_the_bound_the_run_fails_saying_what_the_model_did() -> None:
    outcome, memory, _ = run(Scripted([call(0, "launch", "{}")]))
    assert isinstance(outcome, Failed) and outcome.partial
    assert outcome.message == "The model called an unknown tool 'launch' 3 times (available: get_weather, echo)."
    assert len(memory.refused) == 2 and [r.attempt for r in memory.refused] == [1, 2]
    outcome, _, _ = run(Scripted([call(0, "get_weather", "nope, no JSON")]))
    assert isinstance(outcome, Failed)
    assert outcome.message.startswith("The model sent invalid arguments for 'get_weather' 3 times (last: Error: ")


def test_malformed_arguments_are_repaired_before_any_delta_is_shown() -> None:
    outcome, memory, _ = run(Scripted([call(0, "get_weather", "{'city': 'Par"), call(0, None, "is',}")]))
    assert isinstance(outcome, NeedsAction)
    (weather,) = outcome.calls
    assert weather.details["arguments"] == '{"city":"Paris"}'
    assert [d[2]["function"]["arguments"] for d in memory.deltas] == ["", '{"city":"Paris"}']


def test_a_server_side_tool_runs_then_the_model_answers_and_private_state_never_shows() -> None:
    provider = Scripted([call(0, "echo", '{"say": "hi"}')], [Chunk(text="done")])
    outcome, memory, _ = run(provider)
    assert outcome == Answered(incomplete=False)
    (step,) = memory.tool_steps
    assert step[0]["echo"] == {"result": "hi"} and "arguments" not in orjson.dumps(step).decode()
    assert memory.deltas[-1][2] == {"type": "echo", "echo": {"result": "hi"}}
    assert len(provider.requests) == 2


def test_a_provider_error_fails_the_run_keeping_what_streamed() -> None:
    outcome, _, totals = run(Scripted(ProviderError("upstream down", "rate_limit_exceeded")))
    assert outcome == Failed("rate_limit_exceeded", "upstream down", partial=True)
    assert totals == NO_USAGE


def test_every_failure_counts_the_calls_it_made() -> None:
    """A tool that fails, a backend that fails mid-stream: the failed call's usage is in the totals."""
    outcome, _, totals = run(Scripted([call(0, "echo", '{"say": "fail"}'), Chunk(usage=Usage(11, 3))]))
    assert outcome == Failed("server_error", "echo failed", partial=True, usage=Usage(11, 3))
    assert totals["total_tokens"] == 14

    class CutMidStream(Scripted):
        async def complete(self, request: ChatRequest) -> AsyncIterator[Chunk]:
            self.requests.append(request)
            yield Chunk(text="It is sunny")
            raise ProviderError("the backend closed the connection")

    outcome, _, totals = run(CutMidStream([]))
    assert isinstance(outcome, Failed) and outcome.usage is not None
    assert outcome.usage.prompt_tokens > 0 and outcome.usage.completion_tokens == 3  # counted here (cl100k)
    assert totals["total_tokens"] == outcome.usage.total_tokens


def test_a_stop_before_the_call_ends_the_run_without_calling_the_model() -> None:
    provider = Scripted([Chunk(text="never")])
    outcome, _, _ = run(provider, cancel=True)
    assert outcome == Stopped("cancelled") and provider.requests == []


def test_a_model_that_never_stops_calling_tools_fails_after_the_limit() -> None:
    provider = Scripted([call(0, "echo", '{"say": "again"}')])
    outcome, memory, _ = run(provider)
    assert outcome == Failed("server_error", f"The run made more than {MAX_MODEL_CALLS} model calls.")
    assert len(provider.requests) == MAX_MODEL_CALLS
