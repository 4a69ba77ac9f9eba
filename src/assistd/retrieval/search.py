"""Hybrid search over vector stores: keyword (BM25) and vector (cosine) lists fused by normalised score.

`search()` is the engine for the search endpoint and the file_search tool. Per query it takes
`CANDIDATE_MULTIPLIER × max_num_results` candidates from each side:

- keyword: SQLite FTS5 `bm25` over `chunks_fts` (an external-content table kept by triggers,
  migration 0004), the query's words quoted and ORed, less those in half the chunks or more
  (`informative_terms`); PostgreSQL `ts_rank_cd` over the stored `text_tsv` (migration 0016) with a
  GIN index, the words ORed in a `to_tsquery` (which drops English stop words), matching only the
  chunks with an informative word (the same rule) but ranking them by the whole query;
- vector: on PostgreSQL with pgvector (migration 0005 added `chunks.embedding_vec vector(384)`
  and its HNSW index), `ORDER BY embedding_vec <=> q` for 384-dimension queries: the index scan
  first, and an exact scan of the stores' rows when the index scan comes up short (it returns at
  most `hnsw.ef_search` rows before the store and file conditions). Otherwise (SQLite, PostgreSQL
  without the extension, other dimensions) a dot product with the stored L2-normalised
  embeddings, in numpy. A store's matrix is loaded once and cached in process until
  `vector_stores.chunks_version` (bumped by triggers whenever its chunks change) moves on, so
  every replica sees other replicas' writes.

The lists (two per query) are fused by score, not by rank: each list's scores are min-max
normalised (its best candidate 1.0, its worst 0.0) and averaged over the lists, a list a chunk is
not in counting 0, so a chunk first in every list scores 1.0 and `score_threshold` (0..1) means
something. Unlike reciprocal-rank fusion (kept as `rrf_fuse`, which `bench/bench_retrieval.py`
measures against), how far apart the candidates are counts: a chunk well ahead in one list and near
the top of the other beats one merely ranked well in both (SciFact nDCG@10 0.719 -> 0.731 through
the API, docs/file-search.md). Equal fused scores (a keyword #1 absent from the vector list and a vector #1
absent from the keyword list tie at 0.5) are ordered by each chunk's lead over the next chunk of
the same list, on the same min-max scale, summed over the lists it is in: a keyword #1 far ahead
of the keyword #2 beats a vector #1 barely ahead of the vector #2. The chunk key breaks what is
still equal, so the order is deterministic.

Only chunks of files whose status is `completed` and whose attributes pass `filters` are
returned. A store's file map (status and attributes of each file) is cached in process like its
matrix, until `vector_stores.files_version` (bumped by triggers on `vector_store_files`,
migration 0012) moves on: one read of the two versions per search, no scan of the file rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import re
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import BindParameter, TextClause, bindparam, func, select, text

from assistd.db import tables as t
from assistd.db.database import Connection, Database
from assistd.retrieval.embedding import Embedder
from assistd.retrieval.filters import matches

if TYPE_CHECKING:  # numpy is in the `retrieval` extra: imported where it is used, so this module always imports
    import numpy as np
    import numpy.typing as npt

    from assistd.retrieval.embedding import Vectors

RRF_K = 60
CANDIDATE_MULTIPLIER = 5
MAX_QUERY_TERMS = 64
# In-process budget for cached store matrices (float32 bytes), least recently used out first.
CACHE_BYTES = 1 << 30
# Stores whose file maps are kept in process (a map of 5,000 files is a few MB at most).
FILE_MAP_CACHE_STORES = 256
RANKERS = ("none", "auto", "default-2024-11-15", "default_2024_08_21")

Key = tuple[str, str, int]  # (vector store id, file id, chunk seq)
Scored = list[tuple[Key, float]]  # one side's candidates, best first, with its own score (higher is better)
FileKey = tuple[str, str]  # (vector store id, file id)
Attributes = dict[str, Any]


@dataclass(frozen=True)
class SearchHit:
    vector_store_id: str
    file_id: str
    filename: str
    score: float  # 0..1
    text: str
    attributes: dict[str, Any]


def rrf_fuse(
    rankings: Sequence[Sequence[Key]], weights: Sequence[float] | None = None, k: int = RRF_K
) -> dict[Key, float]:
    """Reciprocal-rank fusion normalised to 0..1: first in every list is 1.0, absent everywhere 0.

    Not what `search()` ranks by (`fuse`): kept as the reference fusion that bench_retrieval.py measures against.
    """
    weights = list(weights) if weights is not None else [1.0] * len(rankings)
    total = sum(weights)
    if not rankings or total <= 0:
        return {}
    fused: dict[Key, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + weight / (k + rank)
    top = total / (k + 1)
    return {key: min(score / top, 1.0) for key, score in fused.items()}


def leads(ranking: Sequence[tuple[Key, float]]) -> dict[Key, float]:
    """Each candidate's margin over the next one in its list, on the list's min-max scale (0..1).

    The last has no next: its lead is 0. A list of one (or of equal scores) gives 1.0 to its first.
    """
    if not ranking:
        return {}
    scores = [score for _, score in ranking]
    high, low = max(scores), min(scores)
    spread = high - low
    if spread <= 0:
        return {ranking[0][0]: 1.0, **{key: 0.0 for key, _ in ranking[1:]}}
    found: dict[Key, float] = {}
    for i, (key, score) in enumerate(ranking):
        following = ranking[i + 1][1] if i + 1 < len(ranking) else score
        found.setdefault(key, max(score - following, 0.0) / spread)
    return found


def minmax(ranking: Sequence[tuple[Key, float]]) -> dict[Key, float]:
    """Each candidate's score on its list's min-max scale: the best 1.0, the worst 0.0 (all 1.0 if equal)."""
    if not ranking:
        return {}
    scores = [score for _, score in ranking]
    high, low = max(scores), min(scores)
    spread = high - low
    found: dict[Key, float] = {}
    for key, score in ranking:
        found.setdefault(key, (score - low) / spread if spread > 0 else 1.0)
    return found


def fuse(rankings: Sequence[Sequence[tuple[Key, float]]]) -> list[tuple[Key, float]]:
    """The mean of the lists' min-max scores (absent from a list: 0), best first; then the summed leads,
    then the key (ascending). First in every list scores 1.0."""
    if not rankings:
        return []
    fused: dict[Key, float] = {}
    lead: dict[Key, float] = {}
    for ranking in rankings:
        for key, value in minmax(ranking).items():
            fused[key] = fused.get(key, 0.0) + value
        for key, value in leads(ranking).items():
            lead[key] = lead.get(key, 0.0) + value
    n = len(rankings)
    return sorted(
        ((key, min(total / n, 1.0)) for key, total in fused.items()),
        key=lambda item: (-item[1], -lead.get(item[0], 0.0), item[0]),
    )


def query_terms(query: str) -> list[str]:
    """Lower-cased words (letters and digits only), deduplicated: safe inside FTS5 and to_tsquery."""
    return list(dict.fromkeys(re.findall(r"[^\W_]+", query.lower())))[:MAX_QUERY_TERMS]


async def search(
    db: Database,
    embedder: Embedder,
    store_ids: list[str],
    queries: list[str],
    *,
    max_num_results: int,
    score_threshold: float = 0.0,
    ranker: str = "auto",
    filters: Mapping[str, Any] | None = None,
) -> list[SearchHit]:
    """The best chunks of `store_ids` for `queries`, scores 0..1 descending, at most `max_num_results`.

    `ranker` is accepted for the API's sake: every ranker is the same fusion (there is no
    cross-encoder offline), so `none` costs nothing extra either.
    """
    if ranker not in RANKERS:
        raise ValueError(f"unknown ranker {ranker!r}")
    queries = [q for q in queries if q.strip()]
    store_ids = list(dict.fromkeys(store_ids))
    if not queries or not store_ids or max_num_results < 1:
        return []
    async with db.read() as conn:
        versions = await _versions(conn, store_ids)
        store_ids = [s for s in store_ids if s in versions]
        maps = [await _file_map(conn, db, s, versions[s].files) for s in store_ids]
    completed: dict[FileKey, Attributes] = {}
    for file_map in maps:
        completed.update(file_map.completed)
    allowed = completed if filters is None else {k: a for k, a in completed.items() if matches(filters, a)}
    if not allowed:
        return []
    # Files that have chunks but must not show (filtered out, or being re-ingested): push the
    # allowed set into the queries so the candidates are not used up by them.
    total = sum(m.total for m in maps)
    restrict = sorted({f for _, f in allowed}) if len(allowed) < total else None
    limit = max_num_results * CANDIDATE_MULTIPLIER
    share = len(allowed) / total if total else 1.0
    dims = embedder.dimensions
    pgvector = dims == PGVECTOR_DIMENSIONS and await has_pgvector(db)
    async with db.read() as conn:
        # The embedding (a worker thread for the bundled model) and the matrix products (a worker
        # thread for large stores) run while the keyword queries run here: the wall time is about the
        # longer of the two sides, not their sum.
        chunk_versions = {s: v.chunks for s, v in versions.items()}
        matrices = [] if pgvector else await _matrices(conn, db, store_ids, dims, chunk_versions)
        vector_side = asyncio.ensure_future(
            _embed_and_scan(embedder, queries, matrices, limit, allowed if restrict else None)
        )
        await asyncio.sleep(0)  # let it start before the keyword queries (synchronous on SQLite) hold the loop
        try:
            keyword = [
                await _keyword(conn, db.dialect, store_ids, q, limit, restrict, db=db, share=share) for q in queries
            ]
        except BaseException:
            vector_side.cancel()
            with contextlib.suppress(BaseException):  # its own failure, if any, is not this one's to report
                await vector_side
            raise
        vectors, scanned = await vector_side
        rankings: list[Scored] = []
        for i, words in enumerate(keyword):
            rankings.append([(key, score) for key, score in words if key[:2] in allowed])
            semantic = scanned[i]
            if pgvector:
                semantic = await _pgvector(conn, store_ids, vectors[i], limit, restrict, share)
            elif semantic is None:  # the vector is not of the embedder's announced size: scanned against its own
                semantic = await _vector(conn, db, store_ids, vectors[i], limit, allowed if restrict else None)
            rankings.append([(key, score) for key, score in semantic if key[:2] in allowed])
        best = [(key, score) for key, score in fuse(rankings) if score >= score_threshold][:max_num_results]
        if not best:
            return []
        texts = await _texts(conn, [key for key, _ in best])
        names = await _filenames(conn, {key[1] for key, _ in best})
    return [
        SearchHit(
            vector_store_id=key[0],
            file_id=key[1],
            filename=names.get(key[1], ""),
            score=score,
            text=texts[key],
            attributes=dict(allowed[key[:2]]),
        )
        for key, score in best
        if key in texts
    ]


# --- versions and file maps ----------------------------------------------------------------------


@dataclass(frozen=True)
class Versions:
    chunks: int  # vector_stores.chunks_version: the store's chunks
    files: int  # vector_stores.files_version: its file rows' status and attributes


@dataclass(frozen=True)
class FileMap:
    """What search needs of a store's file rows: the completed files' attributes, and how many rows."""

    version: int
    completed: dict[FileKey, Attributes]
    total: int


class FileMapCache:
    """File maps by store id, each valid while the store's `files_version` is unchanged; LRU by count."""

    def __init__(self, size: int = FILE_MAP_CACHE_STORES) -> None:
        self.size = size
        self._items: OrderedDict[str, FileMap] = OrderedDict()

    def get(self, store_id: str, version: int) -> FileMap | None:
        item = self._items.get(store_id)
        if item is None or item.version != version:
            return None
        self._items.move_to_end(store_id)
        return item

    def put(self, store_id: str, item: FileMap) -> None:
        self._items[store_id] = item
        self._items.move_to_end(store_id)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


_file_maps: weakref.WeakKeyDictionary[Database, FileMapCache] = weakref.WeakKeyDictionary()


def file_map_cache(db: Database) -> FileMapCache:
    cache = _file_maps.get(db)
    if cache is None:
        cache = _file_maps[db] = FileMapCache()
    return cache


_VERSIONS = select(t.vector_stores.c.id, t.vector_stores.c.chunks_version, t.vector_stores.c.files_version).where(
    t.vector_stores.c.id.in_(bindparam("ids", expanding=True))
)


async def _versions(conn: Connection, store_ids: list[str]) -> dict[str, Versions]:
    rows = await conn.execute(_VERSIONS, {"ids": store_ids})
    return {r.id: Versions(int(r.chunks_version), int(r.files_version)) for r in rows}


async def _file_map(conn: Connection, db: Database, store_id: str, version: int) -> FileMap:
    """The store's file map at `version` (read before the rows: never newer-labelled than its contents)."""
    cache = file_map_cache(db)
    found = cache.get(store_id, version)
    if found is None:
        c = t.vector_store_files.c
        rows = (await conn.execute(select(c.id, c.status, c.attributes).where(c.vector_store_id == store_id))).all()
        completed = {(store_id, str(r.id)): dict(r.attributes or {}) for r in rows if r.status == "completed"}
        found = FileMap(version, completed, len(rows))
        cache.put(store_id, found)
    return found


# --- keyword -------------------------------------------------------------------------------------


def fts5_match(query: str, store_ids: Iterable[str]) -> str | None:
    terms = query_terms(query)
    if not terms:
        return None
    words = " OR ".join(f'"{w}"' for w in terms)
    stores = " OR ".join('"' + s.replace('"', '""') + '"' for s in store_ids)
    return f"text : ({words}) AND vector_store_id : ({stores})"


async def _keyword(
    conn: Connection,
    dialect: str,
    store_ids: list[str],
    query: str,
    limit: int,
    restrict: list[str] | None,
    *,
    db: Database | None = None,
    share: float = 1.0,
) -> Scored:
    """The top `limit` chunks by bm25 (SQLite, negated: higher is better) or ts_rank_cd (PostgreSQL).

    `restrict`: only these files' chunks (`share`: about which part of the stores' chunks they are).
    `db`: match only the query's informative terms (`informative_terms`): SQLite ranks by those alone
    (bm25 gives the others no weight), PostgreSQL still ranks by the whole query.
    """
    terms = query_terms(query)
    if not terms:
        return []
    matched = terms if db is None else await informative_terms(conn, db, terms)
    if dialect == "sqlite":
        return await _fts5(conn, store_ids, matched, limit, restrict, share)
    # Ranked by the whole query, as before; matched by its informative words only, so a common word
    # does not make every chunk a candidate (ts_rank_cd has no idf: it would rank them all).
    params: dict[str, Any] = {"tsq": " | ".join(terms), "match": " | ".join(matched)}
    params.update(stores=store_ids, limit=limit)
    where = "c.vector_store_id IN :stores AND c.text_tsv @@ to_tsquery('english', :match)"
    if restrict is not None:
        where += " AND c.file_id = ANY(CAST(:files AS text[]))"
        params["files"] = restrict
    statement = text(
        "SELECT c.vector_store_id, c.file_id, c.seq, ts_rank_cd(c.text_tsv, q) AS score "
        f"FROM chunks AS c, to_tsquery('english', :tsq) AS q WHERE {where} ORDER BY score DESC, "
        "c.vector_store_id, c.file_id, c.seq LIMIT :limit"
    ).bindparams(bindparam("stores", expanding=True))
    async with _through_index(conn):
        rows: list[Any] = list(await conn.execute(statement, params))
    found: Scored = [((str(r.vector_store_id), str(r.file_id), int(r.seq)), float(r.score)) for r in rows]
    return [(key, score) for key, score in found if key[0] in store_ids]


OVERFETCH = 4
# Rows: a filter keeping a smaller share of the files than that asks goes straight to the exact query
# (store and files matched in FTS5 and SQL), which a longer over-fetch would likely end in anyway.
MAX_OVERFETCH = 5_000
# The inner query alone lets FTS5 keep only the top `limit` by rank.
_FTS5_TOP = text(
    "SELECT c.vector_store_id, c.file_id, c.seq, -f.score AS score FROM "
    "(SELECT rowid AS r, rank AS score FROM chunks_fts WHERE chunks_fts MATCH :match "
    "ORDER BY rank LIMIT :limit) AS f JOIN chunks AS c ON c.rowid = f.r ORDER BY f.score"
)
_FTS5_TOP_OF_FILES = text(
    "SELECT c.vector_store_id, c.file_id, c.seq, -f.rank AS score FROM chunks_fts AS f "
    "JOIN chunks AS c ON c.rowid = f.rowid WHERE chunks_fts MATCH :match "
    "AND c.file_id IN :files ORDER BY f.rank LIMIT :limit"
).bindparams(bindparam("files", expanding=True))


async def _fts5(
    conn: Connection, store_ids: list[str], terms: list[str], limit: int, restrict: list[str] | None, share: float
) -> Scored:
    """FTS5's top `limit` for `terms` (ORed) among the stores' chunks (and `restrict`'s files), by bm25.

    First the text terms alone: the top `OVERFETCH × limit / share` (unless over `MAX_OVERFETCH`) over
    every store, keeping these stores' (and files') chunks. Exact whenever it finds `limit` of them, or
    sees every match: a chunk ranked higher would be in the global top list too. Much cheaper than
    matching the store id, a token every chunk of the store carries (100k chunks: 26 → ~10 ms), or
    joining every match to test its file. Otherwise the exact query, with the store (and files) in it.
    """
    words = " OR ".join(f'"{w}"' for w in terms)
    fetch = math.ceil(limit * OVERFETCH / max(share, 1e-9))
    wanted = set(store_ids)
    files = set(restrict) if restrict is not None else None
    if fetch <= MAX_OVERFETCH:
        rows: list[Any] = list(await conn.execute(_FTS5_TOP, {"match": f"text : ({words})", "limit": fetch}))
        found: Scored = [
            ((str(r.vector_store_id), str(r.file_id), int(r.seq)), float(r.score))
            for r in rows
            if r.vector_store_id in wanted and (files is None or r.file_id in files)
        ]
        if len(found) >= limit or len(rows) < fetch:  # enough, or every match was seen
            return found[:limit]
    stores = " OR ".join('"' + s.replace('"', '""') + '"' for s in store_ids)
    params: dict[str, Any] = {"match": f"text : ({words}) AND vector_store_id : ({stores})", "limit": limit}
    if restrict is not None:
        params["files"] = restrict
    rows = list(await conn.execute(_FTS5_TOP if restrict is None else _FTS5_TOP_OF_FILES, params))
    return [((str(r.vector_store_id), str(r.file_id), int(r.seq)), float(r.score)) for r in rows]


# --- keyword: terms FTS5 gives no weight ---------------------------------------------------------

# Below this many chunks (in the whole index) every term is kept: ranking every match costs little.
INFORMATIVE_MIN_ROWS = 2_000
TERM_CACHE_SIZE = 10_000


@dataclass
class TermStats:
    """Which terms are in at least half of the index's rows (PostgreSQL: or are stop words), valid while
    `generation` is unchanged."""

    generation: tuple[int, int]  # (number of stores, sum of their chunks_version): moves on any chunk change
    rows: int
    frequent: dict[str, bool]


_term_stats: weakref.WeakKeyDictionary[Database, TermStats] = weakref.WeakKeyDictionary()
_FTS5_COUNT = text("SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH :match LIMIT :half) AS m")
# Through the GIN index, stopping at half. A word to_tsvector keeps out of every chunk (an English stop
# word: its tsquery is empty) counts as frequent: it weighs nothing there either.
_TSQUERY_COUNT = text(
    "SELECT CASE WHEN numnode(plainto_tsquery('english', :term)) = 0 THEN CAST(:half AS bigint) ELSE "
    "(SELECT count(*) FROM (SELECT 1 FROM chunks WHERE text_tsv @@ plainto_tsquery('english', :term) "
    "LIMIT :half) AS m) END"
)
_THROUGH_INDEX = text(
    "SELECT set_config('enable_seqscan', 'off', false), set_config('plan_cache_mode', 'force_custom_plan', false)"
)
_THROUGH_INDEX_RESET = text(
    "SELECT set_config(name, reset_val, false) FROM pg_settings WHERE name IN ('enable_seqscan', 'plan_cache_mode')"
)
_GENERATION = select(
    func.count().label("n"), func.coalesce(func.sum(t.vector_stores.c.chunks_version), 0).label("v")
).select_from(t.vector_stores)
_ROWS = select(func.count()).select_from(t.chunks)


async def informative_terms(conn: Connection, db: Database, terms: list[str]) -> list[str]:
    """`terms` without those in at least half of the chunks, unless that would leave none.

    FTS5's bm25 gives such a term an idf of 1e-6 (log((N - n + 0.5) / (n + 0.5)) ≤ 0 is clamped), so
    it moves no chunk that matches another term; but ORed in, it makes FTS5 rank nearly every row
    ("the", "of", "what": 100k chunks, ~200 ms instead of ~3 ms). Left out, the chunks that match
    only such terms (scored ~1e-6, i.e. not at all) are not candidates. PostgreSQL's ts_rank_cd has
    no idf, so there the whole query still ranks and only the match leaves them out (`_keyword`);
    English stop words, which to_tsquery drops, count as frequent. The counts are kept per process
    until any store's chunks change (the stores' chunks_version sum and count).
    """
    if len(terms) < 2:
        return terms
    row = (await conn.execute(_GENERATION)).one()
    generation = (int(row.n), int(row.v))
    stats = _term_stats.get(db)
    if stats is None or stats.generation != generation or len(stats.frequent) > TERM_CACHE_SIZE:
        rows = int((await conn.execute(_ROWS)).scalar_one())
        stats = _term_stats[db] = TermStats(generation, rows, {})
    if stats.rows < INFORMATIVE_MIN_ROWS:
        return terms
    half = (stats.rows + 1) // 2
    unknown = [term for term in dict.fromkeys(terms) if term not in stats.frequent]
    if unknown:
        async with contextlib.AsyncExitStack() as counting:
            if db.dialect != "sqlite":  # one set and reset around all the counts, not one per word
                await counting.enter_async_context(_through_index(conn))
            for term in unknown:
                found = await _chunks_with(conn, db.dialect, term, half)
                stats.frequent[term] = 2 * found >= stats.rows
    kept = [term for term in terms if not stats.frequent[term]]
    return kept or terms


async def _chunks_with(conn: Connection, dialect: str, term: str, cap: int) -> int:
    """How many chunks (of every store) have `term`, counting up to `cap` (PostgreSQL: inside `_through_index`)."""
    if dialect == "sqlite":
        return int((await conn.execute(_FTS5_COUNT, {"match": f'text : "{term}"', "half": cap})).scalar_one())
    return int((await conn.execute(_TSQUERY_COUNT, {"term": term, "half": cap})).scalar_one())


@contextlib.asynccontextmanager
async def _through_index(conn: Connection) -> AsyncIterator[None]:
    """PostgreSQL: statements meanwhile find chunks by a word through the GIN index, each planned for
    its own parameters.

    For a word in many chunks the planner prefers reading the whole table, and then reads (detoasts)
    every chunk's tsvector to test it, which it does not count: 100k chunks, ~200 ms to count a common
    word's chunks (~20-50 ms through the index's bitmap, which reads only heap pages), and a keyword
    query matching a fifth of the chunks 2x slower (5x with a filter, whose files are tested before
    the tsvector is read). A generic plan (from a prepared statement's 6th run) tests a filter's
    files one by one, not through a hash of them as a plan for the given array does: 100k chunks,
    half of 5,000 files, ~280 ms instead of ~15-50 ms. Reads are autocommit (no SET LOCAL): set, then
    back to the session's defaults.
    """
    await conn.execute(_THROUGH_INDEX)
    try:
        yield
    finally:
        await conn.execute(_THROUGH_INDEX_RESET)


# --- vector --------------------------------------------------------------------------------------


@dataclass
class _Matrix:
    version: int
    file_ids: list[str]  # distinct file ids; `codes` index into it
    codes: npt.NDArray[np.int32]
    seqs: npt.NDArray[np.int32]
    vectors: npt.NDArray[np.float32]  # (n, dimensions), rows L2-normalised

    @property
    def nbytes(self) -> int:
        return int(self.vectors.nbytes + self.codes.nbytes + self.seqs.nbytes)


class MatrixCache:
    """Store matrices by (store id, dimensions), LRU within a byte budget."""

    def __init__(self, budget: int = CACHE_BYTES) -> None:
        self.budget = budget
        self._items: OrderedDict[tuple[str, int], _Matrix] = OrderedDict()

    def get(self, store_id: str, dims: int, version: int) -> _Matrix | None:
        item = self._items.get((store_id, dims))
        if item is None or item.version != version:
            return None
        self._items.move_to_end((store_id, dims))
        return item

    def put(self, store_id: str, dims: int, item: _Matrix) -> None:
        self._items[(store_id, dims)] = item
        self._items.move_to_end((store_id, dims))
        while sum(m.nbytes for m in self._items.values()) > self.budget and len(self._items) > 1:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


_caches: weakref.WeakKeyDictionary[Database, MatrixCache] = weakref.WeakKeyDictionary()


def matrix_cache(db: Database) -> MatrixCache:
    cache = _caches.get(db)
    if cache is None:
        cache = _caches[db] = MatrixCache()
    return cache


async def _load(conn: Connection, store_id: str, dims: int, version: int) -> _Matrix:
    import numpy as np

    c = t.chunks.c
    rows = (
        await conn.execute(
            select(c.file_id, c.seq, c.embedding).where(c.vector_store_id == store_id).order_by(c.file_id, c.seq)
        )
    ).all()
    width = dims * 4
    rows = [r for r in rows if len(r.embedding) == width]  # vectors of another model are not comparable
    file_ids: list[str] = []
    index: dict[str, int] = {}
    codes = np.empty(len(rows), dtype=np.int32)
    for i, r in enumerate(rows):
        code = index.get(r.file_id)
        if code is None:
            code = index[r.file_id] = len(file_ids)
            file_ids.append(r.file_id)
        codes[i] = code
    seqs = np.fromiter((r.seq for r in rows), dtype=np.int32, count=len(rows))
    vectors = np.frombuffer(b"".join(r.embedding for r in rows), dtype="<f4").reshape(len(rows), dims)
    return _Matrix(version, file_ids, codes, seqs, vectors.astype(np.float32, copy=False))


async def _matrices(
    conn: Connection, db: Database, store_ids: list[str], dims: int, versions: Mapping[str, int]
) -> list[tuple[str, _Matrix]]:
    """The stores' `dims`-wide matrices at their chunks `versions` (read before the rows: a matrix is never
    newer-labelled than its contents). Stores missing from `versions` are skipped."""
    cache = matrix_cache(db)
    found: list[tuple[str, _Matrix]] = []
    for store_id in store_ids:
        if store_id not in versions:
            continue
        version = versions[store_id]
        matrix = cache.get(store_id, dims, version)
        if matrix is None:
            matrix = await _load(conn, store_id, dims, version)
            cache.put(store_id, dims, matrix)
        found.append((store_id, matrix))
    return found


# A scan of fewer rows than this runs on the event loop: a worker thread's hop costs more than it saves.
THREAD_SCAN_ROWS = 20_000


async def _embed_and_scan(
    embedder: Embedder,
    queries: list[str],
    matrices: list[tuple[str, _Matrix]],
    limit: int,
    allowed: Mapping[FileKey, object] | None,
) -> tuple[Vectors, list[Scored | None]]:
    """The queries' vectors, and for each its top `limit` over `matrices` (None: not of their width)."""
    vectors = await embedder.embed(queries)
    if not matrices:
        return vectors, [None] * len(queries)
    dims = int(matrices[0][1].vectors.shape[1])
    rows = sum(len(m.seqs) for _, m in matrices)

    def scan_all() -> list[Scored | None]:
        return [_scan(matrices, v, limit, allowed) if v.shape[0] == dims else None for v in vectors]

    if rows < THREAD_SCAN_ROWS:
        return vectors, scan_all()
    return vectors, await asyncio.to_thread(scan_all)


def _scan(
    matrices: list[tuple[str, _Matrix]],
    query: npt.NDArray[np.float32],
    limit: int,
    allowed: Mapping[FileKey, object] | None,
) -> Scored:
    """The top `limit` chunks of `matrices` by cosine similarity (a dot product: rows and query are normalised)."""
    import numpy as np

    scored: list[tuple[float, Key]] = []
    for store_id, matrix in matrices:
        if not len(matrix.seqs):
            continue
        # einsum is numpy's own single-threaded loop, as fast as one BLAS thread here (the product is
        # bound by memory). `@` would go to OpenBLAS, which splits it over every core and leaves its
        # workers spinning after the call: ~1.3x faster when idle, ~2.5x the CPU, and slower beside
        # other load, or beside the keyword query that runs meanwhile (bench/bench_search.py).
        sims = np.einsum("ij,j->i", matrix.vectors, query)
        if allowed is not None:
            names = matrix.file_ids
            ok = np.fromiter(((store_id, f) in allowed for f in names), dtype=bool, count=len(names))
            sims = np.where(ok[matrix.codes], sims, -np.inf)
        n = min(limit, len(sims))
        top = np.argpartition(-sims, n - 1)[:n] if n < len(sims) else np.arange(len(sims))
        for i in top:
            if np.isfinite(sims[i]):
                scored.append((float(sims[i]), (store_id, matrix.file_ids[matrix.codes[i]], int(matrix.seqs[i]))))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [(key, score) for score, key in scored[:limit]]


async def _vector(
    conn: Connection,
    db: Database,
    store_ids: list[str],
    query: npt.NDArray[np.float32],
    limit: int,
    allowed: Mapping[tuple[str, str], object] | None,
    versions: Mapping[str, int] | None = None,
) -> Scored:
    """The top `limit` chunks by cosine similarity. `versions`: the stores' chunks_version, read if not given."""
    if versions is None:
        versions = {s: v.chunks for s, v in (await _versions(conn, store_ids)).items()}
    matrices = await _matrices(conn, db, store_ids, int(query.shape[0]), versions)
    return _scan(matrices, query, limit, allowed)


# --- vector, pgvector ---------------------------------------------------------------------------

PGVECTOR_DIMENSIONS = 384  # `chunks.embedding_vec vector(384)`, migration 0005
EF_SEARCH_MAX = 1000  # pgvector's own bound
_pgvector_columns: weakref.WeakKeyDictionary[Database, bool] = weakref.WeakKeyDictionary()


async def has_pgvector(db: Database) -> bool:
    """Whether `chunks.embedding_vec` exists (PostgreSQL with pgvector); asked once per process."""
    found = _pgvector_columns.get(db)
    if found is None:
        found = False
        if db.dialect == "postgresql":
            async with db.read() as conn:
                row = (
                    await conn.execute(
                        text(
                            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                            "AND table_name = 'chunks' AND column_name = 'embedding_vec'"
                        )
                    )
                ).first()
            found = row is not None
        _pgvector_columns[db] = found
    return found


def vector_literal(vector: npt.NDArray[np.float32] | bytes) -> str:
    """pgvector's text form, `[x,y,...]`, of a float32 vector (or its little-endian bytes)."""
    import numpy as np

    values = np.frombuffer(vector, dtype="<f4") if isinstance(vector, bytes) else vector.astype(np.float32)
    return "[" + ",".join(map(repr, values.tolist())) + "]"


async def _pgvector(
    conn: Connection,
    store_ids: list[str],
    query: npt.NDArray[np.float32],
    limit: int,
    restrict: list[str] | None,
    share: float = 1.0,
) -> Scored:
    """The top `limit` chunks by cosine distance; `share`: about which part of the stores' chunks `restrict` keeps."""
    where = "vector_store_id IN :stores AND embedding_vec IS NOT NULL"
    params: dict[str, Any] = {"q": vector_literal(query), "stores": store_ids, "limit": limit}
    expanding: list[BindParameter[Any]] = [bindparam("stores", expanding=True)]
    if restrict is not None:
        where += " AND file_id IN :files"
        expanding.append(bindparam("files", expanding=True))
        params["files"] = restrict
    distance = "embedding_vec <=> CAST(CAST(:q AS text) AS vector)"
    # The HNSW index yields at most ef_search rows, filtered afterwards by store and file: twice the
    # candidates over the share of them a filter keeps (a filter keeping half the files and 2 × limit
    # came up short about half the time, and the exact scan then cost ~200 ms at 100k chunks).
    ef = min(EF_SEARCH_MAX, max(40, math.ceil(2 * limit / max(share, 1e-9))))
    await conn.execute(text("SELECT set_config('hnsw.ef_search', :ef, false)"), {"ef": str(ef)})
    indexed = text(
        f"SELECT vector_store_id, file_id, seq, {distance} AS d FROM chunks WHERE {where} ORDER BY d LIMIT :limit"
    ).bindparams(*expanding)
    rows: list[Any] = list(await conn.execute(indexed, params))
    if len(rows) < limit:
        # Short: the stores (or allowed files) are a small part of the index, or have fewer rows
        # than `limit`. Rank all their rows exactly (OFFSET 0 keeps the planner off the index).
        exact = text(
            f"SELECT vector_store_id, file_id, seq, d FROM (SELECT vector_store_id, file_id, seq, {distance} AS d "
            f"FROM chunks WHERE {where} OFFSET 0) AS s ORDER BY d, vector_store_id, file_id, seq LIMIT :limit"
        ).bindparams(*expanding)
        rows = list(await conn.execute(exact, params))
    scored = sorted((float(r.d), (str(r.vector_store_id), str(r.file_id), int(r.seq))) for r in rows)
    return [(key, -distance) for distance, key in scored]


# --- results -------------------------------------------------------------------------------------


async def _texts(conn: Connection, keys: list[Key]) -> dict[Key, str]:
    values: dict[str, Any] = {}
    for i, (store_id, file_id, seq) in enumerate(keys):
        values.update({f"s{i}": store_id, f"f{i}": file_id, f"q{i}": seq})
    rows = await conn.execute(_texts_statement(len(keys)), values)
    return {(r.vector_store_id, r.file_id, int(r.seq)): r.text for r in rows}


@functools.lru_cache(maxsize=64)
def _texts_statement(n: int) -> TextClause:
    """ORed primary-key lookups of `n` chunks (SQLite plans a row-value IN list as a scan of the table)."""
    match = " OR ".join(f"(vector_store_id = :s{i} AND file_id = :f{i} AND seq = :q{i})" for i in range(n))
    return text(f"SELECT vector_store_id, file_id, seq, text FROM chunks WHERE {match}")


_FILENAMES = select(t.files.c.id, t.files.c.filename).where(t.files.c.id.in_(bindparam("ids", expanding=True)))


async def _filenames(conn: Connection, file_ids: set[str]) -> dict[str, str]:
    rows = await conn.execute(_FILENAMES, {"ids": sorted(file_ids)})
    return {r.id: r.filename for r in rows}
