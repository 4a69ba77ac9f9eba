"""Prometheus metrics for one server (GET /metrics, api/metrics.py; docs/deployment.md#metrics).

Two kinds, kept apart because replicas aggregate them differently:
- Read from the database at scrape time (runs by status and model, the run queue, the ingestion
  backlog, the gateway sandbox's sessions): the shared truth, the same on every replica of one
  database, so aggregate them with max(), never sum(). `assistd_metrics_database_up` is 0 when the
  read failed; these are then absent from the scrape, which still answers.
- Recorded by this process (run latency, model-call latency, the local sandbox's kernels, the
  process metrics of the client library): sum them over replicas.

One registry per `Metrics` (per app instance), nothing registered at import time. Model names are
labels; clients choose them, so at most MAX_MODELS distinct names are reported and the rest are
folded into `__other__`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, GCCollector, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from assistd.db.database import Database
from assistd.observe import CallOutcome
from assistd.stores import metrics as store
from assistd.stores.metrics import Counts, RunCount

log = logging.getLogger("assistd.metrics")

MAX_MODELS = 50
OTHER = "__other__"
DATABASE_TIMEOUT = 5.0  # seconds a scrape waits for the counts (Prometheus' default scrape timeout is 10 s)

RUN_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CALL_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


@runtime_checkable
class CountsSessions(Protocol):
    """A sandbox that keeps its sessions in this process (sandbox/manager.py)."""

    def live_sessions(self) -> int: ...


class ModelLabels:
    """The first `limit` model names seen keep their name as a label; later ones become OTHER."""

    def __init__(self, limit: int = MAX_MODELS) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, model: str) -> str:
        if model in self.seen:
            return model
        if len(self.seen) < self.limit:
            self.seen.add(model)
            return model
        return OTHER


def fold_models(runs: Iterable[RunCount], limit: int = MAX_MODELS) -> dict[tuple[str, str], int]:
    """(status, model) → runs, the `limit` models with the most runs named, the others summed as OTHER."""
    per_model: dict[str, int] = {}
    for row in runs:
        per_model[row.model] = per_model.get(row.model, 0) + row.count
    kept = set(sorted(per_model, key=lambda m: (-per_model[m], m))[:limit])
    folded: dict[tuple[str, str], int] = {}
    for row in runs:
        key = (row.status, row.model if row.model in kept else OTHER)
        folded[key] = folded.get(key, 0) + row.count
    return folded


class DatabaseCollector:
    """The scrape-time gauges, from the counts the handler read just before rendering (collect() is
    synchronous; the read is not)."""

    def __init__(self, local_sessions: CountsSessions | None) -> None:
        self.local_sessions = local_sessions
        self.counts: Counts | None = None

    def describe(self) -> Iterable[Metric]:
        return list(self._families(None))

    def collect(self) -> Iterable[Metric]:
        return list(self._families(self.counts))

    def _families(self, counts: Counts | None) -> Iterator[Metric]:
        up = GaugeMetricFamily("assistd_metrics_database_up", "1 when this scrape read the database's counts, else 0.")
        up.add_metric([], 1.0 if counts is not None else 0.0)
        yield up
        runs = GaugeMetricFamily(
            "assistd_runs",
            "Runs in the database by status and model (shared by all replicas).",
            labels=["status", "model"],
        )
        queue = GaugeMetricFamily("assistd_run_queue_depth", "Queued runs that no worker holds yet (all replicas).")
        backlog = GaugeMetricFamily(
            "assistd_ingestion_backlog_files", "Vector store files in_progress: waiting for, or in, ingestion."
        )
        sessions = GaugeMetricFamily(
            "assistd_sandbox_sessions",
            "Live code_interpreter sessions: this process's kernels (local), or the database's thread-to-kernel "
            "mapping (gateway, shared by all replicas).",
            labels=["backend"],
        )
        if counts is not None:
            for (status, model), count in sorted(fold_models(counts.runs).items()):
                runs.add_metric([status, model], float(count))
            queue.add_metric([], float(counts.queued_waiting))
            backlog.add_metric([], float(counts.files_in_progress))
            if counts.sandbox_sessions is not None:
                sessions.add_metric(["gateway"], float(counts.sandbox_sessions))
        if self.local_sessions is not None:
            sessions.add_metric(["local"], float(self.local_sessions.live_sessions()))
        yield from (runs, queue, backlog, sessions)


class Metrics:
    """The registry of one server, and the observer (assistd/observe.py) the engine and the model
    router report to."""

    def __init__(self, db: Database, sandbox: object, *, gateway_sandbox: bool) -> None:
        self.db = db
        self.gateway_sandbox = gateway_sandbox
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.database = DatabaseCollector(sandbox if isinstance(sandbox, CountsSessions) else None)
        self.registry.register(self.database)
        self.models = ModelLabels()
        self.run_seconds = Histogram(
            "assistd_run_duration_seconds",
            "From a run's creation to the final status this process committed, by that status "
            "(whole-second resolution: the run's created_at).",
            ["status"],
            buckets=RUN_BUCKETS,
            registry=self.registry,
        )
        self.first_token_seconds = Histogram(
            "assistd_model_first_token_seconds",
            "From the start of a model call to its first text or tool-call delta, by backend and model.",
            ["backend", "model"],
            buckets=FIRST_TOKEN_BUCKETS,
            registry=self.registry,
        )
        self.call_seconds = Histogram(
            "assistd_model_call_duration_seconds",
            "Whole model calls (the provider's retries included), by backend, model and outcome.",
            ["backend", "model", "outcome"],
            buckets=CALL_BUCKETS,
            registry=self.registry,
        )
        self._database_was_up = True

    # --- the observer ---------------------------------------------------------------------------

    def run_ended(self, status: str, seconds: float) -> None:
        self.run_seconds.labels(status).observe(seconds)

    def model_call(
        self, backend: str, model: str, first_token_seconds: float | None, seconds: float, outcome: CallOutcome
    ) -> None:
        label = self.models(model)
        if first_token_seconds is not None:
            self.first_token_seconds.labels(backend, label).observe(first_token_seconds)
        self.call_seconds.labels(backend, label, outcome).observe(seconds)

    # --- the scrape -----------------------------------------------------------------------------

    async def render(self, accept: str) -> tuple[bytes, str]:
        """The exposition (text format, or OpenMetrics when `accept` asks for it) and its content type."""
        counts = await self._counts()
        encoder, content_type = choose_encoder(accept)
        self.database.counts = counts  # no await from here: this scrape renders exactly these counts
        return encoder(self.registry), content_type

    async def _counts(self) -> Counts | None:
        try:
            counts = await asyncio.wait_for(self._read(), DATABASE_TIMEOUT)
        except Exception as exc:  # a scrape reports what it knows: the database being down is one of those
            if self._database_was_up:
                log.warning("metrics: the database could not be read", extra={"error": f"{type(exc).__name__}: {exc}"})
            self._database_was_up = False
            return None
        self._database_was_up = True
        return counts

    async def _read(self) -> Counts:
        async with self.db.read() as conn:
            return await store.read_counts(conn, time.time(), sandbox_sessions=self.gateway_sandbox)
