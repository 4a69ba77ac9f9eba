"""The worker: claims queued runs (any replica), executes them, expires and recovers the rest.

A claim is a compare-and-set on the run's lease; the executor's heartbeat keeps the lease fresh.
A run whose lease lapses (its process died) is recovered here: `in_progress` runs fail with
`last_error`, `cancelling` runs become `cancelled`, `queued` runs are simply claimed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid

from sqlalchemy import select

from assistd.db import tables as t
from assistd.db.database import Database
from assistd.runs import store
from assistd.runs.control import poll_loop
from assistd.runs.events import EXECUTION_OVER, EventSink, NullSink
from assistd.runs.executor import Executor

log = logging.getLogger("assistd.worker")

INTERRUPTED = "The run was interrupted: the server executing it stopped. Create a new run to continue."


def worker_id() -> str:
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    def __init__(self, db: Database, executor: Executor, *, concurrency: int, poll_seconds: float) -> None:
        self.db = db
        self.executor = executor
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.owner = worker_id()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._next_maintenance = 0.0

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="assistd-worker")

    def notify(self) -> None:
        """A run was queued here: claim it now rather than at the next poll."""
        self._wake.set()

    async def stop(self, grace: float = 10.0) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            # Runs cut off here keep their lease until it lapses; another process recovers them.
            await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self) -> None:
        await poll_loop(self._iteration, self._wake, self.poll_seconds, "worker")

    async def _iteration(self) -> None:
        if time.monotonic() >= self._next_maintenance:
            self._next_maintenance = time.monotonic() + self.poll_seconds
            await self.maintain()
        await self._claim_some()

    async def _claim_some(self) -> None:
        free = self.concurrency - len(self._tasks)
        if free <= 0:
            return
        async with self.db.read() as conn:
            candidates = (
                (
                    await conn.execute(
                        select(t.runs.c.id).where(store.claimable(time.time())).order_by(t.runs.c.id).limit(free)
                    )
                )
                .scalars()
                .all()
            )
        for run_id in candidates:
            async with self.db.write() as conn:
                claimed = await store.claim(conn, run_id, self.owner, self.executor.lease_seconds)
            if claimed:
                self.spawn(run_id)

    def spawn(self, run_id: str, sink: EventSink | None = None) -> None:
        """Execute a run this worker holds the lease of (claimed, or created here for a stream)."""
        task = asyncio.create_task(self._execute(run_id, sink or NullSink()), name=f"run-{run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    async def _execute(self, run_id: str, sink: EventSink) -> None:
        try:
            await self.executor.execute(run_id, self.owner, sink)
        finally:
            await sink.emit(EXECUTION_OVER, {})

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()  # a slot is free

    async def maintain(self) -> None:
        """Expire runs past `expires_at` that nobody is executing; recover runs whose executor died."""
        now = time.time()
        async with self.db.read() as conn:
            expired = (
                (
                    await conn.execute(
                        select(t.runs.c.id).where(
                            t.runs.c.status.in_(["queued", "requires_action"]),
                            t.runs.c.expires_at < int(now),
                            (t.runs.c.lease_owner.is_(None)) | (t.runs.c.lease_expires_at < now),
                        )
                    )
                )
                .scalars()
                .all()
            )
            orphans = (
                await conn.execute(
                    select(t.runs.c.id, t.runs.c.status).where(
                        t.runs.c.status.in_(["in_progress", "cancelling"]),
                        (t.runs.c.lease_owner.is_(None)) | (t.runs.c.lease_expires_at < now),
                    )
                )
            ).all()
        for run_id in expired:
            await self.executor.end_early(run_id, NullSink(), "expired")
        for orphan in orphans:
            if orphan.id in self.executor.signals.running():
                continue
            # At info: a recovered run that fails logs its own warning (executor.fail), once.
            log.info("recovering an orphaned run", extra={"run_id": orphan.id, "status": orphan.status})
            if orphan.status == "cancelling":
                await self.executor.end_early(orphan.id, NullSink(), "cancelled")
            else:
                await self.executor.fail(orphan.id, NullSink(), "server_error", INTERRUPTED)
