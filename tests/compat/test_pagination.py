"""Cursor pagination through the SDK: auto-paging over more than 100 objects, and explicit cursors."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from conformance import assert_conforms

from .conftest import body_of

COUNT = 130


@pytest.fixture(scope="module")
def paged(server: Any) -> Iterator[tuple[Any, str, list[str]]]:
    """(client, thread id, message ids in creation order) for a thread of 130 messages."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
    thread = client.beta.threads.create()
    ids = [client.beta.threads.messages.create(thread.id, role="user", content=f"m{i}").id for i in range(COUNT)]
    yield client, thread.id, ids
    client.beta.threads.delete(thread.id)
    client.close()


@pytest.mark.parametrize("limit", [7, 20, 100])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_auto_pagination_yields_every_message_once_in_order(
    paged: tuple[Any, str, list[str]], order: str, limit: int
) -> None:
    client, thread_id, ids = paged
    expected = ids if order == "asc" else ids[::-1]
    got = [m.id for m in client.beta.threads.messages.list(thread_id, limit=limit, order=order)]
    assert len(got) == COUNT
    assert got == expected
    # And the text matches the id, so the pages hold the right rows and not only the right ids.
    first = client.beta.threads.messages.list(thread_id, limit=limit, order=order).data[0]
    assert first.content[0].text.value == ("m0" if order == "asc" else f"m{COUNT - 1}")


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_has_more_is_exact_so_no_empty_page_is_fetched(paged: tuple[Any, str, list[str]], order: str) -> None:
    client, thread_id, ids = paged
    limit = 10  # divides 130: the last full page must already say has_more=false
    pages = list(client.beta.threads.messages.list(thread_id, limit=limit, order=order).iter_pages())
    assert len(pages) == math.ceil(COUNT / limit)
    assert [len(p.data) for p in pages] == [limit] * len(pages)
    assert [p.has_more for p in pages] == [True] * (len(pages) - 1) + [False]
    for page in pages:
        assert page.first_id == page.data[0].id and page.last_id == page.data[-1].id
    expected = ids if order == "asc" else ids[::-1]
    assert [m.id for p in pages for m in p.data] == expected


def test_list_page_conforms(paged: tuple[Any, str, list[str]]) -> None:
    client, thread_id, ids = paged
    body = body_of(client.beta.threads.messages.with_raw_response.list(thread_id, limit=100, order="asc"))
    assert_conforms(body, "ListMessagesResponse")
    assert len(body["data"]) == 100
    assert body["has_more"] is True
    assert body["first_id"] == ids[0] and body["last_id"] == ids[99]
    assert body_of(client.beta.threads.messages.with_raw_response.list(thread_id))["data"][0]["id"] == ids[-1]
    assert len(body_of(client.beta.threads.messages.with_raw_response.list(thread_id))["data"]) == 20


def page(client: Any, thread_id: str, **params: Any) -> tuple[list[str], bool]:
    result = client.beta.threads.messages.list(thread_id, **params)
    return [m.id for m in result.data], result.has_more


def test_after_cursor(paged: tuple[Any, str, list[str]]) -> None:
    client, thread_id, ids = paged
    assert page(client, thread_id, order="asc", after=ids[9], limit=5) == (ids[10:15], True)
    assert page(client, thread_id, order="desc", after=ids[50], limit=5) == (ids[45:50][::-1], True)
    assert page(client, thread_id, order="asc", after=ids[-3], limit=5) == (ids[-2:], False)
    assert page(client, thread_id, order="asc", after=ids[-1], limit=5) == ([], False)
    assert page(client, thread_id, order="desc", after=ids[0], limit=5) == ([], False)


def test_before_cursor(paged: tuple[Any, str, list[str]]) -> None:
    client, thread_id, ids = paged
    # `before` returns the objects just before the cursor, still in the requested order.
    assert page(client, thread_id, order="asc", before=ids[20], limit=5) == (ids[15:20], True)
    assert page(client, thread_id, order="desc", before=ids[50], limit=5) == (ids[51:56][::-1], True)
    assert page(client, thread_id, order="asc", before=ids[3], limit=5) == (ids[:3], False)
    assert page(client, thread_id, order="asc", before=ids[0], limit=5) == ([], False)
    assert page(client, thread_id, order="desc", before=ids[-1], limit=5) == ([], False)


def test_before_and_after_together_bound_a_window(paged: tuple[Any, str, list[str]]) -> None:
    client, thread_id, ids = paged
    got, _ = page(client, thread_id, order="asc", after=ids[10], before=ids[14], limit=100)
    assert got == ids[11:14]


def test_auto_pagination_from_a_cursor(paged: tuple[Any, str, list[str]]) -> None:
    client, thread_id, ids = paged
    got = [m.id for m in client.beta.threads.messages.list(thread_id, order="asc", after=ids[99], limit=8)]
    assert got == ids[100:]
    got = [m.id for m in client.beta.threads.messages.list(thread_id, order="desc", after=ids[30], limit=8)]
    assert got == ids[:30][::-1]


def test_a_deleted_cursor_still_pages(client: Any) -> None:
    thread = client.beta.threads.create()
    ids = [client.beta.threads.messages.create(thread.id, role="user", content=str(i)).id for i in range(6)]
    client.beta.threads.messages.delete(ids[2], thread_id=thread.id)
    assert page(client, thread.id, order="asc", after=ids[2], limit=10) == (ids[3:], False)
    assert page(client, thread.id, order="desc", after=ids[2], limit=10) == (ids[:2][::-1], False)


@pytest.mark.parametrize("limit", [0, 101])
def test_limit_out_of_range_is_a_400(client: Any, limit: int) -> None:
    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.beta.threads.messages.list(thread.id, limit=limit)
    body = exc_info.value.response.json()
    assert_conforms(body, "ErrorResponse")
    assert body["error"]["param"] == "limit"
