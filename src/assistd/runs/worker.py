"""The run worker: claims queued runs (any replica), executes them, expires and recovers the rest.

Claiming, the heartbeat that keeps a lease fresh, and the drain at shutdown are the leased queue's
(engine/queue.py), shared with ingestion. What is particular to runs is here: a run whose lease
lapsed (its process died, or stopped and handed it back) is recovered: `in_progress` runs fail with
`last_error`, `cancelling` runs become `cancelled`, `queued` runs are simply claimed again; runs past
`expires_at` that nobody executes expire; a cancel made through another replica reaches the run
executing here.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

from sqlalchemy import select

from assistd.db import tables as t
from assistd.db.database import Database
from assistd.engine.queue import JobKey, JobTable, LeasedQueue, QueueWorker
from assistd.runs.events import EXECUTION_OVER, EventSink, NullSink
from assistd.runs.executor import Executor

log = logging.getLogger("assistd.worker")

INTERRUPTED = "The run was interrupted: the server executing it stopped. Create a new run to continue."

RUNS = JobTable(table=t.runs, key=("id",), ready=lambda: t.runs.c.status == "queued", order_by="id")


def worker_id() -> str:
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    def __init__(
        self,
        db: Database,
        executor: Executor,
        *,
        concurrency: int,
        poll_seconds: float,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.executor = executor
        self.queue = LeasedQueue(db, RUNS, owner=owner or worker_id(), lease_seconds=executor.lease_seconds)
        self.jobs = QueueWorker(
            self.queue,
            self._claimed,
            name="worker",
            concurrency=concurrency,
            poll_seconds=poll_seconds,
            maintain=self.maintain,
        )

    @property
    def owner(self) -> str:
        return self.queue.owner

    def start(self) -> None:
        self.jobs.start()

    def notify(self) -> None:
        """A run was queued here: claim it now rather than at the next poll."""
        self.jobs.notify()

    async def stop(self, grace: float = 10.0) -> None:
        """Runs still executing after `grace` are cut and their leases handed back: another process (or
        this one, restarted) recovers them at once, as it would a crashed one's."""
        await self.jobs.stop(grace)

    def spawn(self, run_id: str, sink: EventSink | None = None) -> None:
        """Execute a run this worker holds the lease of (claimed, or created here for a stream)."""
        self.jobs.adopt((run_id,), self._execute(run_id, sink or NullSink()))

    async def _claimed(self, key: JobKey) -> None:
        await self._execute(key[0], NullSink())

    async def _execute(self, run_id: str, sink: EventSink) -> None:
        try:
            await self.executor.execute(run_id, self.owner, sink)
        finally:
            await sink.emit(EXECUTION_OVER, {})

    async def maintain(self) -> None:
        """Expire runs past `expires_at` that nobody is executing; recover runs whose executor is gone;
        pass on cancels made through another replica to the runs executing here."""
        c = t.runs.c
        expired = await self.queue.lapsed(
            (c.status.in_(["queued", "requires_action"])) & (c.expires_at < int(time.time()))
        )
        orphans = await self.queue.lapsed(c.status.in_(["in_progress", "cancelling"]))
        for (run_id,), _ in expired:
            await self.executor.end_early(run_id, NullSink(), "expired")
        running = set(self.executor.signals.running())
        for (run_id,), row in orphans:
            if run_id in running:
                continue
            # At info: a recovered run that fails logs its own warning (executor.fail), once.
            log.info("recovering an orphaned run", extra={"run_id": run_id, "status": row.status})
            if row.status == "cancelling":
                await self.executor.end_early(run_id, NullSink(), "cancelled")
            else:
                await self.executor.fail(run_id, NullSink(), "server_error", INTERRUPTED)
        if running:
            async with self.db.read() as conn:
                rows = (await conn.execute(select(c.id, c.status).where(c.id.in_(running)))).all()
            status = {row.id: row.status for row in rows}
            for run_id in running:
                # Cancelled through another replica, or its thread deleted there (the row is gone).
                if status.get(run_id, "cancelling") == "cancelling":
                    self.executor.signals.cancel(run_id)
