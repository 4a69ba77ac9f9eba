"""/metrics keeps model labels bounded (services/metrics.py): clients choose model names, Prometheus
pays for every distinct one."""

from __future__ import annotations

from assistd.services.metrics import OTHER, ModelLabels, fold_models
from assistd.stores.metrics import RunCount


def test_the_first_models_keep_their_names_and_later_ones_are_folded() -> None:
    labels = ModelLabels(limit=2)
    assert [labels(m) for m in ("a", "b", "c", "a", "b", "d")] == ["a", "b", OTHER, "a", "b", OTHER]


def test_the_runs_gauge_keeps_the_models_with_most_runs_and_sums_the_rest() -> None:
    rows = [
        RunCount("completed", "big", 50),
        RunCount("failed", "big", 5),
        RunCount("completed", "mid", 20),
        RunCount("completed", "small", 1),
        RunCount("failed", "tiny", 2),
        RunCount("completed", "tiny", 1),
    ]
    assert fold_models(rows, limit=2) == {
        ("completed", "big"): 50,
        ("failed", "big"): 5,
        ("completed", "mid"): 20,
        ("completed", OTHER): 2,
        ("failed", OTHER): 2,
    }
    assert sum(fold_models(rows, limit=2).values()) == sum(row.count for row in rows)
