"""runs/control.py RunSignals: a run's stop event, set by a cancel or its expiry timer, and which came first."""

from __future__ import annotations

import asyncio
import time

from assistd.engine.signals import RunSignals


def test_expiry_timer_fires_at_expires_at() -> None:
    async def main() -> None:
        signals = RunSignals()
        stop = signals.register("run_1")
        signals.expire_at("run_1", time.time() + 0.2)
        assert not stop.is_set()
        started = time.monotonic()
        await asyncio.wait_for(stop.wait(), 2)
        assert 0.1 < time.monotonic() - started < 1.0
        assert signals.stop_reason("run_1") == "expired"
        assert signals.cancel("run_1"), "still executing here"
        assert signals.stop_reason("run_1") == "expired", "the first signal wins"

    asyncio.run(main())


def test_cancel_before_expiry_is_a_cancel_and_unregister_stops_the_timer() -> None:
    async def main() -> None:
        signals = RunSignals()
        stop = signals.register("run_1")
        signals.expire_at("run_1", time.time() + 0.1)
        assert signals.cancel("run_1") and stop.is_set()
        await asyncio.sleep(0.2)
        assert signals.stop_reason("run_1") == "cancelled"
        signals.unregister("run_1")
        assert not signals.cancel("run_1") and signals.running() == []

        again = signals.register("run_2")
        signals.expire_at("run_2", time.time() + 0.1)
        signals.unregister("run_2")
        await asyncio.sleep(0.2)
        assert not again.is_set(), "an unregistered run's timer does not fire"

    asyncio.run(main())


def test_an_event_set_directly_counts_as_a_cancel() -> None:
    async def main() -> None:
        signals = RunSignals()
        stop = signals.register("run_1")
        stop.set()  # the lease heartbeat saw `cancelling` (a cancel through another replica)
        signals.expire_at("run_1", time.time() - 5)  # already past: fires at once
        await asyncio.sleep(0.05)
        assert signals.stop_reason("run_1") == "cancelled"

    asyncio.run(main())
