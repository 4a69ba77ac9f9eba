"""In-process signals to runs being executed here: cancel requests arrive without a database round trip."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable


class RunSignals:
    def __init__(self) -> None:
        self._cancel: dict[str, asyncio.Event] = {}

    def register(self, run_id: str) -> asyncio.Event:
        return self._cancel.setdefault(run_id, asyncio.Event())

    def unregister(self, run_id: str) -> None:
        self._cancel.pop(run_id, None)

    def cancel(self, run_id: str) -> bool:
        """True when the run is executing in this process (it will see the signal)."""
        event = self._cancel.get(run_id)
        if event is None:
            return False
        event.set()
        return True

    def running(self) -> list[str]:
        return list(self._cancel)


async def poll_loop(step: Callable[[], Awaitable[None]], wake: asyncio.Event, seconds: float, what: str) -> None:
    """Run `step` whenever `wake` is set, and at least every `seconds`; a failing step is logged, the
    loop goes on (the next iteration retries)."""
    log = logging.getLogger("assistd.worker")
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s loop iteration failed", what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), seconds)
        wake.clear()
