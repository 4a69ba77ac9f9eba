"""In-process signals to runs being executed here: cancel requests arrive without a database round trip,
and a run's expiry fires on a timer, whatever the run is waiting for."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

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
