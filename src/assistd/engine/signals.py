"""In-process signals to runs being executed here: cancel requests arrive without a database round trip,
and a run's expiry fires on a timer, whatever the run is waiting for.

The interruptible stream: read a model backend's stream so that a stop (cancel, expiry) interrupts it at once.

The provider's stream is iterated in a task of its own; the executor reads what it produced from a
queue. When the run's stop event is set, the reader returns at once (`Interrupted`), and closing the
reader cancels that task: the provider's pending call (opening the request, a retry's back-off, the
wait for the next chunk) is cancelled where it stands, its HTTP response closed by its own cleanup.
Nothing here depends on how a provider is written, only on it honouring task cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

StopReason = Literal["cancelled", "expired"]


class RunSignals:
    """One stop event per run executing here. It is set by a cancel (the API's, or the deletion of the
    run's thread) or by the run's expiry timer; `stop_reason` tells which came first."""

    def __init__(self) -> None:
        self._stop: dict[str, asyncio.Event] = {}
        self._reason: dict[str, StopReason] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def register(self, run_id: str) -> asyncio.Event:
        return self._stop.setdefault(run_id, asyncio.Event())

    def unregister(self, run_id: str) -> None:
        self._stop.pop(run_id, None)
        self._reason.pop(run_id, None)
        timer = self._timers.pop(run_id, None)
        if timer is not None:
            timer.cancel()

    def cancel(self, run_id: str) -> bool:
        """True when the run is executing in this process (it will see the signal)."""
        return self._signal(run_id, "cancelled")

    def expire_at(self, run_id: str, expires_at: float | None) -> None:
        """Stop the run, as expired, at `expires_at` (Unix seconds; at once if that has passed)."""
        if expires_at is None or run_id not in self._stop:
            return
        previous = self._timers.pop(run_id, None)
        if previous is not None:
            previous.cancel()
        delay = max(0.0, expires_at - time.time())
        self._timers[run_id] = asyncio.get_running_loop().call_later(delay, self._signal, run_id, "expired")

    def stop_reason(self, run_id: str) -> StopReason:
        """Why the run's stop event is set: the first signal wins (a cancel seen by the lease heartbeat
        sets the event directly: that too is a cancel)."""
        return self._reason.get(run_id, "cancelled")

    def _signal(self, run_id: str, reason: StopReason) -> bool:
        event = self._stop.get(run_id)
        if event is None:
            return False
        if not event.is_set():  # set already (by the lease heartbeat's cancel, say): that came first
            self._reason[run_id] = reason
            event.set()
        return True

    def running(self) -> list[str]:
        return list(self._stop)


log = logging.getLogger("assistd.runs")

T = TypeVar("T")

# How long a closed reader waits for the provider's task to finish after cancelling it.
CLOSE_GRACE_SECONDS = 2.0


class Interrupted(Exception):
    """The stop event was set while the stream was being read."""


@dataclass
class _Item(Generic[T]):
    value: T


@dataclass
class _Failed:
    error: Exception


class _End:
    pass


class _Wake:
    pass


class InterruptibleStream(Generic[T]):
    """`async for item in InterruptibleStream(source, stop)`; always `await aclose()` afterwards."""

    def __init__(self, source: AsyncIterator[T], stop: asyncio.Event, *, what: str = "model backend") -> None:
        self._stop = stop
        self._what = what
        self._queue: asyncio.Queue[_Item[T] | _Failed | _End | _Wake] = asyncio.Queue()
        self._pump = asyncio.create_task(self._read(source), name=f"{what} stream")
        self._watch = asyncio.create_task(self._wake_on_stop(), name=f"{what} stop watch")

    async def _read(self, source: AsyncIterator[T]) -> None:
        try:
            async for item in source:
                self._queue.put_nowait(_Item(item))
        except Exception as exc:  # handed to the reader, raised there
            self._queue.put_nowait(_Failed(exc))
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # aclose(): the stop this module exists for
            # Something the provider awaited was cancelled under it: a failure of the call, not a stop.
            self._queue.put_nowait(_Failed(RuntimeError(f"the {self._what} call was cancelled from elsewhere")))
        else:
            self._queue.put_nowait(_End())
        finally:
            closer = getattr(source, "aclose", None)
            if closer is not None:
                await closer()

    async def _wake_on_stop(self) -> None:
        await self._stop.wait()
        self._queue.put_nowait(_Wake())

    def __aiter__(self) -> InterruptibleStream[T]:
        return self

    async def __anext__(self) -> T:
        if self._stop.is_set():
            raise Interrupted
        entry = await self._queue.get()
        if self._stop.is_set():
            raise Interrupted
        if isinstance(entry, _Item):
            return entry.value
        if isinstance(entry, _Failed):
            raise entry.error
        if isinstance(entry, _End):
            raise StopAsyncIteration
        raise Interrupted  # pragma: no cover - a _Wake is only queued once the stop event is set

    async def aclose(self) -> None:
        """Cancel the provider's pending call (if any) and wait for its cleanup, within a grace period."""
        self._watch.cancel()
        self._pump.cancel()
        done, _ = await asyncio.wait({self._pump, self._watch}, timeout=CLOSE_GRACE_SECONDS)
        if self._pump not in done:
            # A provider that ignores cancellation: the run goes on without it; its task ends on its own.
            log.warning("%s call did not stop when cancelled; left to finish on its own", self._what)
        for task in done:
            with contextlib.suppress(asyncio.CancelledError):
                task.result()
