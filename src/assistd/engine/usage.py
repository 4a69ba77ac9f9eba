"""A run's token usage: what each model call adds to the run's stored counters (stores/runs.py)."""

from __future__ import annotations

from assistd.providers.base import Usage
from assistd.stores.runs import NO_USAGE, usage_totals

__all__ = ["NO_USAGE", "add_usage", "usage_counters", "usage_totals"]


def usage_counters(usage: Usage) -> dict[str, int]:
    """One model call's usage as stored on its step and added to the run's totals."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cached_tokens": usage.cached_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }


def add_usage(totals: dict[str, int], usage: Usage) -> None:
    for key, value in usage_counters(usage).items():
        totals[key] = totals.get(key, 0) + value
