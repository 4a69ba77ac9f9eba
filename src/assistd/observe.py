"""What the engine and the providers report as they work, for whoever watches (the Prometheus metrics,
services/metrics.py): a small protocol, so that neither imports the app nor a metrics library.

The wiring (app.py) passes one observer to the run lifecycle and to the model router; without one
(tools, benches) they get `NO_OBSERVER`, which does nothing.
"""

from __future__ import annotations

from typing import Literal, Protocol

# How one model call ended: its stream finished, it raised, or the run stopped reading it (cancel, expiry).
CallOutcome = Literal["ok", "error", "cancelled"]


class Observer(Protocol):
    def run_ended(self, status: str, seconds: float) -> None:
        """A run reached the final `status` (committed here), `seconds` after it was created."""
        ...

    def model_call(
        self, backend: str, model: str, first_token_seconds: float | None, seconds: float, outcome: CallOutcome
    ) -> None:
        """One model call to `backend` (the routing table's name) for `model` (the name sent to it) ended:
        its first text or tool-call delta came `first_token_seconds` after the call began (None: none came),
        and the call lasted `seconds` in all (the provider's retries included)."""
        ...


class NoObserver:
    def run_ended(self, status: str, seconds: float) -> None:
        return None

    def model_call(
        self, backend: str, model: str, first_token_seconds: float | None, seconds: float, outcome: CallOutcome
    ) -> None:
        return None


NO_OBSERVER: Observer = NoObserver()
