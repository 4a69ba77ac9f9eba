"""The file_search tool as the model sees it, and its results as run steps and prompt text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from assistd.runs import tokens
from assistd.runs.citations import Resolver, marker
from assistd.runs.store import calls_of

NAME = "file_search"
DEFAULT_MAX_RESULTS = 20
DEFAULT_RANKING = {"ranker": "default_2024_08_21", "score_threshold": 0.0}

FUNCTION = {
    "type": "function",
    "function": {
        "name": NAME,
        "description": (
            "Search the files the user gave you (documents, books, notes) for passages relevant to the "
            "conversation. Use it whenever the answer may be in those files."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "queries": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "One or more search queries.",
                }
            },
            "required": ["queries"],
        },
    },
}

CITE_INSTRUCTIONS = (
    "Results from file_search start with a marker such as 【0:1†notes.txt】. When your answer uses a "
    "result, cite it by writing its marker exactly as given, right after the sentence it supports."
)


class Hit(Protocol):
    @property
    def file_id(self) -> str: ...
    @property
    def filename(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def text(self) -> str: ...


# (store ids, queries, max results, score threshold) → ranked hits
Retriever = Callable[[list[str], list[str], int, float], Awaitable[Sequence[Hit]]]


def settings_of(tools: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """max_num_results and ranking_options of the run's file_search tool."""
    for tool in tools:
        if tool["type"] == NAME:
            options = tool.get(NAME) or {}
            ranking = options.get("ranking_options") or DEFAULT_RANKING
            return int(options.get("max_num_results") or DEFAULT_MAX_RESULTS), dict(ranking)
    return DEFAULT_MAX_RESULTS, dict(DEFAULT_RANKING)


def result_entries(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    """Stored with the step: content always kept; it is shown only with include[] (store.to_step)."""
    return [
        {
            "file_id": h.file_id,
            "file_name": h.filename,
            "score": round(float(h.score), 6),
            "content": [{"type": "text", "text": h.text}],
        }
        for h in hits
    ]


def results_text(call_index: int, results: list[dict[str, Any]], budget: int | None = None) -> str:
    """What the model reads as the tool's output: each result under its citation marker, best first,
    as many as fit in `budget` tokens (OpenAI kept 16k tokens of results for large models, 4k for small)."""
    if not results:
        return "No results."
    parts: list[str] = []
    used = 0
    for i, result in enumerate(results):
        text = "".join(c.get("text", "") for c in result.get("content") or [])
        part = f"{marker(call_index, i, result['file_name'])}\n{text}"
        cost = tokens.count_text(part)
        if budget is not None and parts and used + cost > budget:
            break
        parts.append(part)
        used += cost
    return "\n\n".join(parts)


def calls_in_order(steps: Sequence[Any]) -> list[dict[str, Any]]:
    """The run's file_search calls, in the order they were made (their index is the marker's first number)."""
    return calls_of(steps, NAME)


def resolver(calls: list[dict[str, Any]]) -> Resolver:
    def resolve(call: int, result: int) -> str | None:
        if 0 <= call < len(calls):
            results = calls[call][NAME].get("results") or []
            if 0 <= result < len(results):
                return str(results[result]["file_id"])
        return None

    return resolve
