"""The database and the two ways in: `read()` and `write()`.

SQLite runs on the event loop's own thread through the synchronous driver. Its queries take
tens of microseconds from the page cache, far less than handing each call to a worker thread
(aiosqlite pays a thread hop per cursor operation: measured 1.0 ms against 0.2 ms for a list
request, bench/README.md). One writer at a time, as SQLite allows: `write()` takes a lock so this
process's writers queue in Python, never blocking the loop on the busy timeout. Other processes
(the CLI, a second server on the file) are covered by the busy timeout.

PostgreSQL goes through asyncpg. Reads run in autocommit (no BEGIN/ROLLBACK round trips).

JSON columns are written and read by `assistd.jsonio`: orjson's speed, with integers of any size exact.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

import sqlalchemy
from sqlalchemy import CursorResult, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from assistd import jsonio

SQLITE_BUSY_TIMEOUT_MS = 10_000


class Connection(Protocol):
    """What services use of a connection: `await conn.execute(statement)`."""

    async def execute(self, statement: Any, parameters: Any = None, /) -> CursorResult[Any]: ...


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(url: str, *, pool_size: int = 8) -> AsyncEngine:
    """An async engine (aiosqlite or asyncpg): used for migrations, and for all work on PostgreSQL."""
    options: dict[str, Any] = {"json_serializer": jsonio.to_column, "json_deserializer": jsonio.from_column}
    if url.startswith("sqlite"):
        engine = create_async_engine(_driver(url, "aiosqlite"), pool_size=pool_size, max_overflow=pool_size, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping: it costs three round trips per checkout; stale connections are recycled instead.
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800, **options)


def _driver(url: str, driver: str) -> str:
    return make_url(url).set(drivername=f"sqlite+{driver}").render_as_string(hide_password=False)


class _SyncConnection:
    """A synchronous SQLite connection behind the async `execute` services call."""

    def __init__(self, conn: sqlalchemy.Connection) -> None:
        self._conn = conn

    async def execute(self, statement: Any, parameters: Any = None, /) -> CursorResult[Any]:
        if parameters is None:
            return self._conn.execute(statement)
        return self._conn.execute(statement, parameters)


class Database:
    def __init__(self, url: str, *, pool_size: int = 8, notify: bool = True) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # PostgreSQL NOTIFY wake-ups to other replicas (db/wakeups.py); SQLite is one process.
        self.notify = notify and not self.is_sqlite
        self.dialect = "sqlite" if self.is_sqlite else make_url(url).get_backend_name()
        self._sync: sqlalchemy.Engine | None = None
        self._async: AsyncEngine | None = None
        self._autocommit: AsyncEngine | None = None
        if self.is_sqlite:
            self._sync = sqlalchemy.create_engine(
                _driver(url, "pysqlite"),
                json_serializer=jsonio.to_column,
                json_deserializer=jsonio.from_column,
                pool_size=pool_size,
                max_overflow=pool_size,
            )
            event.listen(self._sync, "connect", _sqlite_pragmas)
            self._write_lock = asyncio.Lock()
        else:
            self._async = create_engine(url, pool_size=pool_size)
            self._autocommit = self._async.execution_options(isolation_level="AUTOCOMMIT")

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        if self._sync is not None:
            with self._sync.connect() as conn:
                yield _SyncConnection(conn)
            return
        assert self._autocommit is not None
        async with self._autocommit.connect() as aconn:
            yield aconn

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[Connection]:
        if self._sync is not None:
            async with self._write_lock:
                with self._sync.begin() as conn:
                    yield _SyncConnection(conn)
            return
        assert self._async is not None
        async with self._async.begin() as aconn:
            yield aconn

    async def dispose(self) -> None:
        if self._sync is not None:
            self._sync.dispose()
        if self._async is not None:
            await self._async.dispose()
