"""Executes one run: start it, let the loop advance it, and turn the loop's outcome into the run's
next status (engine/lifecycle.py). Whatever happens, the run ends: an unexpected error fails it, and
a run whose thread was deleted under it is closed as such (its rows went with the thread).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Literal

from assistd.db.database import Connection, Database
from assistd.engine.events import Emitter, LifecycleEvent, RunChanged, RunDeleted
from assistd.engine.lifecycle import ENDS_EXECUTION, Lifecycle, Parts, Release, RunStatus
from assistd.engine.loop import Loop, Settings
from assistd.engine.output import Answered, Failed, NeedsAction, Outcome, PromptTooLong, Recorder, RunAdapter, Stopped
from assistd.engine.signals import RunSignals
from assistd.engine.usage import usage_totals
from assistd.providers.routing import ModelRouter
from assistd.stores import messages as message_store
from assistd.stores import runs as run_store
from assistd.stores.runs import RunRecord
from assistd.tools.base import ToolContext

log = logging.getLogger("assistd.runs")


class EndWatch:
    """Passes events on, noting whether the run reached a status that ends its stream, and the thread of
    the run it showed (none: the run had not started here)."""

    def __init__(self, emitter: Emitter) -> None:
        self.emitter = emitter
        self.ended = False
        self.thread_id: str | None = None
        self.attempt: int | None = None  # the run's `resumes` when this execution started: its fence

    async def emit(self, event: LifecycleEvent) -> None:
        if isinstance(event, RunChanged):
            self.thread_id = event.run.thread_id
            if event.run.status in ENDS_EXECUTION:
                self.ended = True
        await self.emitter.emit(event)


class Executor:
    def __init__(
        self,
        db: Database,
        router: ModelRouter,
        signals: RunSignals,
        lifecycle: Lifecycle,
        loop: Loop,
        adapter: RunAdapter,
        lease_seconds: float,
    ) -> None:
        self.db = db
        self.router = router
        self.signals = signals
        self.lifecycle = lifecycle
        self.loop = loop
        self.adapter = adapter
        self.lease_seconds = lease_seconds

    async def execute(
        self,
        run_id: str,
        owner: str,
        emitter: Emitter,
        *,
        resumed: bool = False,
        released: Callable[[], None] | None = None,
        claimed: RunRecord | None = None,
    ) -> None:
        """Execute a run `owner` holds the lease of. The run worker's leased queue (engine/queue.py)
        renews that lease while this runs, passes on cancels made through other replicas, and
        releases it after. `resumed`: the run is `in_progress` already, taken over from a dead
        executor (engine/lifecycle.py `recover`); the loop goes on from its durable steps.
        `released`: told when the run's end, or its wait for tool outputs, ended the lease too (its worker
        has none to hand back).
        `claimed`: the run as the worker's claim started it (engine/lifecycle.py `claim`)."""
        cancel = self.signals.register(run_id)
        watch = EndWatch(emitter)
        release = Release(owner, released) if released is not None else None
        try:
            await self._execute(run_id, watch, emitter, cancel, resumed, release, claimed)
            if not watch.ended and await self._deleted(run_id):
                await self._close_deleted(run_id, watch)
        except Exception as exc:  # the run must end, whatever happened
            if await self._deleted(run_id):  # its thread was deleted under it: not an internal error
                await self._close_deleted(run_id, watch)
            else:
                log.exception("run execution failed", extra={"run_id": run_id})
                message = f"The run failed unexpectedly: {type(exc).__name__}."
                await self.lifecycle.fail(run_id, "server_error", message, watch, attempt=watch.attempt)
        finally:
            self.signals.unregister(run_id)

    async def _deleted(self, run_id: str) -> bool:
        async with self.db.read() as conn:
            return not await run_store.run_exists(conn, run_id)

    async def _close_deleted(self, run_id: str, watch: EndWatch) -> None:
        """The run's thread was deleted while it ran (its rows went with it): drop what the run wrote
        after the deletion, and let its stream close it."""
        if watch.thread_id is not None:  # else the run had not started: it wrote nothing
            async with self.db.write() as conn:
                await message_store.delete_run_messages(conn, watch.thread_id, run_id)
                await run_store.delete_steps(conn, run_id)
        log.info("run ended: its thread was deleted", extra={"run_id": run_id})
        if not watch.ended:
            await watch.emit(RunDeleted(run_id))

    async def _execute(
        self,
        run_id: str,
        watch: EndWatch,
        emitter: Emitter,
        cancel: asyncio.Event,
        resumed: bool,
        release: Release | None,
        claimed: RunRecord | None,
    ) -> None:
        if claimed is not None:
            run: RunRecord | None = claimed
            await watch.emit(RunChanged(claimed))
        elif resumed:
            run = await self.lifecycle.resumed(run_id, watch)
        else:
            run = await self.lifecycle.start(run_id, watch)
        if run is None:
            return
        watch.attempt = run.resumes
        self.signals.expire_at(run_id, run.expires_at)  # an in_progress run expires whatever it waits for
        resolved = self.router.resolve(run.model)
        if resolved is None:
            message = f"No model backend serves the model '{run.model}'."
            await self.lifecycle.fail(run_id, "invalid_prompt", message, watch, attempt=run.resumes)
            return
        totals = usage_totals(run.usage)
        recorder = self.adapter.recorder(run, emitter)
        context = ToolContext(run.id, run.project_id, run.thread_id, run.assistant_id, run.tools)
        settings = Settings(run.id, run.expires_at, context)
        outcome = await self.loop.run(settings, resolved, recorder, totals, cancel)
        await self._conclude(run, outcome, recorder, totals, watch, release)

    async def _conclude(
        self,
        run: RunRecord,
        outcome: Outcome,
        recorder: Recorder,
        totals: dict[str, int],
        watch: EndWatch,
        release: Release | None,
    ) -> None:
        lifecycle = self.lifecycle
        attempt = run.resumes  # the fence: a run resumed elsewhere meanwhile is not ended from here
        match outcome:
            case Answered(incomplete=incomplete):
                # The answer's message and step complete with the run, in one transaction.
                answer, shown = recorder.answer()
                target: Literal[RunStatus.COMPLETED, RunStatus.INCOMPLETE] = (
                    RunStatus.INCOMPLETE if incomplete else RunStatus.COMPLETED
                )
                reason = {"reason": "max_completion_tokens"} if incomplete else None
                await lifecycle.finish(run.id, target, totals, watch, reason, attempt, answer, shown, release)
            case PromptTooLong():
                reason = {"reason": "max_prompt_tokens"}
                await lifecycle.finish(run.id, RunStatus.INCOMPLETE, totals, watch, reason, attempt, release=release)
            case NeedsAction(calls=calls, usage=usage) if not recorder.waits_for_outputs:
                # A protocol whose runs end with the calls (Responses): the outputs come in a new run.
                await recorder.before_action()
                kept = recorder.keep_calls(calls, usage)
                await lifecycle.finish(
                    run.id, RunStatus.COMPLETED, totals, watch, attempt=attempt, parts=kept, release=release
                )
            case NeedsAction(calls=calls, usage=usage):
                await recorder.before_action()
                required = recorder.required_action(calls)
                await lifecycle.require_action(
                    run.id, required, totals, watch, recorder.keep_calls(calls, usage), attempt, release
                )
            case Stopped(reason=reason, partial=partial, calls=calls, usage=usage):
                parts = [recorder.keep_calls(calls, usage)] if calls is not None and usage is not None else []
                if partial:
                    parts.append(recorder.partial(usage if calls is None else None))
                await lifecycle.stop(run.id, reason, watch, _all(parts), attempt, usage=totals)
            case Failed(code=code, message=message, partial=partial, usage=usage):
                parts = [recorder.partial(usage)] if partial else []
                await lifecycle.fail(run.id, code, message, watch, _all(parts), totals, attempt)


def _all(parts: list[Parts]) -> Parts:
    async def write(conn: Connection) -> None:
        for part in parts:
            await part(conn)

    return write
