"""Helpers for the compat suite: the official `openai` SDK against a live assistd.

The same suite runs under the pinned SDK and, through test_legacy_sdk.py, under openai 1.109.1, so
everything here sticks to SDK surface both versions share.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import column, func, select, table
from sqlalchemy.ext.asyncio import create_async_engine

from assistd.testing.server import LiveServer

# Set by test_legacy_sdk.py in the pytest subprocess it starts with an older SDK first on sys.path.
LEGACY_SDK = os.environ.get("ASSISTD_LEGACY_SDK")
PINNED_SDK_VERSION = "3.54.0"
LEGACY_SDK_VERSION = "1.109.1"

# A valid 1x1 PNG, for image_file message parts.
PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def body_of(raw: Any) -> dict[str, Any]:
    """The JSON body of a `with_raw_response` call, after checking the transport conventions."""
    assert raw.status_code == 200
    assert raw.headers.get("x-request-id"), "every response carries x-request-id"
    assert raw.headers["content-type"].startswith("application/json")
    body = raw.http_response.json()
    assert isinstance(body, dict)
    return body


def assert_object(body: dict[str, Any], *, prefix: str, object_type: str) -> None:
    """id prefix, `object`, and an integer Unix-seconds `created_at`."""
    assert body["object"] == object_type
    assert isinstance(body["id"], str) and body["id"].startswith(prefix) and len(body["id"]) > len(prefix)
    created_at = body["created_at"]
    assert type(created_at) is int
    # Seconds, not milliseconds: somewhere between 2020 and 2100.
    assert 1_577_836_800 < created_at < 4_102_444_800


def assert_not_found(exc_info: pytest.ExceptionInfo[Any], kind: str, object_id: str) -> None:
    from conformance import assert_conforms

    exc = exc_info.value
    assert exc.status_code == 404
    body = exc.response.json()
    assert_conforms(body, "ErrorResponse")
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"] == f"No {kind} found with id '{object_id}'."
    assert exc.response.headers.get("x-request-id")


def count_rows(server: LiveServer, table_name: str, **where: str) -> int:
    """Rows in the server's own database; for effects the API cannot show (cascading deletes)."""
    url = server.env.get("ASSISTD_DATABASE_URL") or f"sqlite+aiosqlite:///{server.data_dir / 'assistd.db'}"
    tbl = table(table_name, *(column(name) for name in where))
    query = select(func.count()).select_from(tbl).where(*(tbl.c[k] == v for k, v in where.items()))

    async def run() -> int:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return int((await conn.execute(query)).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.fixture()
def image_file(client: Any) -> Iterator[Any]:
    """An uploaded PNG (purpose "vision"), deleted afterwards."""
    uploaded = client.files.create(file=("pixel.png", PNG_1X1, "image/png"), purpose="vision")
    yield uploaded
    client.files.delete(uploaded.id)


@pytest.fixture()
def assistants_file(client: Any) -> Iterator[Any]:
    """An uploaded text file (purpose "assistants"), deleted afterwards."""
    uploaded = client.files.create(file=("notes.txt", b"hello from assistd\n", "text/plain"), purpose="assistants")
    yield uploaded
    client.files.delete(uploaded.id)
