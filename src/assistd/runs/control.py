"""In-process signals to runs being executed here: cancel requests arrive without a database round trip."""

from __future__ import annotations

import asyncio


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
