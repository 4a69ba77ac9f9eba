"""What a one-step run costs the database (issue 18): SQL statements and write transactions per run, counted
on a real SQLite database under the real app (ASGI in process; SQLite's trace callback sees every statement,
however it is sent), with the scripted fake upstream answering.

The bounds are the run path's budget: 11 statements in 4 write transactions (create; start; the answer's
message and step opened; the answer, its step and the run completed with the lease handed back), a retrieve
1. Before the issue's work a streamed run took 21 statements in 6 write transactions, a non-streamed one 23
in 7 (from its creation to its lease handed back), and a retrieve 2."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event

from assistd.app import create_app
from assistd.settings import Settings
from assistd.testing.fake_upstream import FakeUpstream, Reply

KEY = "sk-test-0123456789abcdef0123456789abcdef"
MODEL = f"statements-{uuid.uuid4().hex[:8]}"
TRANSACTION = ("BEGIN", "COMMIT", "ROLLBACK")


@dataclass
class Trace:
    """The statements SQLite ran while recording, and the write transactions among them."""

    recording: bool = False
    seen: list[str] = field(default_factory=list)

    def __call__(self, statement: str) -> None:
        if self.recording:
            self.seen.append(statement.strip())

    @property
    def statements(self) -> list[str]:
        return [s for s in self.seen if not s.upper().startswith(TRANSACTION)]

    @property
    def commits(self) -> int:
        return sum(1 for s in self.seen if s.upper().startswith("COMMIT"))

    def start(self) -> None:
        self.seen.clear()
        self.recording = True

    def report(self, what: str) -> str:
        listing = "\n  ".join(s[:140] for s in self.seen)
        return f"{what}: {len(self.statements)} statements, {self.commits} write transactions\n  {listing}"


@pytest.fixture()
def trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeUpstream) -> Iterator[Trace]:
    for name, value in {
        "ASSISTD_DATA_DIR": str(tmp_path),
        "ASSISTD_API_KEYS": KEY,
        "ASSISTD_KEY_CACHE_SECONDS": "3600",
        "ASSISTD_LOCAL_ENABLED": "false",
        "ASSISTD_LOG_REQUESTS": "false",
        "ASSISTD_UPSTREAM_BASE_URL": fake.base_url,
        # No poll, heartbeat or maintenance pass while counting: every statement seen is the run's.
        "ASSISTD_WORKER_POLL_SECONDS": "3600",
        "ASSISTD_LEASE_SECONDS": "3600",
    }.items():
        monkeypatch.setenv(name, value)
    found = Trace()

    def connect(dbapi_conn: Any, _record: Any) -> None:
        if isinstance(dbapi_conn, sqlite3.Connection):  # the server's (migrations run through aiosqlite)
            dbapi_conn.set_trace_callback(found)

    event.listen(Engine, "connect", connect)
    try:
        yield found
    finally:
        event.remove(Engine, "connect", connect)


async def _idle(app: Any, fake: FakeUpstream, calls: int) -> None:
    """Until the model was called `calls` times in all and the worker executes nothing (the run ended, its
    lease handed back), then a moment for anything that would follow."""
    worker = app.state.services.worker
    deadline = time.monotonic() + 30
    while len(fake.requests(MODEL)) < calls or worker.jobs.running():
        assert time.monotonic() < deadline, "the run did not end"
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)


def test_a_one_step_run_costs_few_statements_and_transactions(trace: Trace, fake: FakeUpstream) -> None:
    fake.script(MODEL, *[Reply.say("It is sunny in Paris.") for _ in range(2)])

    async def main() -> None:
        app = create_app(Settings())
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {KEY}"}
            async with httpx.AsyncClient(transport=transport, base_url="http://t/v1", headers=headers) as client:
                assistant = (await client.post("/assistants", json={"model": MODEL})).json()["id"]
                threads = []
                for _ in range(2):
                    body = {"messages": [{"role": "user", "content": "Weather in Paris?"}]}
                    threads.append((await client.post("/threads", json=body)).json()["id"])
                await _idle(app, fake, 0)

                trace.start()
                response = await client.post(
                    f"/threads/{threads[0]}/runs", json={"assistant_id": assistant, "stream": True}
                )
                events = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
                assert events[-2:] == ["thread.run.completed", "done"], events
                await _idle(app, fake, 1)
                trace.recording = False
                streamed = trace.report("streamed run")
                print(streamed)
                assert len(trace.statements) <= 11 and trace.commits <= 4, streamed

                trace.start()
                run = (await client.post(f"/threads/{threads[1]}/runs", json={"assistant_id": assistant})).json()
                await _idle(app, fake, 2)
                trace.recording = False
                created = trace.report("non-streamed run, created to done")
                print(created)
                assert len(trace.statements) <= 11 and trace.commits <= 4, created

                trace.start()
                got = await client.get(f"/threads/{threads[1]}/runs/{run['id']}")
                trace.recording = False
                assert got.status_code == 200 and got.json()["status"] == "completed", got.text
                retrieved = trace.report("run retrieved")
                print(retrieved)
                assert len(trace.statements) == 1 and trace.commits == 0, retrieved

    asyncio.run(main())
