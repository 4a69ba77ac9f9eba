"""The run worker: claims queued runs (any replica), executes them, expires and recovers the rest.

Claiming, the heartbeat that keeps a lease fresh, and the drain at shutdown are the leased queue's
(engine/queue.py), shared with ingestion. What is particular to runs is here: a run whose lease
lapsed (its process died, or stopped and handed it back) is recovered: an `in_progress` run is resumed
here from its last durable point (up to `resume_limit` times, then it fails with `last_error`),
`cancelling` runs become `cancelled`, `queued` runs are simply claimed again; runs past `expires_at`
that nobody executes expire; a cancel made through another replica reaches the run executing here,
at once when its replica's NOTIFY wakes this one (db/wakeups.py), at the next poll otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

from assistd.db import tables as t
from assistd.db.database import Connection, Database
from assistd.db.wakeups import Listener, RunQueued, Wakeup
from assistd.engine.events import Emitter, ExecutionOver, NullEmitter
from assistd.engine.executor import Executor
from assistd.engine.lifecycle import Recovery, RunStatus
from assistd.engine.queue import JobKey, JobTable, LeasedQueue, QueueWorker
from assistd.stores import runs as run_store
from assistd.stores.runs import RunRecord

log = logging.getLogger("assistd.worker")

RUNS = JobTable(table=t.runs, key=("id",), ready=lambda: t.runs.c.status == RunStatus.QUEUED.value, order_by="id")


def worker_id() -> str:
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def _no_emitter(run_id: str) -> Emitter:
    return NullEmitter()


class Worker:
    def __init__(
        self,
        db: Database,
        executor: Executor,
        *,
        concurrency: int,
        poll_seconds: float,
        owner: str | None = None,
        resume_limit: int = 2,
    ) -> None:
        self.db = db
        self.executor = executor
        self.resume_limit = resume_limit
        self._settling: set[asyncio.Task[None]] = set()
        self.queue = LeasedQueue(db, RUNS, owner=owner or worker_id(), lease_seconds=executor.lease_seconds)
        self.jobs = QueueWorker(
            self.queue,
            self._claimed,
            name="worker",
            concurrency=concurrency,
            poll_seconds=poll_seconds,
            maintain=self.maintain,
            on_lost=self._lost,
            claim=self._claim,
        )
        self._claimed_runs: dict[str, RunRecord] = {}  # claimed (so started), not yet executing
        self._offered_here: set[str] = set()  # runs queued here whose NOTIFY has not come back yet
        self.listener = Listener(db.url, self._woken, self._reconnected) if db.notify else None
        self._checks: set[asyncio.Task[None]] = set()
        # The emitter of a run this worker claims or resumes (the app sets it: a background response keeps
        # its stream events); by default its events go nowhere.
        self.emitter_for: Callable[[str], Awaitable[Emitter]] = _no_emitter

    @property
    def owner(self) -> str:
        return self.queue.owner

    def start(self) -> None:
        self.jobs.start()
        if self.listener is not None:
            self.listener.start()

    def notify(self) -> None:
        """Runs were queued here: look for them now rather than at the next poll."""
        self.jobs.notify()

    def offer(self, run_id: str) -> None:
        """This run was queued here: claim it now (no query for queued runs first)."""
        if self.listener is not None:
            self._offered_here.add(run_id)  # its own NOTIFY comes back: nothing more to do then
        self.jobs.offer((run_id,))

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

    async def _claim(self, keys: Sequence[JobKey]) -> list[JobKey]:
        """Take queued runs: each one's lease and queued -> in_progress in one statement (the lifecycle's)."""
        taken: list[JobKey] = []
        for key in keys:
            run = await self.executor.lifecycle.claim(key[0], self.queue.lease(), RUNS.lease_free(time.time()))
            if run is not None:
                self._claimed_runs[key[0]] = run
                taken.append(key)
        return taken

    async def _claimed(self, key: JobKey) -> None:
        claimed = self._claimed_runs.pop(key[0], None)
        await self._execute(key[0], await self.emitter_for(key[0]), claimed=claimed)

    async def _execute(
        self, run_id: str, emitter: Emitter, *, resumed: bool = False, claimed: RunRecord | None = None
    ) -> None:
        key = (run_id,)
        try:
            # A run that ends with its answer, or waits for tool outputs, hands its lease back in the same
            # UPDATE: nothing to release after.
            await self.executor.execute(
                run_id,
                self.owner,
                emitter,
                resumed=resumed,
                released=lambda: self._released(key),
                claimed=claimed,
            )
        finally:
            await emitter.emit(ExecutionOver())

    def _released(self, key: JobKey) -> None:
        """The run's end (or its wait for tool outputs) handed its lease back: no heartbeat renews it, the
        worker releases nothing after it."""
        self.queue.completed.add(key)
        self.queue.released.add(key)

    def _lost(self, key: JobKey) -> bool:
        """The heartbeat found a run executing here no longer held by this process: settle it (below)."""
        if key[0] not in self.executor.signals.running():
            return False
        task = asyncio.create_task(self._settle_lost(key), name=f"worker-lost-{key[0]}")
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        return True

    async def _settle_lost(self, key: JobKey) -> None:
        """A run whose thread was deleted through another replica (its row gone), or that was cancelled,
        is stopped through its signal, so that it closes itself and its stream ends properly. A run
        another process took over (this one stalled past its lease, and the run was resumed there) is
        cut where it stands: it must write nothing more, its new executor owns its rows."""
        run_id = key[0]
        try:
            async with self.db.read() as conn:
                found = await run_store.holder(conn, run_id)
        except Exception:
            log.exception("could not read a lost run", extra={"run_id": run_id})
            found = None
        if found is not None and found[0] != RunStatus.CANCELLING and found[1] not in (None, self.owner):
            self.jobs.cut(key)
        else:
            self.executor.signals.cancel(run_id)

    def _take(self, run_id: str) -> Callable[[Connection], Awaitable[bool]]:
        """Takes a lapsed run's lease, in the recovering transaction, while it is still to recover."""
        recoverable = t.runs.c.status.in_([RunStatus.IN_PROGRESS.value, RunStatus.CANCELLING.value])

        async def take(conn: Connection) -> bool:
            return await self.queue.take_lapsed(conn, (run_id,), recoverable)

        return take

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
            if row.status == RunStatus.IN_PROGRESS and self.jobs.free_slots() <= 0:
                continue  # no room to resume it here: another replica (or a later pass) does
            # At info: a recovered run that fails logs its own warning (lifecycle), once.
            log.info("recovering an orphaned run", extra={"run_id": run_id, "status": row.status})
            recovery = await lifecycle.recover(run_id, self._take(run_id), self.resume_limit, NullEmitter())
            if recovery == Recovery.RESUMED:
                self.jobs.adopt((run_id,), self._execute(run_id, await self.emitter_for(run_id), resumed=True))
            elif recovery == Recovery.ENDED:
                await self.queue.release((run_id,))
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
            if wakeup.run_id in self._offered_here:
                self._offered_here.discard(wakeup.run_id)  # queued here, and offered to this worker already
            else:
                self.jobs.offer((wakeup.run_id,))  # queued by another replica
        elif wakeup.run_id in self.executor.signals.running():
            self._check({wakeup.run_id})

    def _reconnected(self) -> None:
        """Wake-ups sent while there was no listener connection are lost: look at everything once."""
        self._offered_here.clear()
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
