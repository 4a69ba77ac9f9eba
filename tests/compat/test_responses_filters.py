"""file_search `filters` in the Responses API: comparison and compound filters on the files' attributes,
as the vector store search endpoint takes them (docs/responses.md), through the official SDK."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from assistd.testing.fake_upstream import FakeUpstream

from .test_file_search_runs import cited_answer, ready_store
from .test_responses import api_error, chat, create, new_model

pytestmark = pytest.mark.skipif(not hasattr(openai.OpenAI, "responses"), reason="this openai SDK has no Responses API")


def labelled_store(client: Any) -> tuple[str, str, str]:
    """A store of two files: the book (genre novel, year 1851) and the market news (genre news, 2024)."""
    store_id, book_id = ready_store(client)
    other_id = next(f.id for f in client.vector_stores.files.list(store_id) if f.id != book_id)
    client.vector_stores.files.update(book_id, vector_store_id=store_id, attributes={"genre": "novel", "year": 1851})
    client.vector_stores.files.update(other_id, vector_store_id=store_id, attributes={"genre": "news", "year": 2024})
    return store_id, book_id, other_id


def searched(client: Any, fake: FakeUpstream, store_id: str, filters: Any) -> tuple[dict[str, Any], set[str]]:
    model = new_model()
    cited_answer(fake, model, "Found it.")
    tool = {"type": "file_search", "vector_store_ids": [store_id], "filters": filters}
    body = create(client, model=model, input="Who hunted?", tools=[tool], include=["file_search_call.results"])
    assert body["status"] == "completed", body["error"]
    assert body["tools"][0]["filters"] == filters
    search = body["output"][0]
    assert search["type"] == "file_search_call"
    # what the model read agrees with the results shown
    tool_output = next(m for m in chat(fake, model) if m["role"] == "tool")["content"]
    files = {r["file_id"] for r in search["results"]}
    for result in search["results"]:  # each result shows its file's attributes
        assert result["attributes"]["genre"] in ("novel", "news") and isinstance(
            result["attributes"]["year"], int | float
        )
    if not files:
        assert "Ishmael" not in tool_output and "stock market" not in tool_output
    return body, files


def test_comparison_and_compound_filters_restrict_the_files_searched(client: Any, fake: FakeUpstream) -> None:
    store_id, book_id, other_id = labelled_store(client)
    _, unfiltered = searched(client, fake, store_id, {"type": "gte", "key": "year", "value": 0})
    assert unfiltered == {book_id, other_id}
    _, novels = searched(client, fake, store_id, {"type": "eq", "key": "genre", "value": "novel"})
    assert novels == {book_id}
    _, news = searched(client, fake, store_id, {"type": "ne", "key": "genre", "value": "novel"})
    assert news == {other_id}
    both = {
        "type": "and",
        "filters": [
            {"type": "in", "key": "genre", "value": ["novel", "news"]},
            {"type": "lt", "key": "year", "value": 2000},
        ],
    }
    _, old = searched(client, fake, store_id, both)
    assert old == {book_id}
    either = {
        "type": "or",
        "filters": [{"type": "eq", "key": "genre", "value": "poetry"}, {"type": "gt", "key": "year", "value": 3000}],
    }
    _, none = searched(client, fake, store_id, either)
    assert none == set()


def test_bad_filters_are_a_400_naming_them(client: Any) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        tool = {"type": "file_search", "vector_store_ids": ["vs_x"], "filters": {"type": "eq", "key": "a"}}
        client.responses.create(model=new_model(), input="x", tools=[tool])
    assert api_error(exc, 400)["param"].startswith("tools[0].filters")
    with pytest.raises(openai.BadRequestError) as exc:
        tool = {"type": "file_search", "vector_store_ids": ["vs_x"], "filters": {"type": "in", "key": "a", "value": 1}}
        client.responses.create(model=new_model(), input="x", tools=[tool])
    assert api_error(exc, 400)["param"].startswith("tools[0].filters")
