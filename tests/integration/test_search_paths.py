"""Search's cheaper paths (issue 18) give the same candidates for less work, in process on a migrated database:

- the query is embedded while the keyword query runs, not before it (both backends);
- SQLite: a query term in half the chunks or more (bm25's idf clamped to 1e-6) is left out of the FTS5
  query, so "the zebra" costs about what "zebra" does, and ranks the same; counted in SQLite VM steps;
- PostgreSQL: a word in every chunk (not a stop word) no longer makes every chunk a keyword candidate,
  and the chunks that match another word keep their rank and score by the whole query; counted in
  the rows the keyword query reads (EXPLAIN ANALYZE);
- SQLite: a filtered search's keyword candidates are the exact ones (FTS5 over every store, then the
  allowed files; or the exact query when the filter keeps too few), for filters that keep most, some,
  or one of the files;
- the vector scan of a large store (in a worker thread) finds the exact top of a numpy matrix product;
- PostgreSQL: the stored tsvector the keyword query ranks follows the text (migration 0016);
- PostgreSQL: the keyword query reads chunks through the GIN index, never the whole table (counted
  in pg_stat_user_tables.seq_scan);
- PostgreSQL: pgvector's index scan, asked for enough rows, fills a search filtered to half the files.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from assistd.db import migrate
from assistd.db import tables as t
from assistd.db.database import Database, create_engine
from assistd.retrieval import search as engine
from assistd.testing.postgres import TestPostgres

BACKENDS = os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")
STORE = "vs_0000paths00000000000000000000"
DIMS = 8
FILES = 40
CHUNKS = 2_400  # over engine.INFORMATIVE_MIN_ROWS: common terms are left out from there on
COMMON = ["the", "of", "and", "lorem"]  # in every chunk ("lorem": not an English stop word)
RARE = "zebra"  # in a few chunks


def vocabulary() -> list[str]:
    rng = random.Random(3)
    return ["".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(3)) for _ in range(400)]


def chunk_text(rng: random.Random, words: list[str], i: int) -> str:
    picked = rng.choices(words, k=12)
    if i % 500 == 7:
        picked.append(RARE)
    return " ".join([*COMMON, *picked])


async def populate(db: Database) -> None:
    rng = random.Random(5)
    words = vocabulary()
    vectors = np.random.default_rng(5).standard_normal((CHUNKS, DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    async with db.write() as conn:
        await conn.execute(
            t.vector_stores.insert().values(
                id=STORE, project_id="proj_t", created_at=0, name="paths", description=None,
                expires_after=None, last_active_at=0, metadata={},
            )
        )  # fmt: skip
        files = [f"file-paths{i:04d}" for i in range(FILES)]
        await conn.execute(
            t.files.insert(),
            [
                {"id": f, "project_id": "proj_t", "created_at": 0, "filename": f"{f}.txt", "purpose": "assistants",
                 "bytes": 1, "status": "processed", "expires_at": None, "blob_key": "x"}
                for f in files
            ],
        )  # fmt: skip
        await conn.execute(
            t.vector_store_files.insert(),
            [
                {"vector_store_id": STORE, "id": f, "project_id": "proj_t", "batch_id": None, "created_at": 0,
                 "status": "completed", "last_error": None, "chunking_strategy": {}, "attributes": {"n": i},
                 "usage_bytes": 0, "lease_owner": None, "lease_expires_at": None}
                for i, f in enumerate(files)
            ],
        )  # fmt: skip
        await conn.execute(
            t.chunks.insert(),
            [
                {"vector_store_id": STORE, "file_id": files[i % FILES], "seq": i, "text": chunk_text(rng, words, i),
                 "tokens": 15, "embedding": vectors[i].astype("<f4").tobytes()}
                for i in range(CHUNKS)
            ],
        )  # fmt: skip


@pytest.fixture(scope="module", params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        found = f"sqlite:///{tmp_path_factory.mktemp('paths') / 'search.db'}"
    else:
        pg: TestPostgres = request.getfixturevalue("postgres")
        found = pg.new_database()

    async def prepare() -> None:
        migration = create_engine(found, pool_size=1)
        await migrate.upgrade(migration)
        await migration.dispose()
        db = Database(found)
        try:
            await populate(db)
        finally:
            await db.dispose()

    asyncio.run(prepare())
    yield found


class SteadyEmbedder:
    """A fixed query vector; `hold` makes embed() wait in a worker thread for the keyword query to start."""

    model = "steady"
    dimensions = DIMS

    def __init__(self, hold: threading.Event | None = None) -> None:
        self.hold = hold
        self.keyword_ran_meanwhile: bool | None = None

    async def embed(self, texts: Sequence[str]) -> Any:
        if self.hold is not None:
            hold = self.hold
            self.keyword_ran_meanwhile = await asyncio.to_thread(hold.wait, 10.0)
        vectors = np.ones((len(texts), DIMS), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_the_query_is_embedded_while_the_keyword_query_runs(url: str) -> None:
    keyword_started = threading.Event()

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "chunks_fts" in statement or "to_tsquery" in statement:
            keyword_started.set()

    async def main() -> list[engine.SearchHit]:
        db = Database(url)
        try:
            return await engine.search(db, embedder, [STORE], [f"{RARE} of"], max_num_results=5)
        finally:
            await db.dispose()

    embedder = SteadyEmbedder(hold=keyword_started)
    event.listen(Engine, "before_cursor_execute", seen)
    try:
        hits = asyncio.run(main())
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert embedder.keyword_ran_meanwhile is True  # before: the embedding was awaited first (held 10 s)
    assert hits and RARE in hits[0].text


class VmSteps:
    """SQLite virtual-machine steps on every new pysqlite connection (FTS5's own statements included)."""

    def __init__(self) -> None:
        self.steps = 0

    def __enter__(self) -> VmSteps:
        event.listen(Pool, "connect", self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(Pool, "connect", self._hook)

    def _hook(self, dbapi_conn: Any, _record: Any) -> None:
        if hasattr(dbapi_conn, "set_progress_handler"):
            dbapi_conn.set_progress_handler(self._tick, 100)

    def _tick(self) -> int:
        self.steps += 100
        return 0


def test_a_term_in_every_chunk_costs_nothing_and_changes_nothing(url: str) -> None:
    if not url.startswith("sqlite"):
        pytest.skip("FTS5 is SQLite's; PostgreSQL's to_tsquery drops English stop words itself")

    async def main(counter: VmSteps) -> dict[str, tuple[int, list[tuple[str, int]]]]:
        db = Database(url)
        found: dict[str, tuple[int, list[tuple[str, int]]]] = {}
        try:
            for query in [RARE, f"the {RARE} of", f"the {RARE} of"]:  # the last: term counts cached
                before = counter.steps
                async with db.read() as conn:
                    hits = await engine._keyword(conn, db.dialect, [STORE], query, 50, None, db=db)
                found[query] = (counter.steps - before, [(k[1], k[2]) for k, _ in hits])
        finally:
            await db.dispose()
        return found

    with VmSteps() as counter:
        found = asyncio.run(main(counter))
    rare_steps, rare_hits = found[RARE]
    common_steps, common_hits = found[f"the {RARE} of"]
    assert common_hits == rare_hits and len(rare_hits) == len(range(7, CHUNKS, 500))
    # Before: FTS5 ranked all 2,400 chunks for "the" and "of" (~40x the steps of "zebra" alone).
    assert common_steps <= 3 * rare_steps + 2_000, (common_steps, rare_steps)


def test_only_common_terms_are_all_kept(url: str) -> None:
    if not url.startswith("sqlite"):
        pytest.skip("FTS5 is SQLite's")

    async def main() -> tuple[list[str], list[str], int]:
        db = Database(url)
        try:
            async with db.read() as conn:
                kept = await engine.informative_terms(conn, db, ["the", "of", RARE])
                only_common = await engine.informative_terms(conn, db, ["the", "of"])
                hits = await engine._keyword(conn, db.dialect, [STORE], "the of", 50, None, db=db)
            return kept, only_common, len(hits)
        finally:
            await db.dispose()

    kept, only_common, hits = asyncio.run(main())
    assert kept == [RARE]
    assert only_common == ["the", "of"] and hits == 50


class Statements:
    """The statements (and their parameters) run through any engine meanwhile that contain `marker`."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.seen: list[tuple[str, Any]] = []

    def __enter__(self) -> Statements:
        event.listen(Engine, "before_cursor_execute", self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(Engine, "before_cursor_execute", self._hook)

    def _hook(self, conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if self.marker in statement:
            self.seen.append((statement, parameters))


def rows_read(plan: dict[str, Any], relation: str) -> int:
    """The rows the plan's scans of `relation` returned (after their index conditions and rechecks)."""
    found = plan["Actual Rows"] * plan["Actual Loops"] if plan.get("Relation Name") == relation else 0
    return int(found + sum(rows_read(child, relation) for child in plan.get("Plans", [])))


@pytest.mark.parametrize("filtered", [False, True])
def test_postgres_a_word_in_every_chunk_reorders_nothing_and_is_not_a_candidate(url: str, filtered: bool) -> None:
    """ts_rank_cd has no idf: the whole query still ranks, but only chunks with an informative word match."""
    if url.startswith("sqlite"):
        pytest.skip("ts_rank_cd is PostgreSQL's (SQLite: test_a_term_in_every_chunk_costs_nothing_and_changes_nothing)")
    # Filtered: half the files less one, so 2 of the 5 chunks with the rare word are allowed.
    files = [f"file-paths{i:04d}" for i in range(1, FILES, 2) if i != 7] if filtered else None
    query = f"lorem {RARE} the"  # "the": a stop word, which to_tsquery drops
    whole_query = (
        "SELECT file_id, seq, ts_rank_cd(text_tsv, to_tsquery('english', 'lorem | zebra | the')) AS score "
        "FROM chunks WHERE text_tsv @@ to_tsquery('english', 'lorem | zebra')"
        + (" AND file_id IN (" + ",".join(f"'{f}'" for f in files) + ")" if files else "")
        + " ORDER BY score DESC, file_id, seq"
    )

    async def main() -> tuple[list[tuple[str, int, float]], list[tuple[str, int, float]], int, int]:
        db = Database(url)
        try:
            with Statements("ts_rank_cd") as statements:
                async with db.read() as conn:
                    found = await engine._keyword(conn, db.dialect, [STORE], query, 50, files, db=db)
            async with db.read() as conn:
                # Ranked by the whole query, as before, among the chunks with the rare word.
                ranked = [(r.file_id, r.seq, float(r.score)) for r in await conn.execute(text(whole_query))]
                (statement, parameters), *_ = statements.seen
                plan = (
                    await conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, tuple(parameters))
                ).scalar_one()
            plan = json.loads(plan) if isinstance(plan, str) else plan
            return [(k[1], k[2], s) for k, s in found], ranked, rows_read(plan[0]["Plan"], "chunks"), len(ranked)
        finally:
            await db.dispose()

    found, ranked, read, every = asyncio.run(main())
    rare = [(f, seq, s) for f, seq, s in ranked if (seq - 7) % 500 == 0]
    assert rare and len(rare) == len(
        [i for i in range(7, CHUNKS, 500) if files is None or f"file-paths{i % FILES:04d}" in files]
    )
    assert ranked[: len(rare)] == rare  # the rare word's chunks led the whole query's ranking, ...
    assert [(f, seq) for f, seq, _ in found] == [(f, seq) for f, seq, _ in rare]  # ... and they alone are candidates,
    assert [s for _, _, s in found] == pytest.approx([s for _, _, s in rare])  # scored by the whole query
    # Before: every chunk (of the allowed files) matched "lorem" and was read and ranked.
    assert every == (CHUNKS if files is None else CHUNKS // FILES * len(files))
    assert read <= 10 * len(rare), (read, every)


def test_postgres_keyword_query_reads_chunks_through_the_index(url: str) -> None:
    """A word in every chunk: the planner would read the whole table, detoasting each chunk's tsvector
    to test it (a cost it does not count); the keyword query goes through the GIN index instead, also
    in the prepared statement's generic plan (from its 6th run), with a filter of many files."""
    if url.startswith("sqlite"):
        pytest.skip("PostgreSQL's planner")
    files = [f"file-paths{i:04d}" for i in range(0, FILES, 2)]
    scans = text("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'chunks'")

    async def main() -> tuple[int, int]:
        db = Database(url)
        try:
            async with db.read() as conn:
                await conn.execute(text("ANALYZE chunks"))  # the planner knows how common the word is
                await conn.execute(text("SELECT pg_stat_force_next_flush()"))
                before = int((await conn.execute(scans)).scalar_one())
                found = 0
                for _ in range(8):
                    for restrict in (None, files):
                        found += len(await engine._keyword(conn, db.dialect, [STORE], "lorem", 50, restrict, db=db))
                await conn.execute(text("SELECT pg_stat_force_next_flush()"))
                after = int((await conn.execute(scans)).scalar_one())
            return found, after - before
        finally:
            await db.dispose()

    found, seq_scans = asyncio.run(main())
    assert found == 16 * 50
    assert seq_scans == 0  # before: one per query


class RandomEmbedder:
    """Random L2-normalised query vectors of pgvector's width."""

    model = "random"
    dimensions = engine.PGVECTOR_DIMENSIONS

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    async def embed(self, texts: Sequence[str]) -> Any:
        vectors = self.rng.standard_normal((len(texts), self.dimensions)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.skipif("postgres" not in BACKENDS, reason="pgvector is PostgreSQL's")
def test_postgres_a_filter_keeping_half_the_files_needs_no_exact_vector_scan(postgres: TestPostgres) -> None:
    """pgvector's HNSW scan is asked for enough rows that the allowed files' share of them fills the list.

    Before: hnsw.ef_search was twice the candidates whatever the filter, so a filter keeping half the
    files left fewer than wanted about half the time, and every allowed row was then ranked exactly.
    """
    url = postgres.new_database()
    store, files, per_file = "vs_0000pgvector0000000000000000", 20, 40
    names = [f"file-vec{i:04d}" for i in range(files)]
    rng = np.random.default_rng(11)

    async def main() -> list[int]:
        migration = create_engine(url, pool_size=1)
        await migrate.upgrade(migration)
        async with migration.begin() as conn:  # sessions from now on: a table this small would be sorted whole
            for setting in ["enable_seqscan", "enable_sort"]:
                await conn.execute(
                    text(
                        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET "
                        + setting
                        + " = off', current_database()); END $$"
                    )
                )
        await migration.dispose()
        db = Database(url)
        try:
            if not await engine.has_pgvector(db):
                pytest.skip("no pgvector extension in this PostgreSQL")
            vectors = rng.standard_normal((files * per_file, engine.PGVECTOR_DIMENSIONS)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            async with db.write() as conn:
                await conn.execute(
                    t.vector_stores.insert().values(
                        id=store, project_id="proj_t", created_at=0, name="vec", description=None,
                        expires_after=None, last_active_at=0, metadata={},
                    )
                )  # fmt: skip
                await conn.execute(
                    t.files.insert(),
                    [
                        {"id": f, "project_id": "proj_t", "created_at": 0, "filename": f"{f}.txt",
                         "purpose": "assistants", "bytes": 1, "status": "processed", "expires_at": None,
                         "blob_key": "x"}
                        for f in names
                    ],
                )  # fmt: skip
                await conn.execute(
                    t.vector_store_files.insert(),
                    [
                        {"vector_store_id": store, "id": f, "project_id": "proj_t", "batch_id": None,
                         "created_at": 0, "status": "completed", "last_error": None, "chunking_strategy": {},
                         "attributes": {"half": i % 2}, "usage_bytes": 0, "lease_owner": None,
                         "lease_expires_at": None}
                        for i, f in enumerate(names)
                    ],
                )  # fmt: skip
                await conn.execute(
                    text(
                        "INSERT INTO chunks (vector_store_id, file_id, seq, text, tokens, embedding, embedding_vec) "
                        "VALUES (:s, :f, :q, 'text', 1, :e, CAST(CAST(:v AS text) AS vector))"
                    ),
                    [
                        {"s": store, "f": names[i % files], "q": i, "e": vector.astype("<f4").tobytes(),
                         "v": engine.vector_literal(vector)}
                        for i, vector in enumerate(vectors)
                    ],
                )  # fmt: skip
            scans: list[int] = []
            embedder = RandomEmbedder(12)
            half = {"key": "half", "type": "eq", "value": 1}
            with Statements("embedding_vec <=>") as statements:
                for _ in range(20):
                    before = len(statements.seen)
                    hits = await engine.search(db, embedder, [store], ["x"], max_num_results=10, filters=half)
                    scans.append(len(statements.seen) - before)
                    assert len(hits) == 10 and all(hit.attributes == {"half": 1} for hit in hits)
            return scans
        finally:
            await db.dispose()

    # One statement per search: the index scan. Before: 2 (the exact scan after it) in ~half of them.
    assert asyncio.run(main()) == [1] * 20


@pytest.mark.parametrize("keep", [30, 8, 1])
def test_filtered_keyword_candidates_are_the_exact_ones(url: str, keep: int) -> None:
    if not url.startswith("sqlite"):
        pytest.skip("the overfetch is FTS5's")
    files = [f"file-paths{i:04d}" for i in range(0, FILES, FILES // keep)][:keep]
    words = vocabulary()

    async def main() -> None:
        db = Database(url)
        try:
            async with db.read() as conn:
                for query in [" ".join(words[i : i + 3]) for i in range(0, 60, 6)]:
                    found = await engine._keyword(
                        conn, db.dialect, [STORE], query, 50, files, db=db, share=len(files) / FILES
                    )
                    terms = " OR ".join(f'"{w}"' for w in query.split())
                    exact = await conn.execute(
                        text(
                            "SELECT c.file_id, c.seq, -f.rank AS score FROM chunks_fts AS f JOIN chunks AS c "
                            "ON c.rowid = f.rowid WHERE chunks_fts MATCH :m AND c.file_id IN ("
                            + ",".join(f"'{f}'" for f in files)
                            + ") ORDER BY f.rank LIMIT 50"
                        ),
                        {"m": f"text : ({terms})"},
                    )
                    expected = [(r.file_id, r.seq, r.score) for r in exact]
                    assert [score for _, score in found] == pytest.approx([s for _, _, s in expected]), query
                    # Chunks of equal score at the cut may be either ones; those above it are the same.
                    cut = expected[-1][2] if expected else 0.0
                    above = {(f, s) for f, s, score in expected if score > cut + 1e-9}
                    assert above == {(k[1], k[2]) for k, score in found if score > cut + 1e-9}, query
        finally:
            await db.dispose()

    asyncio.run(main())


def test_the_threaded_scan_of_a_large_store_is_the_exact_top() -> None:
    rows = engine.THREAD_SCAN_ROWS + 5_000
    rng = np.random.default_rng(9)
    vectors = rng.standard_normal((rows, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    codes = (np.arange(rows) % 50).astype(np.int32)
    matrix = engine._Matrix(0, [f"file-{i}" for i in range(50)], codes, np.arange(rows, dtype=np.int32), vectors)
    allowed: dict[tuple[str, str], object] = {("vs_a", f"file-{i}"): {} for i in range(0, 50, 2)}

    class Fixed:
        model = "fixed"
        dimensions = 32

        async def embed(self, texts: Sequence[str]) -> Any:
            query = rng.standard_normal((len(texts), 32)).astype(np.float32)
            return query / np.linalg.norm(query, axis=1, keepdims=True)

    queries, found = asyncio.run(engine._embed_and_scan(Fixed(), ["a", "b"], [("vs_a", matrix)], 40, allowed))
    for query, scanned in zip(queries, found, strict=True):
        sims = vectors @ query
        sims[codes % 2 == 1] = -np.inf
        top = np.argsort(-sims, kind="stable")[:40]
        assert scanned is not None
        assert [k[2] for k, _ in scanned] == [int(i) for i in top]
        assert [s for _, s in scanned] == pytest.approx([float(sims[i]) for i in top], abs=1e-5)


def test_postgres_ranks_a_stored_tsvector_that_follows_the_text(url: str) -> None:
    """Migration 0016: `chunks.text_tsv` is to_tsvector('english', text), kept by PostgreSQL on every write."""
    if url.startswith("sqlite"):
        pytest.skip("PostgreSQL's column; SQLite's FTS5 index is kept by triggers")

    async def main() -> None:
        db = Database(url)
        try:
            async with db.read() as conn:
                stale = "SELECT count(*) FROM chunks WHERE text_tsv IS DISTINCT FROM to_tsvector('english', text)"
                assert (await conn.execute(text(stale))).scalar_one() == 0
                assert await engine._keyword(conn, db.dialect, [STORE], "quokkas", 10, None) == []
            async with db.write() as conn:
                await conn.execute(text("UPDATE chunks SET text = text || ' quokka' WHERE seq = 3"))
            try:
                async with db.read() as conn:
                    found = await engine._keyword(conn, db.dialect, [STORE], "quokkas", 10, None)
                    assert [k[2] for k, _ in found] == [3]  # stemmed, as to_tsvector('english') does
            finally:
                async with db.write() as conn:
                    await conn.execute(text("UPDATE chunks SET text = replace(text, ' quokka', '') WHERE seq = 3"))
        finally:
            await db.dispose()

    asyncio.run(main())
