"""The run lifecycle: the status enum, the table of legal transitions, and the operations.

This module is the only writer of a run's status. Each operation is ONE compare-and-set UPDATE
(`... WHERE id=? AND status IN (sources)`, the sources read off the table) so that two processes
can never both advance a run; the operations that end a run close its open steps and messages in
the same transaction, and emit the terminal events (engine/events.py) after it commits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from sqlalchemy import ColumnElement, Update, case, func, update

from assistd.db import tables as t
from assistd.db.database import Connection, Database
from assistd.db.wakeups import RunStop, announce
from assistd.engine.events import Emitter, MessageClosed, RunChanged, StepClosed
from assistd.engine.signals import RunSignals
from assistd.errors import InvalidRequest
from assistd.observe import NO_OBSERVER, Observer
from assistd.stores import messages as message_store
from assistd.stores import runs as run_store
from assistd.stores.messages import MessageRecord
from assistd.stores.runs import Json, RunRecord, StepRecord

log = logging.getLogger("assistd.runs")

INTERRUPTED = "The run was interrupted: the server executing it stopped. Create a new run to continue."
RESUME_LIMIT = (
    "The run was interrupted {times} times: the server executing it stopped each time, and a run is resumed "
    "at most {limit} times (ASSISTD_RUN_RESUME_LIMIT). Create a new run to continue."
)


class RunStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    REQUIRES_ACTION = "requires_action"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    FAILED = "failed"
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"
    EXPIRED = "expired"


S = RunStatus
ACTIVE: frozenset[RunStatus] = frozenset({S.QUEUED, S.IN_PROGRESS, S.REQUIRES_ACTION, S.CANCELLING})
TERMINAL: frozenset[RunStatus] = frozenset({S.CANCELLED, S.FAILED, S.COMPLETED, S.INCOMPLETE, S.EXPIRED})

# The statuses in which nobody executes a run: a final one, or a wait for tool outputs (its stream ends).
ENDS_EXECUTION: frozenset[RunStatus] = TERMINAL | {S.REQUIRES_ACTION}

# status -> the statuses it may move to. A cancel that arrives as the run completes loses: the run
# still completes from `cancelling`. Terminal statuses move nowhere.
TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    S.QUEUED: frozenset({S.IN_PROGRESS, S.CANCELLING, S.CANCELLED, S.EXPIRED, S.FAILED}),
    S.IN_PROGRESS: frozenset(
        {S.REQUIRES_ACTION, S.CANCELLING, S.CANCELLED, S.EXPIRED, S.COMPLETED, S.INCOMPLETE, S.FAILED}
    ),
    S.REQUIRES_ACTION: frozenset({S.QUEUED, S.CANCELLING, S.CANCELLED, S.EXPIRED}),
    S.CANCELLING: frozenset({S.CANCELLED, S.EXPIRED, S.COMPLETED, S.INCOMPLETE, S.FAILED}),
    **{status: frozenset() for status in TERMINAL},
}

StopReason = Literal["cancelled", "expired"]
# A hook an operation runs first in its transaction: the parts (messages, steps) the caller writes with it.
Parts = Callable[[Connection], Awaitable[None]]
# The events that show what `Parts` wrote, sent once its transaction commits (before the run's own event).
Shown = Callable[[], Awaitable[None]]
# Takes a lapsed run's lease in the recovering transaction: True for exactly one process (engine/queue.py).
Take = Callable[[Connection], Awaitable[bool]]


class Recovery(StrEnum):
    """What `Lifecycle.recover` did with a run whose executor is gone."""

    NOT_OURS = "not_ours"  # another process took it first (or it is no longer lapsed)
    RESUMED = "resumed"  # still in_progress, held by the caller, its unfinished parts discarded: execute it
    ENDED = "ended"  # closed: cancelled, expired, or failed (resume limit)


def allowed(source: str, target: RunStatus) -> bool:
    return target in TRANSITIONS.get(RunStatus(source), frozenset())


def sources(target: RunStatus) -> list[RunStatus]:
    """Every status that may move to `target`: the WHERE of its compare-and-set."""
    return [status for status, targets in TRANSITIONS.items() if target in targets]


async def move(
    conn: Connection, run_id: str, target: RunStatus, *, attempt: int | None = None, **values: object
) -> bool:
    """The one compare-and-set, and the only UPDATE of runs.status in the code base. True when the run
    moved; False when it was in no status that leads to `target` (another process advanced it first,
    or the move is illegal). `attempt`: the executor's fence, the run's `resumes` when it started
    executing it; a run resumed elsewhere since (the executor stalled past its lease) does not move."""
    result = await conn.execute(_compare_and_set(run_id, target, attempt, values))
    return bool(result.rowcount)


async def move_returning(
    conn: Connection,
    run_id: str,
    target: RunStatus,
    values: dict[str, object],
    *,
    attempt: int | None = None,
    where: ColumnElement[bool] | None = None,
) -> RunRecord | None:
    """`move`, returning the run as it now is (the same UPDATE with RETURNING: one statement, no read
    after it); None when it did not move. `where`: a further condition (a worker's claim: no live lease)."""
    statement = _compare_and_set(run_id, target, attempt, values, where).returning(*t.runs.c)
    row = (await conn.execute(statement)).first()
    return None if row is None else RunRecord.from_row(row)


def _compare_and_set(
    run_id: str,
    target: RunStatus,
    attempt: int | None,
    values: dict[str, object],
    where: ColumnElement[bool] | None = None,
) -> Update:
    fence = [t.runs.c.resumes == attempt] if attempt is not None else []
    extra = [where] if where is not None else []
    return (
        update(t.runs)
        .where(t.runs.c.id == run_id, t.runs.c.status.in_([status.value for status in sources(target)]), *fence, *extra)
        .values(status=target.value, **values)
    )


async def active_run_id(conn: Connection, thread_id: str) -> str | None:
    """The thread's active run, if any (a thread has at most one)."""
    return await run_store.run_in_status(conn, thread_id, [status.value for status in ACTIVE])


async def lock_for_run(
    conn: Connection, project_id: str, thread_id: str, *, one_writer: bool
) -> run_store.LockedThread | None:
    """The thread locked for a new run (PostgreSQL; SQLite has one writer), with its active run if any;
    None when the project has no such thread. One statement when `one_writer` (SQLite)."""
    active = [status.value for status in ACTIVE]
    return await run_store.lock_thread_for_run(conn, project_id, thread_id, active, one_writer=one_writer)


@dataclass(frozen=True, slots=True)
class Closed:
    """What an ending transaction did: whether the run moved, the run after it, the parts it closed."""

    moved: bool
    run: RunRecord | None
    steps: tuple[StepRecord, ...] = ()
    messages: tuple[MessageRecord, ...] = ()

    async def announce(self, emitter: Emitter) -> None:
        """The open messages and steps end with the run: the stream says so before the run's last event."""
        if not self.moved or self.run is None:
            return
        for message in self.messages:
            await emitter.emit(MessageClosed(message))
        for step in self.steps:
            await emitter.emit(StepClosed(step))
        await emitter.emit(RunChanged(self.run))


async def _nothing(conn: Connection) -> None:
    return None


async def _none_shown() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Release:
    """The lease of the executor ending a run (`owner`), handed back by the UPDATE that ends it; `done` is
    told once that commits (engine/worker.py: the worker then has no lease of the run to hand back)."""

    owner: str
    done: Callable[[], None]

    def values(self) -> dict[str, object]:
        held = t.runs.c.lease_owner == self.owner
        return {
            "lease_owner": case((held, None), else_=t.runs.c.lease_owner),
            "lease_expires_at": case((held, None), else_=t.runs.c.lease_expires_at),
        }


class Lifecycle:
    """The operations, over the database. `signals` reaches runs executing in this process."""

    def __init__(self, db: Database, signals: RunSignals, observer: Observer = NO_OBSERVER) -> None:
        self.db = db
        self.signals = signals
        self.observer = observer  # told each final status this process commits (assistd/observe.py)

    async def start(self, run_id: str, emitter: Emitter) -> RunRecord | None:
        """queued -> in_progress. Returns the run when this process now executes it; None when it does
        not (gone, taken, or already ended: a run found `cancelling` is closed as cancelled here). One
        statement when it starts (the compare-and-set returns the run); `started_at` is kept from a
        first execution (a run queued again by its tool outputs)."""
        started_at = func.coalesce(t.runs.c.started_at, int(time.time()))
        async with self.db.write() as conn:
            run = await move_returning(conn, run_id, S.IN_PROGRESS, {"started_at": started_at})
            found = run or await run_store.load_run(conn, run_id)
        if run is None:
            if found is not None and found.status == S.CANCELLING:
                await self.stop(run_id, "cancelled", emitter)
            return None
        await emitter.emit(RunChanged(run))
        return run

    async def claim(self, run_id: str, lease: dict[str, object], free: ColumnElement[bool]) -> RunRecord | None:
        """queued -> in_progress for the worker that takes the run, its `lease` written by the same
        compare-and-set (when `free`: nobody holds a live lease): the claim and `start` in one statement.
        The run when this worker now executes it (the caller emits its `RunChanged`), else None."""
        started_at = func.coalesce(t.runs.c.started_at, int(time.time()))
        async with self.db.write() as conn:
            return await move_returning(conn, run_id, S.IN_PROGRESS, {"started_at": started_at, **lease}, where=free)

    async def require_action(
        self,
        run_id: str,
        required: Json,
        usage: dict[str, int],
        emitter: Emitter,
        parts: Parts = _nothing,
        attempt: int | None = None,
        release: Release | None = None,
    ) -> None:
        """in_progress -> requires_action, with the tool calls `parts` stores; a run cancelled meanwhile
        ends cancelled instead. `attempt`: the executor's fence (see `move`), on every operation that
        an executor ends or pauses its run with. `release`: the executor's lease ends in the same UPDATE,
        as at `finish`: nobody executes a run that waits for its tool outputs, and outputs submitted
        before its worker's job winds down must find the run free to claim (a lease left on it kept
        every worker off the queued run until the lease lapsed)."""
        values: dict[str, object] = {"required_action": required, "usage": usage}
        if release is not None:
            values |= release.values()
        async with self.db.write() as conn:
            await parts(conn)
            moved = await move_returning(conn, run_id, S.REQUIRES_ACTION, values, attempt=attempt)
            run = moved or await run_store.load_run(conn, run_id)
        if moved is not None and release is not None:
            release.done()
        if run is None:
            return
        if moved is not None:
            await emitter.emit(RunChanged(run))
        elif run.status == S.CANCELLING:
            await self.stop(run_id, "cancelled", emitter, attempt=attempt)

    async def requeue(self, conn: Connection, run_id: str, lease: Json) -> bool:
        """requires_action -> queued once the tool outputs are in (in the caller's transaction). `lease`:
        the submitting process's, when it executes the run itself (a stream), else a free one (no owner):
        any worker claims the run at once."""
        return await move(conn, run_id, S.QUEUED, required_action=None, **lease)

    async def cancel(self, run_id: str, check: Parts, emitter: Emitter) -> RunRecord:
        """A cancel request: -> cancelling; the run executing it (here, or on another replica through
        the worker's poll) ends it. Nobody executes a queued or requires_action run: it is closed as
        cancelled at once (a worker that claims it meanwhile sees `cancelling`). Returns the run as the
        request leaves it (`cancelling`). `check` runs first in the transaction (the run is the caller's)."""
        async with self.db.write() as conn:
            await check(conn)
            # Locked: the worker's queued -> in_progress must not slip between this read and the update.
            run = await run_store.load_run(conn, run_id, lock=True)
            assert run is not None
            if run.status == S.CANCELLING:
                return run
            if not allowed(run.status, S.CANCELLING):
                raise InvalidRequest(f"Cannot cancel run with status '{run.status}'.")
            await move(conn, run_id, S.CANCELLING)
            await announce(self.db, conn, RunStop(run_id))  # to the replica executing it, on commit
            snapshot = await run_store.load_run(conn, run_id)
            assert snapshot is not None
        if not self.signals.cancel(run_id) and run.status in (S.QUEUED, S.REQUIRES_ACTION):
            await self.stop(run_id, "cancelled", emitter)
        return snapshot

    async def finish(
        self,
        run_id: str,
        target: Literal[RunStatus.COMPLETED, RunStatus.INCOMPLETE],
        usage: dict[str, int],
        emitter: Emitter,
        incomplete_details: Json | None = None,
        attempt: int | None = None,
        parts: Parts = _nothing,
        shown: Shown = _none_shown,
        release: Release | None = None,
    ) -> None:
        """The run's answer is in: completed, or incomplete at a token limit. `parts`: what the caller
        writes in the same transaction (the answer's message and step, a Responses run's function calls),
        and `shown` the events that show them, sent once it commits, before the run's. `release`: the
        executor's lease ends in the same UPDATE (nothing is left for its worker to hand back)."""
        values: dict[str, object] = {"usage": usage}
        if target == S.COMPLETED:
            values["completed_at"] = int(time.time())
        if incomplete_details is not None:
            values["incomplete_details"] = incomplete_details
        if release is not None:
            values |= release.values()
        async with self.db.write() as conn:
            await parts(conn)
            run = await move_returning(conn, run_id, target, values, attempt=attempt)
        if run is not None and release is not None:
            release.done()
        await shown()
        if run is not None:
            self._ended(run)
            await emitter.emit(RunChanged(run))

    async def fail(
        self,
        run_id: str,
        code: str,
        message: str,
        emitter: Emitter,
        parts: Parts = _nothing,
        usage: dict[str, int] | None = None,
        attempt: int | None = None,
    ) -> None:
        """-> failed with `last_error`; the open steps carry the error too. `usage`: the run's totals
        including the call that failed, when it produced any. Logs the one warning line per failed run."""
        error = {"code": code, "message": message}
        extra: dict[str, object] = {"usage": usage} if usage is not None else {}
        async with self.db.write() as conn:
            await parts(conn)
            closed = await self._close(
                conn,
                run_id,
                S.FAILED,
                attempt=attempt,
                step_values={"last_error": error},
                failed_at=int(time.time()),
                last_error=error,
                required_action=None,
                **extra,
            )
        if closed.moved:
            log.warning("run failed", extra={"run_id": run_id, "code": code, "error": message})
        await self._announce(closed, emitter)

    async def expire(
        self,
        run_id: str,
        emitter: Emitter,
        parts: Parts = _nothing,
        attempt: int | None = None,
        usage: dict[str, int] | None = None,
    ) -> None:
        """-> expired: past `expires_at`, whatever it was waiting for. `usage`: the run's totals when
        its executor ends it (else the totals it stored last stay)."""
        extra: dict[str, object] = {"usage": usage} if usage is not None else {}
        async with self.db.write() as conn:
            await parts(conn)
            closed = await self._close(
                conn, run_id, S.EXPIRED, attempt=attempt, step_values=None, required_action=None, **extra
            )
        await self._announce(closed, emitter)

    async def cancelled(
        self,
        run_id: str,
        emitter: Emitter,
        parts: Parts = _nothing,
        attempt: int | None = None,
        usage: dict[str, int] | None = None,
    ) -> None:
        """-> cancelled: the end of a cancel (by whoever executes the run, or at once when nobody does)."""
        extra: dict[str, object] = {"usage": usage} if usage is not None else {}
        async with self.db.write() as conn:
            await parts(conn)
            at = int(time.time())
            closed = await self._close(
                conn,
                run_id,
                S.CANCELLED,
                attempt=attempt,
                step_values=None,
                required_action=None,
                cancelled_at=at,
                **extra,
            )
        await self._announce(closed, emitter)

    async def stop(
        self,
        run_id: str,
        reason: StopReason,
        emitter: Emitter,
        parts: Parts = _nothing,
        attempt: int | None = None,
        usage: dict[str, int] | None = None,
    ) -> None:
        if reason == "expired":
            await self.expire(run_id, emitter, parts, attempt, usage)
        else:
            await self.cancelled(run_id, emitter, parts, attempt, usage)

    async def recover(self, run_id: str, take: Take, resume_limit: int, emitter: Emitter) -> Recovery:
        """A run whose executor is gone (its lease lapsed), if `take` gets its lease: a cancel it was
        working on completes; a run past `expires_at` expires; an `in_progress` run is resumed from its
        last durable point (its in-progress steps and the message being written are deleted: the model
        call they belonged to is made again, its tools run again) up to `resume_limit` times, counted in
        `runs.resumes`; past that it fails with `last_error`. The status stays `in_progress` throughout
        a resume: nothing moves it, so no transition is involved."""
        async with self.db.write() as conn:
            if not await take(conn):
                return Recovery.NOT_OURS
            run = await run_store.load_run(conn, run_id, lock=True)
            if run is None or run.status not in (S.IN_PROGRESS, S.CANCELLING):
                return Recovery.NOT_OURS
            now = int(time.time())
            if run.status == S.CANCELLING:
                closed = await self._close(conn, run_id, S.CANCELLED, required_action=None, cancelled_at=now)
            elif run.expires_at is not None and run.expires_at <= now:
                closed = await self._close(conn, run_id, S.EXPIRED, required_action=None)
            elif run.resumes >= resume_limit:
                message = (
                    INTERRUPTED if resume_limit == 0 else RESUME_LIMIT.format(times=run.resumes + 1, limit=resume_limit)
                )
                error = {"code": "server_error", "message": message}
                closed = await self._close(
                    conn, run_id, S.FAILED, step_values={"last_error": error}, failed_at=now, last_error=error
                )
            else:
                await self._discard_unfinished(conn, run)
                return Recovery.RESUMED
        if closed.moved and closed.run is not None and closed.run.status == S.FAILED:
            error = closed.run.last_error or {}
            extra = {"run_id": run_id, "code": error.get("code"), "error": error.get("message")}
            log.warning("run failed", extra=extra)
        await self._announce(closed, emitter)
        return Recovery.ENDED

    def _ended(self, run: RunRecord) -> None:
        self.observer.run_ended(run.status, max(0.0, time.time() - run.created_at))

    async def _announce(self, closed: Closed, emitter: Emitter) -> None:
        if closed.moved and closed.run is not None:
            self._ended(closed.run)
        await closed.announce(emitter)

    async def _discard_unfinished(self, conn: Connection, run: RunRecord) -> None:
        """What the dead executor left half-made goes; what it finished stays, with the usage it recorded."""
        discarded = await run_store.discard_open_steps(conn, run.id)
        opened = [s.step_details["message_creation"]["message_id"] for s in discarded if s.type == "message_creation"]
        await message_store.delete_unfinished_run_messages(conn, opened)
        usage = run_store.usage_totals(run.usage)
        recorded = dict.fromkeys(usage, 0)
        for step in await run_store.run_steps(conn, run.id):
            for key, value in (step.usage or {}).items():
                recorded[key] = recorded.get(key, 0) + value
        kept = {key: max(usage.get(key, 0), recorded.get(key, 0)) for key in usage | recorded}
        await run_store.set_resumed(conn, run.id, run.resumes + 1, kept)
        log.info("run resumed", extra={"run_id": run.id, "resumes": run.resumes + 1, "discarded": len(discarded)})

    async def resumed(self, run_id: str, emitter: Emitter) -> RunRecord | None:
        """The start of a resumed run's execution (`recover` said RESUMED): the run, when it is still
        `in_progress`; None when it is not (a cancel that came meanwhile is closed here)."""
        async with self.db.read() as conn:
            run = await run_store.load_run(conn, run_id)
        if run is not None and run.status == S.CANCELLING:
            await self.stop(run_id, "cancelled", emitter)
            return None
        if run is None or run.status != S.IN_PROGRESS:
            return None
        return run

    async def _close(
        self,
        conn: Connection,
        run_id: str,
        target: RunStatus,
        *,
        attempt: int | None = None,
        step_values: Json | None = None,
        **values: object,
    ) -> Closed:
        """Move the run, then (only if it moved: the parts may be another executor's) close its open
        steps (with `step_values` first) and messages."""
        reason = {S.CANCELLED: "run_cancelled", S.EXPIRED: "run_expired", S.FAILED: "run_failed"}[target]
        run = await move_returning(conn, run_id, target, values, attempt=attempt)
        if run is None:
            return Closed(False, await run_store.load_run(conn, run_id))
        if step_values:
            await run_store.mark_open_steps(conn, run_id, step_values)
        steps = await run_store.close_open_steps(conn, run_id, target.value)
        messages = await message_store.close_run_messages(conn, run_id, reason)
        return Closed(True, run, tuple(steps), tuple(messages))
