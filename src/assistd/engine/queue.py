"""One leased queue for every kind of background job: runs and vector-store file ingestion.

A job is a row. A process claims it with a compare-and-set on its lease columns, keeps the lease
fresh with a heartbeat while it works, and releases it when done. A process that dies leaves a lease
that lapses; what happens to such rows is the job kind's business: a lapsed ingestion is simply
claimable again, a lapsed run is recovered by the run worker's `maintain` (failed or cancelled).

On stop the worker claims nothing more, lets its jobs go on for a grace period (the heartbeat still
beats), cuts the rest, and hands every lease it still holds back at once, so that another process
(or this one, restarted) need not wait for them to lapse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, or_, select, true, update
from sqlalchemy.sql.elements import ColumnClause

from assistd.db.database import Connection, Database

log = logging.getLogger("assistd.queue")

JobKey = tuple[str, ...]
"""A job's primary key values, in the order of `JobTable.key`."""


@dataclass(frozen=True)
class JobTable:
    """Where one kind of job lives: its table, key columns, lease columns, and which rows are work.

    `ready` is the condition on a row's own state that makes it work to do (`status = 'queued'`);
    a row is claimable when it is ready and nobody holds a live lease on it.
    """

    table: Table
    key: tuple[str, ...]
    ready: Callable[[], ColumnElement[bool]]
    order_by: str
    lease_owner: str = "lease_owner"
    lease_expires_at: str = "lease_expires_at"

    def column(self, name: str) -> ColumnClause[Any]:
        column: ColumnClause[Any] = self.table.c[name]
        return column

    def match(self, key: JobKey) -> ColumnElement[bool]:
        return and_(*(self.column(name) == value for name, value in zip(self.key, key, strict=True)))

    def lease_free(self, now: float) -> ColumnElement[bool]:
        """Nobody holds the row: never leased, released, or its holder's lease lapsed."""
        return or_(self.column(self.lease_owner).is_(None), self.column(self.lease_expires_at) < now)

    def held_by(self, owner: str) -> ColumnElement[bool]:
        return self.column(self.lease_owner) == owner

    def claimable(self, now: float) -> ColumnElement[bool]:
        return and_(self.ready(), self.lease_free(now))


class LeasedQueue:
    """Claim, renew, complete and release jobs of one table on behalf of one owner (a process)."""

    def __init__(self, db: Database, jobs: JobTable, *, owner: str, lease_seconds: float) -> None:
        self.db = db
        self.jobs = jobs
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.completed: set[JobKey] = set()  # completed by jobs still winding down: their lease is gone
        # Jobs whose outcome handed their lease back in the statement that wrote it (a run's end,
        # engine/worker.py): nothing is left to release after them.
        self.released: set[JobKey] = set()

    def lease(self) -> dict[str, Any]:
        """Column values for a row created already held by this owner (a run executed for a stream)."""
        return {self.jobs.lease_owner: self.owner, self.jobs.lease_expires_at: time.time() + self.lease_seconds}

    async def candidates(self, limit: int) -> list[JobKey]:
        """Claimable jobs, oldest first. Another process may claim them first: `claim` decides."""
        key_columns = [self.jobs.column(name) for name in self.jobs.key]
        query = (
            select(*key_columns)
            .where(self.jobs.claimable(time.time()))
            .order_by(self.jobs.column(self.jobs.order_by))
            .limit(limit)
        )
        async with self.db.read() as conn:
            return [tuple(str(value) for value in row) for row in (await conn.execute(query)).all()]

    async def claim(self, keys: Sequence[JobKey]) -> list[JobKey]:
        """Take the leases of those of `keys` still claimable (compare-and-set), in one statement: the keys
        taken, each by exactly one process. One statement for a batch, not one transaction per job: a
        burst of 200 queued runs waited seconds for their claims one after the other (bench_stream's
        polled burst), each behind the pool's other work."""
        if not keys:
            return []
        key_columns = [self.jobs.column(name) for name in self.jobs.key]
        async with self.db.write() as conn:
            result = await conn.execute(
                update(self.jobs.table)
                .where(or_(*(self.jobs.match(key) for key in keys)), self.jobs.claimable(time.time()))
                .values(self.lease())
                .returning(*key_columns)
            )
            taken = {tuple(str(value) for value in row) for row in result.all()}
        return [key for key in keys if key in taken]

    async def renew(self, keys: Sequence[JobKey]) -> list[JobKey]:
        """Extend the leases this owner holds on `keys`; returns the keys it no longer holds."""
        lost: list[JobKey] = []
        if not keys:
            return lost
        expires = time.time() + self.lease_seconds
        async with self.db.write() as conn:
            for key in keys:
                result = await conn.execute(
                    update(self.jobs.table)
                    .where(self.jobs.match(key), self.jobs.held_by(self.owner))
                    .values({self.jobs.lease_expires_at: expires})
                )
                if not result.rowcount:
                    lost.append(key)
        return lost

    async def complete(self, conn: Connection, key: JobKey, **values: Any) -> bool:
        """Write a job's outcome and end the lease, only while this owner holds it and the job is still
        ready (not cancelled or taken over meanwhile). True when it was written."""
        result = await conn.execute(
            update(self.jobs.table)
            .where(self.jobs.match(key), self.jobs.held_by(self.owner), self.jobs.ready())
            .values({self.jobs.lease_owner: None, self.jobs.lease_expires_at: None, **values})
        )
        if result.rowcount:
            self.completed.add(key)
        return bool(result.rowcount)

    async def release(self, key: JobKey) -> None:
        """Give the lease up after the job ran. A row that is ready work again keeps it: it was queued
        anew, held by this owner, for a next execution (a run's tool outputs submitted on a stream).
        Work queued anew for any worker carries no lease (a run waiting for tool outputs holds none, and
        outputs not on a stream queue it free): nothing of this owner's is left on it to wait for."""
        async with self.db.write() as conn:
            await conn.execute(
                update(self.jobs.table)
                .where(self.jobs.match(key), self.jobs.held_by(self.owner), ~self.jobs.ready())
                .values({self.jobs.lease_owner: None, self.jobs.lease_expires_at: None})
            )

    async def release_all(self) -> int:
        """Hand back every lease this owner still holds; returns how many."""
        async with self.db.write() as conn:
            result = await conn.execute(
                update(self.jobs.table)
                .where(self.jobs.held_by(self.owner))
                .values({self.jobs.lease_owner: None, self.jobs.lease_expires_at: None})
            )
        return int(result.rowcount)

    async def take_lapsed(self, conn: Connection, key: JobKey, where: ColumnElement[bool]) -> bool:
        """Take over the lease of a row matching `where` whose holder's lease lapsed (its process died),
        in the caller's transaction: True for exactly one process. The job kind then carries the job on
        (a run resumed where its dead executor left it). A row another transaction has locked is left
        for a later pass (SKIP LOCKED on PostgreSQL): a process stopped inside a transaction must not
        stall the recovering worker's whole loop."""
        now = time.time()
        condition = and_(self.jobs.match(key), where, self.jobs.lease_free(now))
        key_columns = [self.jobs.column(name) for name in self.jobs.key]
        locked = select(*key_columns).where(condition).with_for_update(skip_locked=True)
        if (await conn.execute(locked)).first() is None:
            return False
        result = await conn.execute(update(self.jobs.table).where(condition).values(self.lease()))
        return bool(result.rowcount)

    async def lapsed(self, where: ColumnElement[bool] | None = None) -> list[tuple[JobKey, Any]]:
        """Rows matching `where` that nobody holds a live lease on (their process died, or never took
        them), with the row itself: what the job kind's recovery looks at."""
        query = select(self.jobs.table).where(where if where is not None else true(), self.jobs.lease_free(time.time()))
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [(tuple(str(getattr(row, name)) for name in self.jobs.key), row) for row in rows]


JobRunner = Callable[[JobKey], Coroutine[Any, Any, None]]


class QueueWorker:
    """Claims jobs of one queue, up to `concurrency` at once, runs them, keeps their leases alive.

    It looks for work when `notify()` is called and at least every `poll_seconds`; `maintain` (the
    job kind's recovery of lapsed leases, expiry, ...) runs at most once per `poll_seconds` before
    claiming.
    """

    def __init__(
        self,
        queue: LeasedQueue,
        run: JobRunner,
        *,
        name: str,
        concurrency: int,
        poll_seconds: float,
        maintain: Callable[[], Awaitable[None]] | None = None,
        on_lost: Callable[[JobKey], bool] | None = None,
        claim: Callable[[Sequence[JobKey]], Awaitable[list[JobKey]]] | None = None,
    ) -> None:
        self.queue = queue
        # How a job is taken: the queue's compare-and-set on the lease, or the job kind's (a run's claim
        # starts it too, engine/worker.py).
        self.claim = claim or queue.claim
        self._offered: list[JobKey] = []  # jobs queued by this process, to claim without looking for them
        # Offered jobs whose previous job here was still winding down (a run's tool outputs submitted the
        # moment it asked for them): offered again once that job is done, not left for the poll.
        self._after: set[JobKey] = set()
        self._scan = True  # look for claimable jobs at the next iteration (not only the offered ones)
        self.on_lost = on_lost
        self.run = run
        self.name = name
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.maintain = maintain
        self._jobs: dict[JobKey, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._next_maintenance = 0.0

    @property
    def owner(self) -> str:
        return self.queue.owner

    def start(self) -> None:
        self._loop = asyncio.create_task(self._poll(), name=f"assistd-{self.name}")
        self._heartbeat = asyncio.create_task(self._beat(), name=f"assistd-{self.name}-heartbeat")

    def notify(self) -> None:
        """Work was queued here: look now rather than at the next poll."""
        self._scan = True
        self._wake.set()

    def offer(self, key: JobKey) -> None:
        """This job was queued here: claim it now, without a query for claimable jobs first."""
        self._offered.append(key)
        self._wake.set()

    def running(self) -> list[JobKey]:
        return list(self._jobs)

    def free_slots(self) -> int:
        """How many more jobs this worker may run now."""
        return self.concurrency - len(self._jobs)

    def cut(self, key: JobKey) -> None:
        """Stop a job where it stands, writing nothing more: its row was taken over by another process."""
        task = self._jobs.get(key)
        if task is not None and not task.done():
            log.warning("the job was taken over elsewhere: cut here", extra={"queue": self.name, "job": key})
            task.cancel()

    def adopt(self, key: JobKey, job: Coroutine[Any, Any, None]) -> None:
        """Run `job` for a row whose lease this owner already holds (claimed, or created held). A job
        still finishing for the same row is superseded: it leaves the lease to this one."""
        task = asyncio.create_task(self._run_job(key, job), name=f"{self.name}-{'-'.join(key)}")
        self._jobs[key] = task
        task.add_done_callback(lambda _: self._done(key, task))

    async def stop(self, grace: float) -> None:
        """Claim nothing more; give running jobs `grace` seconds; cut the rest; hand back every lease."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        tasks = list(self._jobs.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if pending:
                log.info("jobs cut at shutdown, handed back", extra={"queue": self.name, "jobs": len(pending)})
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        try:
            await self.queue.release_all()
        except Exception:  # the leases lapse on their own then
            log.exception("could not hand back leases at shutdown", extra={"queue": self.name})

    async def _poll(self) -> None:
        while True:
            try:
                await self._iteration()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s loop iteration failed", self.name)
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            except TimeoutError:
                self._scan = True  # the poll
            self._wake.clear()

    async def _iteration(self) -> None:
        if self.maintain is not None and time.monotonic() >= self._next_maintenance:
            self._next_maintenance = time.monotonic() + self.poll_seconds
            await self.maintain()
        offered, self._offered = self._offered, []
        scan, self._scan = self._scan, False
        free = self.concurrency - len(self._jobs)
        if free <= 0:
            self._scan = self._scan or bool(offered)  # they wait, claimable: a freed slot looks for them
            return
        # Jobs this process runs are never claimed again, even if a heartbeat came late and their lease lapsed.
        wanted = [key for key in dict.fromkeys(offered) if key not in self._jobs]
        self._after.update(key for key in offered if key in self._jobs)
        if len(wanted) > free:
            self._scan = True  # the rest wait, claimable: the next iteration looks for them
            wanted = wanted[:free]
        if scan and len(wanted) < free:
            found = await self.queue.candidates(free + len(self._jobs))
            wanted += [key for key in found if key not in self._jobs and key not in wanted][: free - len(wanted)]
        for key in await self.claim(wanted):
            self.adopt(key, self.run(key))

    async def _beat(self) -> None:
        """Renew every held lease each third of its length; a job whose lease was taken over is stopped."""
        while True:
            await asyncio.sleep(self.queue.lease_seconds / 3)
            try:
                held = [key for key, task in self._jobs.items() if not task.done() and key not in self.queue.completed]
                lost = await self.queue.renew(held)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lease renewal failed", extra={"queue": self.name})
                continue
            for key in lost:
                task = self._jobs.get(key)
                if task is not None and not task.done() and key not in self.queue.completed:
                    # The job kind may stop its job itself (a run closes itself, e.g. as deleted with its
                    # thread); otherwise the job is cut where it stands.
                    if self.on_lost is not None and self.on_lost(key):
                        log.info(
                            "the job is no longer held here: it stops itself", extra={"queue": self.name, "job": key}
                        )
                    else:
                        log.warning("lease lost: the job is no longer ours", extra={"queue": self.name, "job": key})
                        task.cancel()

    async def _run_job(self, key: JobKey, job: Coroutine[Any, Any, None]) -> None:
        released = False
        try:
            await job
        except Exception:
            log.exception("job failed", extra={"queue": self.name, "job": key})
        finally:
            released = key in self.queue.released
            self.queue.released.discard(key)
            self.queue.completed.discard(key)
        # Not on cancellation: a job cut at shutdown is handed back by `stop`, a lost one is not ours.
        if self._jobs.get(key) is not asyncio.current_task():
            return  # superseded by a newer job for the same row
        if released:
            return  # its outcome handed the lease back already
        try:
            await self.queue.release(key)
        except Exception:  # it lapses on its own then
            log.exception("could not release a lease", extra={"queue": self.name, "job": key})

    def _done(self, key: JobKey, task: asyncio.Task[None]) -> None:
        full = len(self._jobs) >= self.concurrency
        if self._jobs.get(key) is task:
            del self._jobs[key]
            if key in self._after:
                self._after.discard(key)
                self.offer(key)
        if full:
            # A slot is free: look for work left waiting. With slots free all along, queued work woke the
            # loop when it came (`notify`, `offer`, a NOTIFY from another replica) or waits for the poll.
            self.notify()
