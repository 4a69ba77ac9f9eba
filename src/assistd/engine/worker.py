"""The run worker: claims queued runs (any replica), executes them, expires and recovers the rest.

Claiming, the heartbeat that keeps a lease fresh, and the drain at shutdown are the leased queue's
(engine/queue.py), shared with ingestion. What is particular to runs is here: a run whose lease
lapsed (its process died, or stopped and handed it back) is recovered: `in_progress` runs fail with
`last_error`, `cancelling` runs become `cancelled`, `queued` runs are simply claimed again; runs past
`expires_at` that nobody executes expire; a cancel made through another replica reaches the run
executing here, at once when its replica's NOTIFY wakes this one (db/wakeups.py), at the next poll
otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid

from assistd.db import tables as t
from assistd.db.database import Database
from assistd.db.wakeups import Listener, RunQueued, Wakeup
from assistd.engine.events import Emitter, ExecutionOver, NullEmitter
from assistd.engine.executor import Executor
from assistd.engine.lifecycle import RunStatus
from assistd.engine.queue import JobKey, JobTable, LeasedQueue, QueueWorker
from assistd.stores import runs as run_store

log = logging.getLogger("assistd.worker")

RUNS = JobTable(table=t.runs, key=("id",), ready=lambda: t.runs.c.status == RunStatus.QUEUED.value, order_by="id")


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
            # A run whose lease went (its thread deleted through another replica, or recovered there)
            # is stopped through its signal, so that it closes itself and its stream ends properly.
            on_lost=lambda key: self.executor.signals.cancel(key[0]),
        )
        self.listener = Listener(db.url, self._woken, self._reconnected) if db.notify else None
        self._checks: set[asyncio.Task[None]] = set()

    @property
    def owner(self) -> str:
        return self.queue.owner

    def start(self) -> None:
        self.jobs.start()
        if self.listener is not None:
            self.listener.start()

    def notify(self) -> None:
        """A run was queued here: claim it now rather than at the next poll."""
        self.jobs.notify()

    async def stop(self, grace: float = 10.0) -> None:
        """Runs still executing after `grace` are cut and their leases handed back: another process (or
        this one, restarted) recovers them at once, as it would a crashed one's."""
        await self.jobs.stop(grace)  # cancels from other replicas still arrive while runs drain
        if self.listener is not None:
            await self.listener.stop()
        await asyncio.gather(*self._checks, return_exceptions=True)

    def spawn(self, run_id: str, emitter: Emitter | None = None) -> None:
        """Execute a run this worker holds the lease of (claimed, or created here for a stream)."""
        self.jobs.adopt((run_id,), self._execute(run_id, emitter or NullEmitter()))

    async def _claimed(self, key: JobKey) -> None:
        await self._execute(key[0], NullEmitter())

    async def _execute(self, run_id: str, emitter: Emitter) -> None:
        try:
            await self.executor.execute(run_id, self.owner, emitter)
        finally:
            await emitter.emit(ExecutionOver())

    async def maintain(self) -> None:
        """Expire runs past `expires_at` that nobody is executing; recover runs whose executor is gone;
        pass on cancels made through another replica to the runs executing here."""
        c = t.runs.c
        lifecycle = self.executor.lifecycle
        waiting = [RunStatus.QUEUED.value, RunStatus.REQUIRES_ACTION.value]
        expired = await self.queue.lapsed(c.status.in_(waiting) & (c.expires_at < int(time.time())))
        orphans = await self.queue.lapsed(c.status.in_([RunStatus.IN_PROGRESS.value, RunStatus.CANCELLING.value]))
        for (run_id,), _ in expired:
            await lifecycle.expire(run_id, NullEmitter())
        running = set(self.executor.signals.running())
        for (run_id,), row in orphans:
            if run_id in running:
                continue
            # At info: a recovered run that fails logs its own warning (lifecycle.fail), once.
            log.info("recovering an orphaned run", extra={"run_id": run_id, "status": row.status})
            await lifecycle.recover(run_id, row.status, NullEmitter())
        await self.pass_on_stops(running)

    async def pass_on_stops(self, run_ids: set[str]) -> None:
        """Stop those of `run_ids` executing here that were cancelled through another replica, or whose
        thread was deleted there (the row is gone): the row says so, whatever woke us."""
        running = run_ids & set(self.executor.signals.running())
        if not running:
            return
        async with self.db.read() as conn:
            status = await run_store.statuses(conn, running)
        for run_id in running:
            if status.get(run_id, RunStatus.CANCELLING) == RunStatus.CANCELLING:
                self.executor.signals.cancel(run_id)

    # --- wake-ups from other replicas (PostgreSQL NOTIFY) ----------------------------------------

    def _woken(self, wakeup: Wakeup) -> None:
        if isinstance(wakeup, RunQueued):
            self.notify()
        elif wakeup.run_id in self.executor.signals.running():
            self._check({wakeup.run_id})

    def _reconnected(self) -> None:
        """Wake-ups sent while there was no listener connection are lost: look at everything once."""
        self.notify()
        self._check(set(self.executor.signals.running()))

    def _check(self, run_ids: set[str]) -> None:
        task = asyncio.create_task(self._checked(run_ids), name="assistd-stop-check")
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def _checked(self, run_ids: set[str]) -> None:
        try:
            await self.pass_on_stops(run_ids)
        except Exception:  # the poll checks again
            log.exception("stop check failed", extra={"runs": sorted(run_ids)})
