"""Wake-ups across replicas: PostgreSQL LISTEN/NOTIFY as a hint, the database row remaining the truth.

A write that another replica must act on (a run queued, a run to stop: cancelled, or its thread
deleted) sends a NOTIFY in its own transaction (`announce`): PostgreSQL delivers it on commit, and
never for a transaction rolled back. Each replica LISTENs on one dedicated connection (`Listener`);
a notification only wakes the right waiter (the queue worker's poll, the executing run's stop check),
which re-reads the row and acts on what it finds there. A notification carries nothing to trust.

Nothing depends on a notification arriving: the worker's poll (`ASSISTD_WORKER_POLL_SECONDS`)
still finds everything. A listener connection that is lost is opened again with a growing delay, and
every (re)connection wakes the waiters once, for what may have been sent while nobody listened.

SQLite is one process: the writer wakes its own waiters in-process, and `announce` sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from assistd.db.database import Connection, Database

log = logging.getLogger("assistd.wakeups")

CHANNEL = "assistd_wakeups"
# How the listener's connection shows in pg_stat_activity (operators, and the tests that kill it).
APPLICATION_NAME = "assistd-listener"
RECONNECT_MIN_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 15.0
# A connection silently gone (a network partition, no FIN) is found by a query this often.
HEALTH_CHECK_SECONDS = 15.0
CONNECT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class RunQueued:
    """A run is queued and nobody holds it: an idle worker should look for work."""

    run_id: str


@dataclass(frozen=True)
class RunStop:
    """A run was cancelled, or its thread deleted: the replica executing it should re-read it."""

    run_id: str


Wakeup = RunQueued | RunStop

_KINDS: dict[str, type[RunQueued] | type[RunStop]] = {"queued": RunQueued, "stop": RunStop}


def encode(wakeup: Wakeup) -> str:
    kind = "queued" if isinstance(wakeup, RunQueued) else "stop"
    return f"{kind}:{wakeup.run_id}"


def decode(payload: str) -> Wakeup | None:
    """The wake-up a payload names; None for one this version does not know (a newer replica's)."""
    kind, _, run_id = payload.partition(":")
    cls = _KINDS.get(kind)
    if cls is None or not run_id:
        return None
    return cls(run_id)


async def announce(db: Database, conn: Connection, wakeup: Wakeup) -> None:
    """Send `wakeup` to every listening replica when the transaction of `conn` commits (PostgreSQL with
    `ASSISTD_LISTEN_NOTIFY` on); nothing otherwise."""
    if db.notify:
        await conn.execute(select(func.pg_notify(CHANNEL, encode(wakeup))))


class _Notifications(Protocol):
    """What the listener uses of an asyncpg connection."""

    async def add_listener(self, channel: str, callback: Callable[[object, int, str, str], None]) -> None: ...

    def add_termination_listener(self, callback: Callable[[object], None]) -> None: ...

    async def execute(self, query: str) -> str: ...

    def is_closed(self) -> bool: ...

    def terminate(self) -> None: ...

    async def close(self, *, timeout: float | None = None) -> None: ...


def listener_connect_args(url: str) -> dict[str, object]:
    """asyncpg.connect's arguments for the SQLAlchemy URL the pool uses (host, port, user, ssl, ...),
    without SQLAlchemy's own options (`prepared_statement_cache_size`)."""
    import inspect

    import asyncpg  # type: ignore[import-untyped,unused-ignore]

    parsed = make_url(url)
    _, options = parsed.get_dialect()().create_connect_args(parsed)
    accepted = inspect.signature(asyncpg.connect).parameters
    args = {name: value for name, value in options.items() if name in accepted}
    settings = args.get("server_settings")
    args["server_settings"] = {**(settings if isinstance(settings, dict) else {}), "application_name": APPLICATION_NAME}
    args.setdefault("timeout", CONNECT_TIMEOUT_SECONDS)
    return args


class Listener:
    """One dedicated connection LISTENing on `CHANNEL`, opened again whenever it is lost.

    `on_wakeup` gets each notification (on the event loop, it must not block); `on_connected` is
    called after each (re)connection, for what may have been missed while there was none.
    """

    def __init__(
        self,
        url: str,
        on_wakeup: Callable[[Wakeup], None],
        on_connected: Callable[[], None],
    ) -> None:
        self._connect_args = listener_connect_args(url)
        self._on_wakeup = on_wakeup
        self._on_connected = on_connected
        self._task: asyncio.Task[None] | None = None
        self._delay = RECONNECT_MIN_SECONDS
        self.connections = 0  # how many times a connection was opened (1 + reconnections)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="assistd-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            conn = await self._connect()
            if conn is not None:
                try:
                    await self._listen(conn)
                except Exception:
                    log.warning("listener connection failed", exc_info=True)
                finally:
                    await self._close(conn)
            log.warning(
                "no listener connection: wake-ups from other replicas wait for the poll",
                extra={"retry_in_seconds": self._delay},
            )
            await asyncio.sleep(self._delay)
            self._delay = min(self._delay * 2, RECONNECT_MAX_SECONDS)

    async def _listen(self, conn: _Notifications) -> None:
        """LISTEN until the connection is lost."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(CHANNEL, self._received)
        self._delay = RECONNECT_MIN_SECONDS  # it listened: the next loss starts the back-off over
        self.connections += 1
        if self.connections > 1:
            log.info("listener connection open again", extra={"channel": CHANNEL})
        self._on_connected()
        await self._watch(conn, lost)

    async def _connect(self) -> _Notifications | None:
        import asyncpg  # type: ignore[import-untyped,unused-ignore]

        try:
            conn: _Notifications = await asyncpg.connect(**self._connect_args)
        except Exception as exc:  # the database is down or unreachable: try again later
            log.warning("could not open the listener connection", extra={"error": str(exc)})
            return None
        return conn

    async def _watch(self, conn: _Notifications, lost: asyncio.Event) -> None:
        """Return when the connection is lost: closed under us, or not answering a health check."""
        while not conn.is_closed():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), HEALTH_CHECK_SECONDS)
                return
            await asyncio.wait_for(conn.execute("SELECT 1"), CONNECT_TIMEOUT_SECONDS)

    @staticmethod
    async def _close(conn: _Notifications) -> None:
        if conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.close(timeout=2.0), 3.0)
        except Exception:
            conn.terminate()

    def _received(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        wakeup = decode(payload)
        if wakeup is None:
            return
        try:
            self._on_wakeup(wakeup)
        except Exception:  # a waiter's failure must not end the listening
            log.exception("wake-up handler failed", extra={"payload": payload})
