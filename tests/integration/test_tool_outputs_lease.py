"""Tool outputs submitted (not streamed) while the executor that asked for them is still winding down.

The run moves to `requires_action`; its worker's job then ends and the worker used to hand the run's lease
back only after that. Outputs submitted in between queued the run again with the old executor's lease
still on it (a release leaves a ready row's lease alone: a stream holds it), and no worker could claim
the run until the lease lapsed (ASSISTD_LEASE_SECONDS, 30 s by default): the SDK's
`submit_tool_outputs_and_poll` waited that long. Through the network the window is a millisecond or two
(tests/compat/test_tool_outputs_race.py rarely hits it); here the real app runs in process, driven by the
official SDK (`AsyncOpenAI` over an ASGI transport), and the run's job is held at its very end (the
worker's emitter, which the app sets for background responses, waits on `ExecutionOver`) until the
outputs are in: the window, every time, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import AsyncOpenAI

from assistd.app import create_app
from assistd.engine.events import ExecutionOver, LifecycleEvent
from assistd.settings import Settings
from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.postgres import TestPostgres

BACKENDS = [
    pytest.param(name, marks=pytest.mark.postgres) if name == "postgres" else name
    for name in os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")
]
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}
BOUND = 5.0  # seconds from the outputs to `completed`; the lease is 30 s


class Held:
    """The worker's emitter for the runs it claims: holds each job at its end until `open` is set."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.waiting = asyncio.Event()

    async def emit(self, event: LifecycleEvent) -> None:
        if isinstance(event, ExecutionOver) and not self.open.is_set():
            self.waiting.set()
            await self.open.wait()


@pytest.fixture(params=BACKENDS)
def env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeUpstream
) -> Iterator[None]:
    values = {
        "ASSISTD_DATA_DIR": str(tmp_path),
        "ASSISTD_LOCAL_ENABLED": "false",
        "ASSISTD_LOG_REQUESTS": "false",
        "ASSISTD_UPSTREAM_BASE_URL": fake.base_url,
        # No poll to find the run later: it is claimed when it is offered, or not at all.
        "ASSISTD_WORKER_POLL_SECONDS": "3600",
        "ASSISTD_LEASE_SECONDS": "30",
    }
    if request.param == "postgres":
        postgres: TestPostgres = request.getfixturevalue("postgres")
        values["ASSISTD_DATABASE_URL"] = postgres.new_database()
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    yield


def test_outputs_submitted_before_the_executor_winds_down_complete_at_once(env: None, fake: FakeUpstream) -> None:
    model = f"m-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply.call("get_weather", {"city": "Oslo"}), Reply.say("Mild."))

    async def main() -> float:
        app = create_app(Settings())
        async with app.router.lifespan_context(app):
            held = Held()
            worker = app.state.services.worker

            async def emitter_for(run_id: str) -> Held:
                return held

            worker.emitter_for = emitter_for
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t/v1") as http:
                client = AsyncOpenAI(base_url="http://t/v1", api_key="k", http_client=http, max_retries=0)
                assistant = await client.beta.assistants.create(model=model, tools=[WEATHER])  # type: ignore[list-item]
                thread = await client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
                run = await client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
                await asyncio.wait_for(held.waiting.wait(), 20)  # the run asked; its job is not over yet
                run = await client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
                assert run.status == "requires_action", run
                assert run.required_action is not None
                (call,) = run.required_action.submit_tool_outputs.tool_calls
                started = time.monotonic()
                run = await client.beta.threads.runs.submit_tool_outputs(
                    run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "8C"}]
                )
                # The worker's loop (this event loop's) takes the offer of the queued run while the first
                # job is still held: no I/O comes before, so a tenth of a second is plenty.
                await asyncio.sleep(0.1)
                held.open.set()  # the first job ends now, after the outputs are in and offered
                while run.status in ("queued", "in_progress"):
                    assert time.monotonic() - started < BOUND, f"the run waits {BOUND} s after its outputs: {run}"
                    await asyncio.sleep(0.02)
                    run = await client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
                took = time.monotonic() - started
                assert run.status == "completed", run
                return took

    took = asyncio.run(main())
    print(f"outputs in -> completed: {took:.3f} s")
