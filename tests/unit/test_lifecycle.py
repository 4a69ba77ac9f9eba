"""engine/lifecycle.py on a real (SQLite) database: the transition table is the only way a run's status
moves; every move the table does not list is refused by the compare-and-set; the ending operations
close the run's open steps and messages and announce them before the run's own event."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from assistd.db import migrate
from assistd.db import tables as t
from assistd.db.database import Connection, Database, create_engine
from assistd.engine import lifecycle
from assistd.engine.events import LifecycleEvent, MessageClosed, RunChanged, StepClosed
from assistd.engine.lifecycle import ACTIVE, TERMINAL, TRANSITIONS, Lifecycle, RunStatus
from assistd.engine.signals import RunSignals
from assistd.errors import InvalidRequest
from assistd.stores import runs as run_store

S = RunStatus


class Collected:
    """An Emitter that keeps what it is given."""

    def __init__(self) -> None:
        self.events: list[LifecycleEvent] = []

    async def emit(self, event: LifecycleEvent) -> None:
        self.events.append(event)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('lifecycle') / 'runs.db'}"

    async def setup() -> None:
        engine = create_engine(url, pool_size=1)
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()
        db = Database(url)
        try:
            async with db.write() as conn:
                now = int(time.time())
                await conn.execute(t.projects.insert().values(id="proj_l", name="lifecycle", created_at=now))
                await conn.execute(
                    t.assistants.insert().values(
                        id="asst_l",
                        project_id="proj_l",
                        created_at=now,
                        model="m",
                        tools=[],
                        tool_resources={},
                        metadata={},
                    )
                )
                await conn.execute(
                    t.threads.insert().values(
                        id="thread_l", project_id="proj_l", created_at=now, tool_resources={}, metadata={}
                    )
                )
        finally:
            await db.dispose()

    asyncio.run(setup())
    yield url


_ids = itertools.count()


async def _new_run(conn: Connection, status: RunStatus) -> str:
    run_id = f"run_l{next(_ids)}"
    now = int(time.time())
    await run_store.insert_run(
        conn,
        {
            "id": run_id,
            "project_id": "proj_l",
            "thread_id": "thread_l",
            "assistant_id": "asst_l",
            "created_at": now,
            "status": status.value,
            "model": "m",
            "tools": [],
            "metadata": {},
            "truncation_strategy": {"type": "auto", "last_messages": None},
            "tool_choice": "auto",
            "parallel_tool_calls": True,
            "response_format": "auto",
            "expires_at": now + 600,
        },
    )
    return run_id


async def _open_parts(conn: Connection, run_id: str) -> None:
    """An in-progress step and message, as a run leaves them mid-answer."""
    now = int(time.time())
    await conn.execute(
        t.messages.insert().values(
            id=f"msg_{run_id}",
            thread_id="thread_l",
            created_at=now,
            role="assistant",
            status="in_progress",
            content=[],
            attachments=[],
            metadata={},
            assistant_id="asst_l",
            run_id=run_id,
        )
    )
    await run_store.insert_step(
        conn,
        {
            "id": f"step_{run_id}",
            "run_id": run_id,
            "thread_id": "thread_l",
            "assistant_id": "asst_l",
            "created_at": now,
            "type": "message_creation",
            "status": "in_progress",
            "step_details": {"type": "message_creation", "message_creation": {"message_id": f"msg_{run_id}"}},
            "metadata": {},
        },
    )


@pytest.fixture
def db(database: str) -> Iterator[Database]:
    db = Database(database)
    yield db
    asyncio.run(db.dispose())


def test_the_table_covers_every_status_and_terminal_statuses_go_nowhere() -> None:
    assert set(TRANSITIONS) == set(RunStatus)
    assert set(RunStatus) == ACTIVE | TERMINAL and not ACTIVE & TERMINAL
    for status in TERMINAL:
        assert TRANSITIONS[status] == frozenset()
    for status in ACTIVE:
        assert TRANSITIONS[status], status  # an active run can always end
        assert TRANSITIONS[status] & TERMINAL, status


def test_every_transition_the_table_does_not_list_is_refused(db: Database) -> None:
    async def main() -> list[tuple[RunStatus, RunStatus, bool, str]]:
        seen = []
        for source, target in itertools.product(RunStatus, RunStatus):
            async with db.write() as conn:
                run_id = await _new_run(conn, source)
                moved = await lifecycle.move(conn, run_id, target)
                run = await run_store.load_run(conn, run_id)
            assert run is not None
            seen.append((source, target, moved, run.status))
        return seen

    for source, target, moved, status in asyncio.run(main()):
        legal = target in TRANSITIONS[source]
        assert moved is legal, (source, target)
        assert status == (target if legal else source), (source, target)


def test_fail_closes_open_parts_and_announces_them_before_the_run(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> tuple[Collected, Any, Any]:
        async with db.write() as conn:
            run_id = await _new_run(conn, S.IN_PROGRESS)
            await _open_parts(conn, run_id)
        events = Collected()
        await Lifecycle(db, RunSignals()).fail(run_id, "server_error", "boom", events, usage={"total_tokens": 3})
        await Lifecycle(db, RunSignals()).fail(run_id, "server_error", "again", events)  # already failed: refused
        async with db.read() as conn:
            run = await run_store.load_run(conn, run_id)
            steps = await run_store.run_steps(conn, run_id)
        return events, run, steps

    with caplog.at_level(logging.WARNING, logger="assistd.runs"):
        events, run, steps = asyncio.run(main())
    assert [type(e) for e in events.events] == [MessageClosed, StepClosed, RunChanged]
    assert run.status == "failed" and run.last_error == {"code": "server_error", "message": "boom"}
    assert run.usage == {"total_tokens": 3} and run.failed_at is not None
    assert steps[0].status == "failed" and steps[0].last_error == run.last_error
    closed = events.events[0]
    assert isinstance(closed, MessageClosed) and closed.message.incomplete_details == {"reason": "run_failed"}
    assert [r.getMessage() for r in caplog.records].count("run failed") == 1  # one line per failed run


def test_a_run_waiting_for_tool_outputs_cannot_fail_but_can_expire_or_be_cancelled(db: Database) -> None:
    async def main() -> list[str]:
        life = Lifecycle(db, RunSignals())
        out = []
        for operation in ("fail", "expire", "cancel"):
            async with db.write() as conn:
                run_id = await _new_run(conn, S.REQUIRES_ACTION)
            if operation == "fail":
                await life.fail(run_id, "server_error", "x", Collected())
            elif operation == "expire":
                await life.expire(run_id, Collected())
            else:

                async def check(conn: Connection) -> None:
                    return None

                await life.cancel(run_id, check, Collected())  # nobody executes it: cancelled at once
            async with db.read() as conn:
                run = await run_store.load_run(conn, run_id)
            assert run is not None
            out.append(run.status)
        return out

    assert asyncio.run(main()) == ["requires_action", "expired", "cancelled"]


@pytest.mark.parametrize("status", sorted(TERMINAL | {S.CANCELLING}))
def test_cancel_refuses_an_ended_run_and_leaves_a_cancelling_one_alone(db: Database, status: RunStatus) -> None:
    async def main() -> tuple[str | None, str]:
        async with db.write() as conn:
            run_id = await _new_run(conn, status)

        async def check(conn: Connection) -> None:
            return None

        try:
            run = await Lifecycle(db, RunSignals()).cancel(run_id, check, Collected())
        except InvalidRequest as exc:
            return str(exc), status.value
        return None, run.status

    error, after = asyncio.run(main())
    if status == S.CANCELLING:
        assert error is None and after == "cancelling"
    else:
        assert error == f"Cannot cancel run with status '{status.value}'."


def test_cancel_of_a_run_executing_here_only_asks_it_to_stop(db: Database) -> None:
    async def main() -> tuple[str, bool]:
        signals = RunSignals()
        async with db.write() as conn:
            run_id = await _new_run(conn, S.IN_PROGRESS)
        stop = signals.register(run_id)

        async def check(conn: Connection) -> None:
            return None

        run = await Lifecycle(db, signals).cancel(run_id, check, Collected())
        return run.status, stop.is_set()

    assert asyncio.run(main()) == ("cancelling", True)


def test_a_completion_that_races_a_cancel_still_completes(db: Database) -> None:
    async def main() -> tuple[str, list[LifecycleEvent]]:
        async with db.write() as conn:
            run_id = await _new_run(conn, S.CANCELLING)
        events = Collected()
        await Lifecycle(db, RunSignals()).finish(run_id, S.COMPLETED, {"total_tokens": 1}, events)
        async with db.read() as conn:
            run = await run_store.load_run(conn, run_id)
        assert run is not None
        return run.status, events.events

    status, events = asyncio.run(main())
    assert status == "completed" and len(events) == 1


def test_start_claims_only_a_queued_run_and_closes_a_cancelling_one(db: Database) -> None:
    async def main() -> list[tuple[bool, str]]:
        out = []
        for status in (S.QUEUED, S.IN_PROGRESS, S.CANCELLING, S.COMPLETED):
            async with db.write() as conn:
                run_id = await _new_run(conn, status)
            started = await Lifecycle(db, RunSignals()).start(run_id, Collected())
            async with db.read() as conn:
                run = await run_store.load_run(conn, run_id)
            assert run is not None
            out.append((started is not None, run.status))
        return out

    assert asyncio.run(main()) == [
        (True, "in_progress"),
        (False, "in_progress"),
        (False, "cancelled"),
        (False, "completed"),
    ]
