"""Listing messages costs one SQL statement (issue 18): the page and the thread's check in one query, on a
real SQLite database under the real app (ASGI in process, no server needed to count statements)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from assistd.app import create_app
from assistd.protocol.messages import MessageCreate
from assistd.protocol.threads import ThreadCreate
from assistd.settings import Settings

KEY = "sk-test-0123456789abcdef0123456789abcdef"


async def get(app: Any, path: str, query: str = "") -> tuple[int, Any]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"test"), (b"authorization", f"Bearer {KEY}".encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "app": app,
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


def test_a_page_of_messages_is_one_statement_and_a_missing_thread_two(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "ASSISTD_DATA_DIR": str(tmp_path),
        "ASSISTD_API_KEYS": KEY,
        "ASSISTD_KEY_CACHE_SECONDS": "3600",
        "ASSISTD_LOCAL_ENABLED": "false",
        "ASSISTD_LOG_REQUESTS": "false",
    }.items():
        monkeypatch.setenv(name, value)

    statements: list[str] = []

    def seen(statement: str) -> None:
        if "messages" in statement or "threads" in statement:  # not the worker's polls of runs
            statements.append(statement)

    def trace(dbapi_conn: Any, _record: Any) -> None:  # every statement SQLite runs, however it is sent
        if isinstance(dbapi_conn, sqlite3.Connection):  # the server's (migrations run through aiosqlite)
            dbapi_conn.set_trace_callback(seen)

    async def main() -> None:
        app = create_app(Settings())
        async with app.router.lifespan_context(app):
            services = app.state.services
            messages = [MessageCreate(role="user", content=f"m{i}") for i in range(30)]
            thread = await services.threads.create("proj_default", ThreadCreate(messages=messages))
            empty = await services.threads.create("proj_default", ThreadCreate())
            _, first = await get(app, f"/v1/threads/{thread.id}/messages", "limit=20")
            ids = [m["id"] for m in first["data"]]
            for query in ("limit=20", "limit=5&order=asc", f"after={ids[0]}&before={ids[3]}", f"before={ids[3]}"):
                statements.clear()
                status, body = await get(app, f"/v1/threads/{thread.id}/messages", query)
                assert status == 200 and body["data"], body
                assert len(statements) == 1, statements
            statements.clear()
            status, body = await get(app, f"/v1/threads/{empty.id}/messages")
            assert status == 200 and body["data"] == [] and len(statements) == 2  # empty: then the thread
            statements.clear()
            status, body = await get(app, "/v1/threads/thread_missing/messages")
            assert status == 404 and body["error"]["message"] == "No thread found with id 'thread_missing'."

    event.listen(Engine, "connect", trace)
    try:
        asyncio.run(main())
    finally:
        event.remove(Engine, "connect", trace)


def test_imported_messages_list_in_sort_key_order_with_cursors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Imported ids do not sort by time: the one query orders by `coalesce(sort_key, id)` and places its
    cursors by the cursor's sort key, as every list does (stores/common.py)."""
    from assistd.services.threads import new_message
    from assistd.stores import messages as message_store

    monkeypatch.setenv("ASSISTD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASSISTD_API_KEYS", KEY)
    monkeypatch.setenv("ASSISTD_LOCAL_ENABLED", "false")
    monkeypatch.setenv("ASSISTD_LOG_REQUESTS", "false")

    async def main() -> None:
        app = create_app(Settings())
        async with app.router.lifespan_context(app):
            services = app.state.services
            thread = await services.threads.create("proj_default", ThreadCreate())
            # Ids in reverse of their order in the thread, which their sort keys give.
            records = [
                dataclasses.replace(
                    new_message(thread.id, MessageCreate(role="user", content=f"m{i}"), 1_700_000_000 + i),
                    id=f"msg_imported_{9 - i}",
                    sort_key=f"msg_0000000{i}",
                )
                for i in range(6)
            ]
            async with services.db.write() as conn:
                await message_store.insert_messages(conn, records)
            order = [r.id for r in records]
            path = f"/v1/threads/{thread.id}/messages"
            _, body = await get(app, path, "order=asc")
            assert [m["id"] for m in body["data"]] == order
            _, body = await get(app, path, "order=desc&limit=2")
            assert [m["id"] for m in body["data"]] == order[::-1][:2] and body["has_more"] is True
            _, body = await get(app, path, f"order=asc&after={order[1]}&limit=2")
            assert [m["id"] for m in body["data"]] == order[2:4]
            _, body = await get(app, path, f"order=asc&before={order[4]}&limit=2")
            assert [m["id"] for m in body["data"]] == order[2:4]
            _, body = await get(app, path, f"order=desc&after={order[4]}&before={order[1]}")
            assert [m["id"] for m in body["data"]] == order[2:4][::-1]

    asyncio.run(main())
