"""What the upstream reports reaches the client: usage details, and function arguments as fragments.

Run and step `usage` carry `prompt_tokens_details.cached_tokens` and
`completion_tokens_details.reasoning_tokens` as OpenAI's do: the upstream's, summed over the run's
model calls, else 0. A function call's arguments stream as several deltas, so the SDK's
`on_tool_call_delta` fires for each fragment.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import LiveServer

from .test_runs import WEATHER, new_model
from .test_streaming import Recorder, stored_steps


def details(usage: Any) -> tuple[int, int]:
    """(cached_tokens, reasoning_tokens) of a run's or step's usage, as the SDK parsed it."""
    body = usage.model_dump()
    return body["prompt_tokens_details"]["cached_tokens"], body["completion_tokens_details"]["reasoning_tokens"]


def _setup(client: Any, fake: FakeUpstream, *replies: Reply, tools: list[Any] | None = None) -> tuple[Any, Any]:
    model = new_model()
    fake.script(model, *replies)
    assistant = client.beta.assistants.create(model=model, tools=tools or [])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris?"}])
    return assistant, thread


def test_usage_details_pass_through_and_sum_over_model_calls(client: Any, fake: FakeUpstream) -> None:
    assistant, thread = _setup(
        client,
        fake,
        Reply.call("get_weather", {"city": "Paris"}, cached_tokens=3, reasoning_tokens=7),
        Reply.say("It is sunny.", cached_tokens=11, reasoning_tokens=2),
        tools=[WEATHER],
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}]
    )
    assert run.status == "completed"
    assert details(run.usage) == (14, 9)
    assert run.usage.total_tokens == run.usage.prompt_tokens + run.usage.completion_tokens
    tool_step, message_step = stored_steps(client, thread.id, run.id)
    assert details(tool_step.usage) == (3, 7) and details(message_step.usage) == (11, 2)


def test_usage_details_are_zero_when_the_upstream_reports_none(client: Any, fake: FakeUpstream) -> None:
    assistant, thread = _setup(client, fake, Reply.say("Hello."))
    handler = Recorder()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=handler) as s:
        s.until_done()
    run = handler.get_final_run()
    assert run.status == "completed" and details(run.usage) == (0, 0)
    stored = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert stored.usage == run.usage
    (step,) = stored_steps(client, thread.id, run.id)
    assert details(step.usage) == (0, 0) and step.usage.total_tokens > 0


def test_usage_stored_before_the_details_existed_reads_with_zeros(
    server: LiveServer, client: Any, fake: FakeUpstream
) -> None:
    """Rows written by earlier versions hold only the three totals: they are served with zero details."""
    assistant, thread = _setup(client, fake, Reply.say("Hello."))
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    (step,) = stored_steps(client, thread.id, run.id)
    old = '{"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}'
    url = server.env.get("ASSISTD_DATABASE_URL") or f"sqlite+aiosqlite:///{server.data_dir / 'assistd.db'}"

    async def rewrite() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE runs SET usage = :u WHERE id = :i"), {"u": old, "i": run.id})
                await conn.execute(text("UPDATE run_steps SET usage = :u WHERE id = :i"), {"u": old, "i": step.id})
        finally:
            await engine.dispose()

    asyncio.run(rewrite())
    run = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert (run.usage.prompt_tokens, run.usage.completion_tokens, run.usage.total_tokens) == (5, 2, 7)
    assert details(run.usage) == (0, 0)
    (step,) = stored_steps(client, thread.id, run.id)
    assert details(step.usage) == (0, 0) and step.usage.total_tokens == 7


def test_function_arguments_stream_as_fragments(client: Any, fake: FakeUpstream) -> None:
    arguments = {"city": "Paris, France", "unit": "celsius"}
    assistant, thread = _setup(client, fake, Reply.call("get_weather", arguments), tools=[WEATHER])
    handler = Recorder()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=handler) as s:
        s.until_done()
    assert handler.get_final_run().status == "requires_action"
    assert len(handler.tool_calls_created) == 1
    fragments = [d.function.arguments for d in handler.tool_call_deltas]
    assert len(fragments) > 1, "on_tool_call_delta fires once per argument fragment"
    (done,) = handler.tool_calls_done
    assert "".join(fragments) == done.function.arguments == '{"city":"Paris, France","unit":"celsius"}'
