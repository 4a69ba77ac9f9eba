"""A provider that reports each model call's timing to an observer (assistd/observe.py): time to the
first text or tool-call delta, and the whole call, by backend and model. The router wraps what it
resolves in it (providers/routing.py); the provider itself knows nothing of it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from assistd.observe import CallOutcome, Observer
from assistd.providers.base import ChatRequest, Chunk, Provider, TokenCounter


class ObservedProvider:
    def __init__(self, inner: Provider, backend: str, observer: Observer) -> None:
        self.inner = inner
        self.backend = backend
        self.observer = observer
        self.name = inner.name
        self.context_window = inner.context_window

    async def complete(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        started = time.perf_counter()
        first: float | None = None
        outcome: CallOutcome = "error"
        stream = self.inner.complete(request)
        try:
            async for chunk in stream:
                if first is None and (chunk.text or chunk.tool_calls):
                    first = time.perf_counter() - started
                yield chunk
            outcome = "ok"
        except (GeneratorExit, asyncio.CancelledError):  # the reader stopped: a cancel or the run's expiry
            outcome = "cancelled"
            raise
        finally:
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                await closer()
            self.observer.model_call(self.backend, request.model, first, time.perf_counter() - started, outcome)

    def counter(self, model: str) -> TokenCounter:
        return self.inner.counter(model)

    async def close(self) -> None:
        await self.inner.close()
