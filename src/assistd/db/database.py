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
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

import sqlalchemy
from sqlalchemy import CursorResult, Select, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.compiler import SQLCompiler

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


class Prepared:
    """A SELECT compiled once per dialect and run on the driver itself (sqlite3, asyncpg): no statement
    building, cache key, compilation or result processing by SQLAlchemy per call. For the hottest reads
    only (listing messages, stores/messages.py): rows come back as the driver gives them, so select
    columns that need no conversion (text and integers; JSON columns cast to text)."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, SQLCompiler] = {}

    def arguments(self, dialect: Dialect, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The SQL text for this dialect and the values in the order of its placeholders."""
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self.statement.compile(dialect=dialect)
            assert isinstance(compiled, SQLCompiler) and compiled.positional, "a positional dialect's SELECT"
            assert "POSTCOMPILE" not in compiled.string, "expanding parameters need SQLAlchemy's execution"
            self._compiled[dialect.name] = compiled
        params = compiled.construct_params(dict(values))
        return compiled.string, [params[name] for name in compiled.positiontup or ()]


class Reader(Protocol):
    """A read connection's driver, for `Prepared` statements (`Database.reader()`)."""

    async def fetch(self, prepared: Prepared, values: Mapping[str, Any]) -> Sequence[Sequence[Any]]: ...


class _SqliteReader:
    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self._conn = conn
        self._dialect = dialect

    async def fetch(self, prepared: Prepared, values: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        sql, arguments = prepared.arguments(self._dialect, values)
        rows: list[tuple[Any, ...]] = self._conn.execute(sql, arguments).fetchall()
        return rows


class _AsyncpgReader:
    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self._conn = conn
        self._dialect = dialect

    async def fetch(self, prepared: Prepared, values: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        sql, arguments = prepared.arguments(self._dialect, values)
        rows: Sequence[Sequence[Any]] = await self._conn.fetch(sql, *arguments)  # asyncpg's statement cache
        return rows


class _SqliteRead:
    """`Database.read()` and `reader()` on SQLite: one connection is kept out of the pool between reads,
    since a checkout costs more than a page query (bench/bench_list.py). sqlite3 opens no transaction
    for a SELECT, and SQLAlchemy's own (autobegun) is rolled back after each read, as the pool's reset
    did, so the kept connection holds nothing between reads. A read while it is in use (one spanning
    an await) takes a pooled connection. A class, not a generator-based context manager: that costs
    the event loop an async generator to track per request."""

    __slots__ = ("_db", "_engine", "_driver", "_conn")

    def __init__(self, db: Database, engine: sqlalchemy.Engine, driver: bool) -> None:
        self._db = db
        self._engine = engine
        self._driver = driver
        self._conn: sqlalchemy.Connection | None = None

    async def __aenter__(self) -> Any:  # a Connection for read(), a Reader for reader()
        conn, self._db._idle_reader = self._db._idle_reader, None
        if conn is None:
            conn = self._engine.connect()
        self._conn = conn
        if self._driver:
            return _SqliteReader(conn.connection.driver_connection, self._engine.dialect)
        return _SyncConnection(conn)

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        conn, self._conn = self._conn, None
        assert conn is not None
        if kind is not None or conn.invalidated or self._db._idle_reader is not None:
            conn.close()  # back to the pool, which resets it
            return
        if conn.in_transaction():
            conn.rollback()
        self._db._idle_reader = conn


class _AsyncpgRead:
    """`Database.read()` and `reader()` on PostgreSQL: a few autocommit connections are kept out of the
    pool between reads (at most half of it), as on SQLite: the checkout and return through SQLAlchemy's
    async layer cost more CPU than the query's own work. Reads beyond those take pooled connections."""

    __slots__ = ("_db", "_engine", "_driver", "_conn")

    def __init__(self, db: Database, engine: AsyncEngine, driver: bool) -> None:
        self._db = db
        self._engine = engine
        self._driver = driver
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> Any:  # a Connection for read(), a Reader for reader()
        kept = self._db._kept_readers
        conn = kept.pop() if kept else await self._engine.connect()
        self._conn = conn
        if not self._driver:
            return conn
        raw = await conn.get_raw_connection()
        return _AsyncpgReader(raw.driver_connection, self._engine.dialect)

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        conn, self._conn = self._conn, None
        assert conn is not None
        if kind is None and not conn.invalidated and len(self._db._kept_readers) < self._db._keep_readers:
            if conn.in_transaction():  # SQLAlchemy's own (autobegun by read()); autocommit: no round trip
                await conn.rollback()
            self._db._kept_readers.append(conn)
        else:
            await conn.close()  # back to the pool; after an error the pool resets or discards it


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
        # SQLite: one connection kept out of the pool for reads (_SqliteRead); PostgreSQL: a few (_AsyncpgRead).
        self._idle_reader: sqlalchemy.Connection | None = None
        self._kept_readers: list[AsyncConnection] = []
        self._keep_readers = max(1, pool_size // 2)
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

    def read(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        reading: contextlib.AbstractAsyncContextManager[Connection]
        if self._sync is not None:
            reading = _SqliteRead(self, self._sync, driver=False)
            return reading
        assert self._autocommit is not None
        reading = _AsyncpgRead(self, self._autocommit, driver=False)
        return reading

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

    def reader(self) -> contextlib.AbstractAsyncContextManager[Reader]:
        """The driver of a read connection, for `Prepared` statements: on SQLite the connection `read()`
        uses (_SqliteRead), on PostgreSQL an autocommit connection, as `read()` gives (_AsyncpgRead)."""
        reading: contextlib.AbstractAsyncContextManager[Reader]
        if self._sync is not None:
            reading = _SqliteRead(self, self._sync, driver=True)
            return reading
        assert self._autocommit is not None
        reading = _AsyncpgRead(self, self._autocommit, driver=True)
        return reading

    async def dispose(self) -> None:
        if self._idle_reader is not None:
            self._idle_reader.close()
            self._idle_reader = None
        while self._kept_readers:
            await self._kept_readers.pop().close()
        if self._sync is not None:
            self._sync.dispose()
        if self._async is not None:
            await self._async.dispose()
