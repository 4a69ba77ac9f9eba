"""The file_search tool as the model sees it, and its results as run steps and prompt text.

Running a run's file_search calls: the assistant's and thread's stores, waiting for ingestion, hybrid search.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import orjson

from assistd.db.database import Database
from assistd.providers import tokens
from assistd.stores import vector_stores as vector_store_store
from assistd.stores.runs import StepRecord, run_resources
from assistd.tools.arguments import Invalid, check
from assistd.tools.base import DeltaSink, Excerpt, Json, ToolCall, ToolContext, ToolFailed, run_calls
from assistd.tools.citations import Resolver, marker

NAME = "file_search"
DEFAULT_MAX_RESULTS = 20
NO_RESULTS = "No results."
MAX_REPLAYED_QUERIES = 8
MAX_REPLAYED_QUERY = 200  # characters
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


# (store ids, queries, max results, score threshold, attribute filter or None) → ranked hits
Retriever = Callable[[list[str], list[str], int, float, Mapping[str, Any] | None], Awaitable[Sequence[Hit]]]


def filters_of(tools: list[dict[str, Any]]) -> Mapping[str, Any] | None:
    """The attribute filter of the run's file_search tool (a response's `filters`), if any."""
    for tool in tools:
        if tool["type"] == NAME:
            found = (tool.get(NAME) or {}).get("filters")
            return found if isinstance(found, dict) else None
    return None


def settings_of(tools: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """max_num_results and ranking_options of the run's file_search tool."""
    for tool in tools:
        if tool["type"] == NAME:
            options = tool.get(NAME) or {}
            ranking = options.get("ranking_options") or DEFAULT_RANKING
            return int(options.get("max_num_results") or DEFAULT_MAX_RESULTS), dict(ranking)
    return DEFAULT_MAX_RESULTS, dict(DEFAULT_RANKING)


def result_entries(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    """Stored with the step: content always kept; it is shown only with include[] (adapters/assistants.py `to_step`)."""
    return [
        {
            "file_id": h.file_id,
            "file_name": h.filename,
            "score": round(float(h.score), 6),
            "content": [{"type": "text", "text": h.text}],
        }
        for h in hits
    ]


def result_excerpts(call_index: int, results: list[dict[str, Any]], budget: int | None = None) -> tuple[Excerpt, ...]:
    """What the model reads as the tool's output: each result under its citation marker, best first,
    as many as fit in `budget` tokens (OpenAI kept 16k tokens of results for large models, 4k for
    small). The prompt's budget may shorten them further, then keep fewer (engine/prompt.py)."""
    excerpts: list[Excerpt] = []
    used = 0
    for i, result in enumerate(results):
        excerpt = Excerpt(
            marker(call_index, i, result["file_name"]), "".join(c.get("text", "") for c in result.get("content") or [])
        )
        cost = tokens.count_text(f"{excerpt.heading}\n{excerpt.text}")
        if budget is not None and excerpts and used + cost > budget:
            break
        excerpts.append(excerpt)
        used += cost
    return tuple(excerpts)


def calls_in_order(steps: Sequence[StepRecord]) -> list[ToolCall]:
    """The run's file_search calls, in the order they were made (their index is the marker's first number)."""
    return run_calls(steps, NAME)


def resolver(calls: list[ToolCall]) -> Resolver:
    def resolve(call: int, result: int) -> str | None:
        if 0 <= call < len(calls):
            results = calls[call].details.get("results") or []
            if 0 <= result < len(results):
                return str(results[result]["file_id"])
        return None

    return resolve


INGESTION_WAIT_SECONDS = 60.0


def queries_of(arguments: str) -> list[str] | Invalid:
    """The queries in the model's arguments, repaired (tools/arguments.py); one query given as a
    string, or as `query`, is understood."""
    checked = check(arguments)
    if isinstance(checked, Invalid):
        return checked
    queries = checked.value.get("queries", checked.value.get("query"))
    if isinstance(queries, str):
        queries = [queries]
    if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
        return Invalid("the arguments have no 'queries' (a list of strings)")
    return [q for q in queries if q.strip()]


class FileSearchTool:
    """The built-in search: the model's queries stay private to the step; clients see the results."""

    name = NAME
    client_side = False

    def __init__(self, db: Database, retriever: Retriever | None) -> None:
        self.db = db
        self.retriever = retriever

    async def schemas(self, context: ToolContext) -> list[Json]:
        return [FUNCTION] if any(tool["type"] == NAME for tool in context.tools) else []

    def begin(self, call_id: str, name: str, arguments: str, context: ToolContext) -> tuple[ToolCall, list[Json]]:
        _, ranking = settings_of(context.tools)
        call = ToolCall(call_id, NAME, {"ranking_options": ranking, "results": []}, {"arguments": arguments})
        return call, [{"id": call_id, "type": NAME, NAME: {"ranking_options": ranking, "results": []}}]

    def feed(self, call: ToolCall, name: str | None, arguments: str) -> list[Json]:
        call.private["arguments"] = call.arguments + arguments
        return []

    def replay(self, call: ToolCall, number: int, budget: int) -> tuple[str, str | tuple[Excerpt, ...]] | None:
        # The queries as the model reads them back: a few, each short (a small model can write a
        # thousand tokens of queries, which would then crowd its results out of every later prompt).
        queries = [q[:MAX_REPLAYED_QUERY] for q in call.private.get("queries", [])[:MAX_REPLAYED_QUERIES]]
        arguments = orjson.dumps({"queries": queries}).decode()
        error = call.private.get("error")
        if error is not None:  # the model reads why its call found nothing
            return arguments, str(error)
        results = call.details.get("results") or []
        return arguments, result_excerpts(number, results, budget) if results else NO_RESULTS

    async def run(self, calls: list[ToolCall], context: ToolContext, delta: DeltaSink, cancel: asyncio.Event) -> None:
        """Fill each file_search call's results (and its private queries)."""
        max_results, ranking = settings_of(context.tools)
        store_ids, thread_stores = await self._run_stores(context)
        expired = await self._expired_store(store_ids)
        if expired is not None:
            raise ToolFailed("invalid_prompt", f"Vector store {expired} has expired.")
        await self._await_ingestion(thread_stores, cancel)
        for call in calls:
            queries = queries_of(call.arguments)
            if isinstance(queries, Invalid):
                # The model reads the error as the call's result and may search again (engine/loop.py).
                call.private["queries"] = []
                call.private["error"] = (
                    f"Error: {queries.reason}. You sent: {call.arguments[:500]}. "
                    'Call file_search again with {"queries": ["..."]}.'
                )
                continue
            hits = []
            if self.retriever is not None and store_ids and queries:
                threshold = float(ranking["score_threshold"])
                hits = list(await self.retriever(store_ids, queries, max_results, threshold, filters_of(context.tools)))
            call.details["results"] = result_entries(hits)
            call.private["queries"] = queries
            # The files' attributes, for the Responses view's results (the Assistants results have none).
            attributes = {h.file_id: found for h in hits if (found := getattr(h, "attributes", None))}
            if attributes:
                call.private["attributes"] = attributes

    async def _run_stores(self, context: ToolContext) -> tuple[list[str], list[str]]:
        """The vector stores a run searches: its assistant's and its thread's (spec §10)."""
        async with self.db.read() as conn:
            assistant, thread = await run_resources(conn, context.assistant_id, context.thread_id)

        def ids_of(resources: Any) -> list[str]:
            return list(((resources or {}).get(NAME) or {}).get("vector_store_ids") or [])

        thread_ids = ids_of(thread)
        # A response names its stores in its file_search tool (docs/responses.md).
        own = [i for tool in context.tools if tool["type"] == NAME for i in ids_of({NAME: tool.get(NAME)})]
        return list(dict.fromkeys(ids_of(assistant) + thread_ids + own)), thread_ids

    async def _expired_store(self, store_ids: list[str]) -> str | None:
        """The first of the stores past its expiry (searching it fails the run, as on OpenAI), if any."""
        return await vector_store_store.begin_search(self.db, store_ids, int(time.time()))

    async def _await_ingestion(self, store_ids: list[str], cancel: asyncio.Event) -> None:
        """Runs wait (up to a minute) for the thread's files still being ingested, as OpenAI's did."""
        if not store_ids:
            return
        deadline = time.monotonic() + INGESTION_WAIT_SECONDS
        while time.monotonic() < deadline and not cancel.is_set():
            async with self.db.read() as conn:
                pending = await vector_store_store.any_ingesting(conn, store_ids)
            if not pending:
                return
            await asyncio.sleep(0.25)
