"""Vector-store search latency: hybrid (keyword + vector, RRF) at 10k and 100k chunks, SQLite or PostgreSQL.

    python bench/bench_search.py [--sizes 10000,100000] [--files 0] [--queries 200] [--max-num-results 10]
                                 [--database sqlite|postgres] [--embedder random|minilm]
                                 [--baseline bench/results/OLD.json] [--compare-src /path/to/main/src]
    python bench/bench_search.py --sizes 100000 --files 5000 --queries 50 --compare-src /tmp/main/src

SQLite: FTS5 bm25 and numpy cosine. PostgreSQL (`--database postgres`: a throwaway pgserver with
pgvector, assistd.testing.postgres): ts_rank_cd and pgvector's HNSW index (built after the rows are in).

In process, no server: a fresh database per size, migrated to head, with one vector store of
`size` chunks spread over `--files` files (0: size/100), inserted straight into the tables (through the
migration's triggers, so the FTS5 index and the store's chunks_version are maintained as in
production). Each chunk has ~120 words drawn (Zipf) from a 5,000-word synthetic vocabulary and a
random L2-normalised 384-d vector. Queries are 3 vocabulary words and a random vector, so the
embedding model is not measured (MiniLM adds its own ~5-20 ms per query), unless `--embedder minilm`:
then the bundled MiniLM embeds each query inside the search, as the endpoint does (wall and CPU).

Measured per size, `--queries` queries each:
  cold        the first search (loads the store's matrix into the in-process cache)
  hybrid      retrieval.search.search(): both sides, fusion, texts and filenames; also its CPU time
              per search (this process's user+system time, all threads: numpy's BLAS included)
  common      the same query with one of the 5 commonest words added (each in nearly every chunk, as
              "the" or "of" are in real text)
  filtered    the same with an attribute filter that keeps half of the files
  keyword     the keyword side alone (one FTS5 / ts_rank_cd query)
  vector      the vector side alone (version check + matrix product + top-k; pgvector's query)

`--compare-src DIR` measures another source tree in the same run: per size, this script runs again
in a subprocess with PYTHONPATH=DIR (checked to import assistd from there; a tree at an older
migration gets its own schema), the two taking turns on which goes first, and the table shows both
with the ratio this/other.

Results are printed as markdown and written to bench/results/search-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text as sql

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    add_compare_arg,
    add_output_args,
    fmt,
    heading,
    load_baseline,
    loadavg,
    machine,
    ratio,
    result_head,
    settings,
    source_trees,
    summary,
    versions,
    warn_if_loaded,
    write_result,
)

from assistd.db import migrate  # noqa: E402
from assistd.db import tables as t  # noqa: E402
from assistd.db.database import Database, create_engine  # noqa: E402
from assistd.retrieval import search as engine  # noqa: E402
from assistd.retrieval.search import vector_literal  # noqa: E402

INSERT_WITH_VECTOR = sql(
    "INSERT INTO chunks (vector_store_id, file_id, seq, text, tokens, embedding, embedding_vec) "
    "VALUES (:vector_store_id, :file_id, :seq, :text, :tokens, :embedding, CAST(CAST(:vec AS text) AS vector))"
)

DIMS = 384
VOCAB = 5_000
WORDS_PER_CHUNK = 120
STORE = "vs_0000bench000000000000000000"
PACKAGES = ["numpy", "SQLAlchemy"]


class RandomEmbedder:
    """Random normalised query vectors: the engine, not the model, is under test."""

    model = "random"
    dimensions = DIMS

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    async def embed(self, texts: Sequence[str]) -> Any:
        vectors = self._rng.standard_normal((len(texts), DIMS)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def vocabulary() -> list[str]:
    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(VOCAB)]


async def populate(db: Database, size: int, files: int, words: list[str]) -> float:
    started = time.perf_counter()
    rng = np.random.default_rng(size)
    weights = 1 / np.arange(1, VOCAB + 1)
    weights /= weights.sum()
    per_file = max(1, size // files)
    pgvector = await engine.has_pgvector(db)
    async with db.write() as conn:
        if pgvector:
            await conn.execute(sql("DROP INDEX ix_chunks_embedding_vec"))
        await conn.execute(
            t.vector_stores.insert().values(
                id=STORE,
                project_id="proj_bench",
                created_at=0,
                name="bench",
                description=None,
                expires_after=None,
                last_active_at=0,
                metadata={},
            )
        )
        await conn.execute(
            t.files.insert(),
            [
                {
                    "id": f"file-{i:08d}",
                    "project_id": "proj_bench",
                    "created_at": 0,
                    "filename": f"doc-{i}.txt",
                    "purpose": "assistants",
                    "bytes": 1,
                    "status": "processed",
                    "expires_at": None,
                    "blob_key": "x",
                }
                for i in range(files)
            ],
        )
        await conn.execute(
            t.vector_store_files.insert(),
            [
                {
                    "vector_store_id": STORE,
                    "id": f"file-{i:08d}",
                    "project_id": "proj_bench",
                    "batch_id": None,
                    "created_at": 0,
                    "status": "completed",
                    "last_error": None,
                    "chunking_strategy": {},
                    "attributes": {"half": i % 2},
                    "usage_bytes": 0,
                    "lease_owner": None,
                    "lease_expires_at": None,
                }
                for i in range(files)
            ],
        )
    batch = 5_000
    for start in range(0, size, batch):
        n = min(batch, size - start)
        vectors = rng.standard_normal((n, DIMS)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        picks = rng.choice(VOCAB, size=(n, WORDS_PER_CHUNK), p=weights)
        rows = [
            {
                "vector_store_id": STORE,
                "file_id": f"file-{min((start + j) // per_file, files - 1):08d}",
                "seq": start + j,
                "text": " ".join(words[w] for w in picks[j]),
                "tokens": WORDS_PER_CHUNK,
                "embedding": vectors[j].astype("<f4").tobytes(),
            }
            for j in range(n)
        ]
        async with db.write() as conn:
            if pgvector:
                for row in rows:
                    row["vec"] = vector_literal(row["embedding"])
                await conn.execute(INSERT_WITH_VECTOR, rows)
            else:
                await conn.execute(t.chunks.insert(), rows)
    if pgvector:  # built once over every row: far quicker than kept up row by row
        async with db.write() as conn:
            await conn.execute(sql("SET maintenance_work_mem = '1GB'"))
            await conn.execute(
                sql("CREATE INDEX ix_chunks_embedding_vec ON chunks USING hnsw (embedding_vec vector_cosine_ops)")
            )
            await conn.execute(sql("ANALYZE chunks"))
    return time.perf_counter() - started


async def measure(
    size: int, files: int, queries: int, k: int, words: list[str], database: str, embedder_name: str = "random"
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        postgres = None
        if database == "postgres":
            from assistd.testing.postgres import TestPostgres

            postgres = TestPostgres(Path(tmp) / "pg")
            url = postgres.new_database()
        else:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        migration = create_engine(url, pool_size=1)
        await migrate.upgrade(migration)
        await migration.dispose()
        db = Database(url)
        try:
            insert_s = await populate(db, size, files, words)
            embedder: Any = RandomEmbedder(1)
            if embedder_name == "minilm":
                from assistd.retrieval.embedding import MiniLMEmbedder

                embedder = MiniLMEmbedder()
            rng = random.Random(size)
            texts = [" ".join(rng.choice(words[:2000]) for _ in range(3)) for _ in range(queries)]
            started = time.perf_counter()
            await engine.search(db, embedder, [STORE], [texts[0]], max_num_results=k)
            cold_ms = (time.perf_counter() - started) * 1000
            timings: dict[str, list[float]] = {"hybrid": [], "common": [], "filtered": [], "keyword": [], "vector": []}
            common = words[:5]
            keyword_options = {"db": db} if "db" in inspect.signature(engine._keyword).parameters else {}
            pgvector = await engine.has_pgvector(db)
            half = {"key": "half", "type": "eq", "value": 1}
            results = []
            cpu: list[float] = []
            for text in texts:
                started, cpu_started = time.perf_counter(), time.process_time()
                hits = await engine.search(db, embedder, [STORE], [text], max_num_results=k)
                cpu.append((time.process_time() - cpu_started) * 1000)
                timings["hybrid"].append((time.perf_counter() - started) * 1000)
                results.append(len(hits))
                started = time.perf_counter()
                await engine.search(db, embedder, [STORE], [f"{text} {rng.choice(common)}"], max_num_results=k)
                timings["common"].append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                await engine.search(db, embedder, [STORE], [text], max_num_results=k, filters=half)
                timings["filtered"].append((time.perf_counter() - started) * 1000)
                vector = (await embedder.embed([text]))[0]
                limit = k * engine.CANDIDATE_MULTIPLIER
                async with db.read() as conn:
                    started = time.perf_counter()
                    await engine._keyword(conn, db.dialect, [STORE], text, limit, None, **keyword_options)
                    timings["keyword"].append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    if pgvector:
                        await engine._pgvector(conn, [STORE], vector, limit, None)
                    else:
                        await engine._vector(conn, db, [STORE], vector, limit, None)
                    timings["vector"].append((time.perf_counter() - started) * 1000)
            return {
                "chunks": size,
                "files": files,
                "hybrid_cpu": summary(cpu),
                "insert_s": round(insert_s, 1),
                "cold_ms": round(cold_ms, 1),
                "mean_results": sum(results) / len(results),
                **{name: summary(values) for name, values in timings.items()},
            }
        finally:
            await db.dispose()
            if postgres is not None:
                postgres.close()


def report(result: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    database = "PostgreSQL" if result["settings"].get("database") == "postgres" else "SQLite"
    lines = [heading(f"vector-store search, {database}", result), ""]
    tables = [("this tree", result["sizes"])]
    if "compare" in result:
        tables.append((f"other: {result['compare']['tree']}", result["compare"]["sizes"]))
    for label, rows in tables:
        lines.append(f"{label}:")
        lines.append("")
        lines.append(
            "| chunks | files | insert s | cold ms | hybrid p50 | hybrid p99 | CPU ms/search p50 | CPU/wall "
            "| common p50 | filtered p50 | filtered p99 | keyword p50 | vector p50 | vs baseline (hybrid p50) |"
        )
        lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        old = {row["chunks"]: row for row in (baseline or {}).get("sizes", [])}
        for row in rows:
            before = old.get(row["chunks"], {}).get("hybrid", {}).get("p50")
            cpu = row.get("hybrid_cpu", {}).get("p50")
            lines.append(
                f"| {row['chunks']:,} | {row.get('files', row['chunks'] // 100):,} | {fmt(row['insert_s'], 1)} "
                f"| {fmt(row['cold_ms'], 0)} | {fmt(row['hybrid']['p50'])} | {fmt(row['hybrid']['p99'])} "
                f"| {fmt(cpu)} | {ratio(cpu, row['hybrid']['p50'])} | {fmt(row.get('common', {}).get('p50'))} "
                f"| {fmt(row['filtered']['p50'])} | {fmt(row['filtered']['p99'])} "
                f"| {fmt(row['keyword']['p50'])} | {fmt(row['vector']['p50'])} "
                f"| {ratio(row['hybrid']['p50'], before)} |"
            )
        lines.append("")
    if "compare" in result:
        lines.append("Side by side (ratio this/other; < 1 is faster here):")
        lines.append("")
        lines.append(
            "| chunks | files | hybrid p50 this | other | ratio | CPU p50 this | other | ratio "
            "| common p50 this | other | ratio | filtered p50 this | other | ratio |"
        )
        lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for row, other in zip(result["sizes"], result["compare"]["sizes"], strict=True):
            h, oh = row["hybrid"]["p50"], other["hybrid"]["p50"]
            c, oc = row["hybrid_cpu"]["p50"], other["hybrid_cpu"]["p50"]
            f, of = row["filtered"]["p50"], other["filtered"]["p50"]
            w, ow = row["common"]["p50"], other["common"]["p50"]
            lines.append(
                f"| {row['chunks']:,} | {row['files']:,} | {fmt(h)} | {fmt(oh)} | {ratio(h, oh)} "
                f"| {fmt(c)} | {fmt(oc)} | {ratio(c, oc)} | {fmt(w)} | {fmt(ow)} | {ratio(w, ow)} "
                f"| {fmt(f)} | {fmt(of)} | {ratio(f, of)} |"
            )
        lines.append("")
    lines.append(
        f"Latencies in ms over {result['settings']['queries']} queries, max_num_results "
        f"{result['settings']['max_num_results']}; "
        + (
            "each query embedded by MiniLM inside the search."
            if result["settings"].get("embedder") == "minilm"
            else "query embedding not included."
        )
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--files", type=int, default=0, help="files in the store (0: one per 100 chunks)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--max-num-results", type=int, default=10)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--embedder", choices=["random", "minilm"], default="random")
    parser.add_argument("--rows-json", type=Path, help=argparse.SUPPRESS)  # --compare-src's subprocess
    add_compare_arg(parser)
    add_output_args(parser, "search")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    words = vocabulary()

    def one(size: int) -> dict[str, Any]:
        files = args.files or max(1, size // 100)
        return asyncio.run(
            measure(size, files, args.queries, args.max_num_results, words, args.database, args.embedder)
        )

    if args.rows_json is not None:
        args.rows_json.write_text(json.dumps([one(size) for size in sizes]))
        return 0
    load_before = loadavg()
    warn_if_loaded("bench_search", load_before)
    started = time.time()
    trees = source_trees(args.compare_src)
    rows: list[dict[str, Any]] = []
    other_rows: list[dict[str, Any]] = []
    for turn, size in enumerate(sizes):
        steps = ["this", "other"] if len(trees) > 1 else ["this"]
        for step in steps if turn % 2 == 0 else steps[::-1]:
            if step == "this":
                rows.append(one(size))
                continue
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "rows.json"
                command = [sys.executable, __file__, "--sizes", str(size), "--files", str(args.files)]
                command += ["--queries", str(args.queries), "--max-num-results", str(args.max_num_results)]
                command += ["--database", args.database, "--embedder", args.embedder]
                subprocess.run([*command, "--rows-json", str(out)], env={**os.environ, **trees[1].env}, check=True)
                other_rows.extend(json.loads(out.read_text()))
    result = {
        **result_head("search", started, machine(load_before), versions(PACKAGES)),
        "settings": settings(args, "rows_json"),
        "tree": trees[0].label,
        "sizes": rows,
    }
    if other_rows:
        result["compare"] = {"tree": trees[1].label, "sizes": other_rows}
    print(report(result, load_baseline(args.baseline)))
    output = write_result(result, args.output, started)
    print(f"\nwritten to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
