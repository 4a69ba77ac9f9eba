"""Read a live server's /metrics in tests and benches, with the Prometheus client library's own parser."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from assistd.testing.server import LiveServer

# (sample name, its labels) → value
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: LiveServer, headers: dict[str, str] | None = None) -> Samples:
    """GET /metrics (it must answer 200, in the text format) and parse every sample."""
    response = httpx.get(f"{server.url}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample with exactly these labels, None when there is none."""
    return samples.get((name, frozenset(labels.items())))


def count(samples: Samples, name: str, **labels: str) -> float:
    """A histogram's `_count` for exactly these labels (0 when the series does not exist yet)."""
    return value(samples, f"{name}_count", **labels) or 0.0
