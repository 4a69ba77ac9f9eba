"""PostgreSQL wake-ups (db/wakeups.py) on a real database: a NOTIFY leaves with its transaction's
commit and never with a rollback; a listener whose connection is killed opens it again and says so
(its `on_connected` is how a replica catches up on what it missed); SQLite sends nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from assistd.db.database import Database
from assistd.db.wakeups import (
    APPLICATION_NAME,
    Listener,
    RunQueued,
    RunStop,
    Wakeup,
    announce,
    decode,
    encode,
    listener_connect_args,
)
from assistd.testing.postgres import TestPostgres


class Failed(Exception):
    pass


async def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_payloads_round_trip_and_unknown_ones_are_ignored() -> None:
    for wakeup in (RunQueued("run_abc"), RunStop("run_abc")):
        assert decode(encode(wakeup)) == wakeup
    assert decode("resume:run_abc") is None  # a newer replica's kind
    assert decode("stop:") is None
    assert decode("garbage") is None


def test_the_listener_connects_with_the_pool_s_settings_not_sqlalchemy_s_options() -> None:
    args = listener_connect_args("postgresql+asyncpg://u:p@db:5433/app?prepared_statement_cache_size=0&ssl=require")
    assert {k: args[k] for k in ("host", "port", "user", "password", "database", "ssl")} == {
        "host": "db",
        "port": 5433,
        "user": "u",
        "password": "p",
        "database": "app",
        "ssl": "require",
    }
    assert "prepared_statement_cache_size" not in args
    assert args["server_settings"] == {"application_name": APPLICATION_NAME}


def test_sqlite_sends_nothing(tmp_path: Path) -> None:
    async def run() -> None:
        db = Database(f"sqlite:///{tmp_path / 'one.db'}")
        assert not db.notify
        async with db.write() as conn:
            await announce(db, conn, RunQueued("run_x"))  # no pg_notify on SQLite: it would fail
        await db.dispose()

    asyncio.run(run())


@pytest.mark.postgres
def test_a_notify_leaves_on_commit_and_never_on_rollback(postgres: TestPostgres) -> None:
    url = postgres.new_database()

    async def run() -> None:
        db = Database(url)
        received: list[Wakeup] = []
        listener = Listener(url, received.append, lambda: None)
        listener.start()
        try:
            await eventually(lambda: listener.connections == 1, 10, "the listener")
            with pytest.raises(Failed):
                async with db.write() as conn:
                    await announce(db, conn, RunStop("run_rolled_back"))
                    raise Failed
            async with db.write() as conn:
                await announce(db, conn, RunQueued("run_committed"))
                await asyncio.sleep(0.3)
                assert received == [], "delivered before the commit"
            await eventually(lambda: bool(received), 5, "the committed notification")
            await asyncio.sleep(0.2)
            assert received == [RunQueued("run_committed")]
        finally:
            await listener.stop()
            await db.dispose()

    asyncio.run(run())


@pytest.mark.postgres
def test_a_killed_listener_connection_is_opened_again(postgres: TestPostgres) -> None:
    url = postgres.new_database()

    async def run() -> None:
        db = Database(url)
        received: list[Wakeup] = []
        connected: list[float] = []
        listener = Listener(url, received.append, lambda: connected.append(time.monotonic()))
        listener.start()
        try:
            await eventually(lambda: len(connected) == 1, 10, "the listener")
            async with db.read() as conn:
                killed = (
                    await conn.execute(
                        text(
                            "WITH l AS MATERIALIZED (SELECT pid FROM pg_stat_activity"
                            " WHERE application_name = :name AND datname = current_database())"
                            " SELECT pid FROM l WHERE pg_terminate_backend(pid)"
                        ),
                        {"name": APPLICATION_NAME},
                    )
                ).all()
            assert len(killed) == 1
            killed_at = time.monotonic()
            await eventually(lambda: len(connected) == 2, 10, "the listener to reconnect")
            assert connected[1] - killed_at < 3.0  # the first retry comes after 0.5 s
            async with db.write() as conn:
                await announce(db, conn, RunStop("run_after"))
            await eventually(lambda: received == [RunStop("run_after")], 5, "a notification on the new connection")
        finally:
            await listener.stop()
            await db.dispose()

    asyncio.run(run())
