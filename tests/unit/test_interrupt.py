"""runs/interrupt.py: a stop interrupts a stream wherever its source waits, and its cleanup runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from assistd.engine import signals as interrupt
from assistd.engine.signals import Interrupted, InterruptibleStream


class Source:
    """An async generator's worth of behaviour, recording whether its cleanup ran."""

    def __init__(self) -> None:
        self.closed = False

    async def items(self, count: int, then_wait: float = 0.0) -> AsyncIterator[int]:
        try:
            for i in range(count):
                yield i
            await asyncio.sleep(then_wait)
        finally:
            self.closed = True


def test_items_then_end() -> None:
    async def main() -> list[int]:
        source = Source()
        stream = InterruptibleStream(source.items(3), asyncio.Event())
        try:
            got = [item async for item in stream]
        finally:
            await stream.aclose()
        assert source.closed
        return got

    assert asyncio.run(main()) == [0, 1, 2]


def test_stop_interrupts_a_hung_source_and_closes_it() -> None:
    async def main() -> float:
        source = Source()
        stop = asyncio.Event()
        stream = InterruptibleStream(source.items(1, then_wait=3600), stop)
        got = []
        asyncio.get_running_loop().call_later(0.05, stop.set)
        started = time.monotonic()
        with pytest.raises(Interrupted):
            async for item in stream:
                got.append(item)
        took = time.monotonic() - started
        await stream.aclose()
        assert got == [0] and source.closed
        assert {t.get_name() for t in asyncio.all_tasks()} == {asyncio.current_task().get_name()}  # type: ignore[union-attr]
        return took

    assert asyncio.run(main()) < 1.0


def test_source_failure_is_raised_to_the_reader() -> None:
    async def failing() -> AsyncIterator[int]:
        yield 1
        raise ValueError("upstream broke")

    async def main() -> None:
        stream = InterruptibleStream(failing(), asyncio.Event())
        try:
            assert await stream.__anext__() == 1
            with pytest.raises(ValueError, match="upstream broke"):
                await stream.__anext__()
        finally:
            await stream.aclose()

    asyncio.run(main())


def test_a_future_cancelled_under_the_source_is_a_failure_not_a_hang() -> None:
    """The source awaits something shared that another party cancels: the reader gets an error."""

    async def main() -> None:
        shared: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def source() -> AsyncIterator[int]:
            yield await shared

        stream = InterruptibleStream(source(), asyncio.Event())
        asyncio.get_running_loop().call_later(0.05, shared.cancel)
        try:
            with pytest.raises(RuntimeError, match="cancelled from elsewhere"):
                await asyncio.wait_for(stream.__anext__(), 5)
        finally:
            await stream.aclose()

    asyncio.run(main())


def test_a_source_that_ignores_cancellation_does_not_hold_the_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interrupt, "CLOSE_GRACE_SECONDS", 0.2)

    async def stubborn() -> AsyncIterator[int]:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(0.5)  # finishes, but well after the grace period
        yield 0

    async def main() -> float:
        stop = asyncio.Event()
        stream = InterruptibleStream(stubborn(), stop)
        await asyncio.sleep(0.01)  # the source is waiting
        stop.set()
        with pytest.raises(Interrupted):
            await stream.__anext__()
        started = time.monotonic()
        await stream.aclose()
        took = time.monotonic() - started
        await asyncio.sleep(0.6)  # the source's task ends on its own
        return took

    assert asyncio.run(main()) < 0.45
