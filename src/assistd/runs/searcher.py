"""Running a run's file_search calls: the assistant's and thread's stores, waiting for ingestion, hybrid search."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from assistd.db.database import Database
from assistd.runs import file_search
from assistd.runs.store import run_resources
from assistd.stores.vector_stores import any_ingesting, begin_search

INGESTION_WAIT_SECONDS = 60.0


class SearchFailed(Exception):
    """The run must fail: `code` is its last_error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class FileSearcher:
    def __init__(self, db: Database, retriever: file_search.Retriever | None) -> None:
        self.db = db
        self.retriever = retriever

    async def search(self, run: Any, slots: list[dict[str, Any]], cancel: asyncio.Event) -> None:
        """Fill each file_search call's results (and its private queries)."""
        max_results, ranking = file_search.settings_of(run.tools)
        store_ids, thread_stores = await self._run_stores(run)
        expired = await self._expired_store(store_ids)
        if expired is not None:
            raise SearchFailed("invalid_prompt", f"Vector store {expired} has expired.")
        await self._await_ingestion(thread_stores, cancel)
        for slot in slots:
            try:
                queries = orjson.loads(slot["_arguments"] or "{}").get("queries")
            except (orjson.JSONDecodeError, AttributeError):
                queries = None
            if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
                raise SearchFailed("server_error", "The model produced invalid arguments for file_search.")
            hits = []
            if self.retriever is not None and store_ids and queries:
                hits = list(await self.retriever(store_ids, queries, max_results, float(ranking["score_threshold"])))
            slot[file_search.NAME]["results"] = file_search.result_entries(hits)
            slot["_queries"] = queries

    async def _run_stores(self, run: Any) -> tuple[list[str], list[str]]:
        """The vector stores a run searches: its assistant's and its thread's (spec §10)."""
        async with self.db.read() as conn:
            assistant, thread = await run_resources(conn, run)

        def ids_of(resources: Any) -> list[str]:
            return list(((resources or {}).get(file_search.NAME) or {}).get("vector_store_ids") or [])

        thread_ids = ids_of(thread)
        return list(dict.fromkeys(ids_of(assistant) + thread_ids)), thread_ids

    async def _expired_store(self, store_ids: list[str]) -> str | None:
        """The first of the stores past its expiry (searching it fails the run, as on OpenAI), if any."""
        async with self.db.write() as conn:
            return await begin_search(conn, store_ids, int(time.time()))

    async def _await_ingestion(self, store_ids: list[str], cancel: asyncio.Event) -> None:
        """Runs wait (up to a minute) for the thread's files still being ingested, as OpenAI's did."""
        if not store_ids:
            return
        deadline = time.monotonic() + INGESTION_WAIT_SECONDS
        while time.monotonic() < deadline and not cancel.is_set():
            async with self.db.read() as conn:
                pending = await any_ingesting(conn, store_ids)
            if not pending:
                return
            await asyncio.sleep(0.25)
