"""Retrieval quality of assistd's vector-store search on a BEIR-format folder: nDCG@10 and recall@20.

    python bench/bench_retrieval.py                          # builds the man-page known-item set first
    python bench/bench_retrieval.py --docs 300 --seed 1      # a smaller / another sample of man pages
    python bench/bench_retrieval.py --beir /data/scifact     # any BEIR folder
    python bench/bench_retrieval.py --baseline bench/results/retrieval-OLD.json

A BEIR folder has corpus.jsonl ({"_id", "title", "text"}), queries.jsonl ({"_id", "text"}) and
qrels/test.tsv (query-id, corpus-id, score; a header line). Only queries with a qrel are scored.

Without --beir, a known-item set is built from the Debian man pages (`apt-get install manpages
manpages-dev`) into --manpages-dir (default /tmp/assistd-beir-manpages): each page is rendered with
`groff -mandoc -Tutf8` (hyphenation off); the description after the dash on its NAME line
("ls - list directory contents" -> "list directory contents") is the query, the page without its
NAME section (title: the page name, e.g. "printf(3)") is the one relevant document. Pages that are
symlinks or `.so` redirects to another page, whose description is shared with another page, or whose text is longer than
--max-doc-chars are skipped; --docs pages are drawn at random (--seed).

The run, all through assistd's own code:
1. starts a real `assistd serve` (LiveServer, SQLite, ASSISTD_LOCAL_ENABLED=false, bundled MiniLM),
   uploads every document as one file ("doc-<n>.txt", text = title + blank line + text) with the
   OpenAI SDK, adds them to one vector store in file batches of 500 (default chunking, `auto` =
   800 tokens / 400 overlap) and polls until every batch is completed (time and chunks/s reported);
2. hybrid: `POST /v1/vector_stores/{id}/search` per query (max_num_results 50, the API's maximum,
   so each side brings 250 candidates) - i.e. retrieval.search.search();
3. keyword-only and vector-only: search.py exposes no switch for one side (`ranker` is accepted but
   every ranker is the same fusion), so its internal helpers are called in process on the server's
   SQLite file: `_keyword()` (FTS5 bm25) and `_vector()` (cosine over the cached matrix, query
   embedded by the same MiniLMEmbedder), each with the same 250-candidate limit the hybrid fuses.
   The same two lists are also fused as search() did before score fusion (`rrf_fuse`, k=60, equal
   scores by lead then chunk key): old and new ranking side by side, one store, one run.

Every method ranks chunks; a document's rank is that of its best chunk (later chunks of the same
document are dropped), then nDCG@10 (graded gains from the qrels, log2 discount) and recall@20 are
averaged over the queries. The table is printed as markdown and the JSON (per-query ranks included)
goes to bench/results/retrieval-<time>.json; --baseline compares with an earlier one.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import csv
import gzip
import json
import math
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    API_KEY,
    add_output_args,
    fmt,
    heading,
    load_baseline,
    loadavg,
    machine,
    result_head,
    settings,
    versions,
    warn_if_loaded,
    write_result,
)

PACKAGES = ["openai", "onnxruntime", "tokenizers", "numpy", "SQLAlchemy"]
METHODS = ("keyword", "vector", "hybrid", "hybrid_rrf")
BATCH = 500
# BEIR SciFact, published (BEIR paper's BM25; sentence-transformers' all-MiniLM-L6-v2; RRF of the two).
SCIFACT_REFERENCE = {"keyword": 0.665, "vector": 0.645, "hybrid": 0.715}


# --- the man-page known-item set ----------------------------------------------------------------

_DASH = re.compile(r"\s+[-\u2010\u2011\u2012\u2013\u2212]\s+")
_HEADER = re.compile(r"^[A-Z][A-Z0-9 ,/()-]*$")


def _man_files() -> list[Path]:
    found: list[Path] = []
    for package in ("manpages", "manpages-dev"):
        listing = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
        if listing.returncode != 0:
            raise SystemExit(f"bench_retrieval: {package} is not installed: apt-get install -y manpages manpages-dev")
        found += [Path(p) for p in listing.stdout.splitlines() if re.search(r"/man\d/[^/]+\.gz$", p)]
    # Debian installs many aliases as symlinks to the same page: keep each page once.
    return sorted({p.resolve() for p in found})


def _render(path: Path) -> tuple[str, str] | None:
    """(page name, rendered text), or None for a `.so` redirect or a page that does not render."""
    try:
        source = gzip.decompress(path.read_bytes())
    except OSError:
        return None
    if len(source) < 1024 and re.search(rb"^\.so\s", source, re.M):  # a redirect (often after comments)
        return None
    done = subprocess.run(
        ["groff", "-mandoc", "-Tutf8", "-rHY=0", "-P-cbou"], input=source, capture_output=True, timeout=60
    )
    if done.returncode != 0:
        return None
    name = path.name.removesuffix(".gz")
    stem, _, section = name.rpartition(".")
    return f"{stem}({section})", done.stdout.decode("utf-8", "replace")


def _split_name(rendered: str) -> tuple[str, str] | None:
    """(NAME description, page without the NAME section), or None when there is no usable NAME line."""
    lines = rendered.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "NAME" and not line.startswith(" "))
    except StopIteration:
        return None
    end = start + 1
    while end < len(lines) and not (lines[end] and not lines[end][0].isspace() and _HEADER.match(lines[end])):
        end += 1
    name_text = " ".join(line.strip() for line in lines[start + 1 : end] if line.strip())
    parts = _DASH.split(name_text, maxsplit=1)
    if len(parts) != 2 or not parts[1].strip():
        return None
    body = "\n".join(re.sub(r"(?<=\S) {2,}(?=\S)", " ", line.rstrip()) for line in lines[:start] + lines[end:])
    return " ".join(parts[1].split()), re.sub(r"\n{3,}", "\n\n", body).strip()


def build_manpages(out: Path, docs: int, seed: int, max_chars: int) -> dict[str, Any]:
    started = time.perf_counter()
    files = _man_files()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        rendered = [r for r in pool.map(_render, files) if r is not None]
    pages: list[tuple[str, str, str]] = []  # (page name, description, document)
    for name, text in rendered:
        split = _split_name(text)
        if split is not None:
            pages.append((name, *split))
    counts: dict[str, int] = {}
    for _, description, _ in pages:
        key = description.lower()
        counts[key] = counts.get(key, 0) + 1
    usable = [p for p in pages if counts[p[1].lower()] == 1 and 200 <= len(p[2]) <= max_chars]
    random.Random(seed).shuffle(usable)
    chosen = sorted(usable[:docs])
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    with (
        open(out / "corpus.jsonl", "w") as corpus,
        open(out / "queries.jsonl", "w") as queries,
        open(out / "qrels" / "test.tsv", "w") as qrels,
    ):
        qrels.write("query-id\tcorpus-id\tscore\n")
        for i, (name, description, document) in enumerate(chosen):
            corpus.write(json.dumps({"_id": f"d{i}", "title": name, "text": document}) + "\n")
            queries.write(json.dumps({"_id": f"q{i}", "text": description}) + "\n")
            qrels.write(f"q{i}\td{i}\t1\n")
    return {
        "dir": str(out),
        "man_files": len(files),
        "rendered": len(rendered),
        "with_name_line": len(pages),
        "usable": len(usable),
        "chosen": len(chosen),
        "build_s": round(time.perf_counter() - started, 1),
    }


# --- BEIR folder --------------------------------------------------------------------------------


def load_beir(folder: Path) -> tuple[dict[str, dict[str, str]], dict[str, str], dict[str, dict[str, int]]]:
    corpus: dict[str, dict[str, str]] = {}
    with open(folder / "corpus.jsonl") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                corpus[str(row["_id"])] = {"title": row.get("title") or "", "text": row.get("text") or ""}
    queries: dict[str, str] = {}
    with open(folder / "queries.jsonl") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                queries[str(row["_id"])] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    with open(folder / "qrels" / "test.tsv", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        next(reader, None)  # header
        for row in reader:
            if len(row) >= 3 and int(row[2]) > 0 and row[1] in corpus:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return corpus, {q: text for q, text in queries.items() if q in qrels}, qrels


def doc_text(doc: dict[str, str]) -> str:
    return f"{doc['title']}\n\n{doc['text']}" if doc["title"] else doc["text"]


# --- metrics ------------------------------------------------------------------------------------


def dedupe(file_ids: list[str]) -> list[str]:
    return list(dict.fromkeys(file_ids))


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], relevant: dict[str, int], k: int = 20) -> float:
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def first_relevant(ranked: list[str], relevant: dict[str, int]) -> int | None:
    return next((i + 1 for i, doc in enumerate(ranked) if doc in relevant), None)


# --- the run ------------------------------------------------------------------------------------


def ingest(client: Any, corpus: dict[str, dict[str, str]]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Upload every document, add them to one store in batches; returns (store id, file id -> doc id, timings)."""
    ids = list(corpus)
    started = time.perf_counter()

    def upload(index: int) -> tuple[str, str]:
        created = client.files.create(
            file=(f"doc-{index}.txt", doc_text(corpus[ids[index]]).encode()), purpose="assistants"
        )
        return created.id, ids[index]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        mapping = dict(pool.map(upload, range(len(ids))))
    uploaded = time.perf_counter()
    store = client.vector_stores.create(name="bench-retrieval")
    file_ids = list(mapping)
    batches = [
        client.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=file_ids[i : i + BATCH])
        for i in range(0, len(file_ids), BATCH)
    ]
    last_note = 0.0
    while True:
        states = [client.vector_stores.file_batches.retrieve(b.id, vector_store_id=store.id) for b in batches]
        done = sum(s.file_counts.completed + s.file_counts.failed + s.file_counts.cancelled for s in states)
        if all(s.status != "in_progress" for s in states):
            break
        if time.perf_counter() - last_note > 15:
            last_note = time.perf_counter()
            print(
                f"bench_retrieval: ingested {done}/{len(file_ids)} files ({time.perf_counter() - uploaded:.0f} s)",
                file=sys.stderr,
            )
        time.sleep(0.5)
    ingested = time.perf_counter()
    failed = sum(s.file_counts.failed for s in states)
    return (
        store.id,
        mapping,
        {
            "upload_s": round(uploaded - started, 1),
            "ingest_s": round(ingested - uploaded, 1),
            "failed_files": failed,
        },
    )


def hybrid_rankings(
    base_url: str, store_id: str, queries: dict[str, str], mapping: dict[str, str], k: int
) -> dict[str, list[str]]:
    import httpx

    found: dict[str, list[str]] = {}
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120) as http:
        for qid, text in queries.items():
            response = http.post(f"/vector_stores/{store_id}/search", json={"query": text, "max_num_results": k})
            response.raise_for_status()
            found[qid] = dedupe([mapping[hit["file_id"]] for hit in response.json()["data"]])
    return found


async def side_rankings(
    db_path: Path, store_id: str, queries: dict[str, str], mapping: dict[str, str], limit: int
) -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, list[str]], dict[str, list[str]], int]:
    """keyword-only and vector-only through search.py's helpers, search() in process (a cross-check), and
    the same two lists fused as before score fusion (RRF k=60, equal scores by lead then key): the old ranking,
    same store."""
    from sqlalchemy import func, select

    from assistd.db import tables as t
    from assistd.db.database import Database
    from assistd.retrieval import search as engine
    from assistd.retrieval.embedding import MiniLMEmbedder

    db = Database(f"sqlite:///{db_path}")
    embedder = MiniLMEmbedder()
    keyword: dict[str, list[str]] = {}
    vector: dict[str, list[str]] = {}
    fused: dict[str, list[str]] = {}
    rrf: dict[str, list[str]] = {}
    try:
        async with db.read() as conn:
            chunks = (await conn.execute(select(func.count()).select_from(t.chunks))).scalar_one()
        qids = list(queries)
        vectors = await embedder.embed([queries[q] for q in qids])
        for i, qid in enumerate(qids):
            async with db.read() as conn:
                words = await engine._keyword(conn, db.dialect, [store_id], queries[qid], limit, None)
                keyword[qid] = dedupe([mapping[k[0][1]] for k in words])
                cosines = await engine._vector(conn, db, [store_id], vectors[i], limit, None)
                vector[qid] = dedupe([mapping[k[0][1]] for k in cosines])
            old = engine.rrf_fuse([[key for key, _ in words], [key for key, _ in cosines]])
            lead = {**engine.leads(words)}
            for key, value in engine.leads(cosines).items():
                lead[key] = lead.get(key, 0.0) + value
            ranked = sorted(old.items(), key=lambda item: (-item[1], -lead.get(item[0], 0.0), item[0]))
            rrf[qid] = dedupe([mapping[key[1]] for key, _ in ranked[: limit // engine.CANDIDATE_MULTIPLIER]])
            hits = await engine.search(
                db, embedder, [store_id], [queries[qid]], max_num_results=limit // engine.CANDIDATE_MULTIPLIER
            )
            fused[qid] = dedupe([mapping[h.file_id] for h in hits])
    finally:
        await db.dispose()
    return keyword, vector, fused, rrf, int(chunks)


def score(rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, Any]:
    ndcg = [ndcg_at(rankings[q], qrels[q]) for q in rankings]
    recall = [recall_at(rankings[q], qrels[q]) for q in rankings]
    ranks = [first_relevant(rankings[q], qrels[q]) for q in rankings]
    return {
        "ndcg@10": sum(ndcg) / len(ndcg),
        "recall@20": sum(recall) / len(recall),
        "mrr": sum(1 / r for r in ranks if r) / len(ranks),
        "top1": sum(1 for r in ranks if r == 1) / len(ranks),
        "queries": len(ranks),
        "docs_ranked_min": min(len(r) for r in rankings.values()),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from openai import OpenAI

    from assistd.testing.server import LiveServer

    dataset: dict[str, Any] = {}
    folder = args.beir
    if folder is None:
        folder = args.manpages_dir
        dataset["built"] = build_manpages(folder, args.docs, args.seed, args.max_doc_chars)
        print(f"bench_retrieval: man-page set {dataset['built']}", file=sys.stderr)
    corpus, queries, qrels = load_beir(folder)
    if args.queries:
        queries = dict(list(queries.items())[: args.queries])
    dataset.update(
        folder=str(folder),
        documents=len(corpus),
        queries=len(queries),
        characters=sum(len(doc_text(d)) for d in corpus.values()),
    )
    limit = args.max_num_results * 5
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as tmp:
        env = {"ASSISTD_API_KEYS": API_KEY, "ASSISTD_LOCAL_ENABLED": "false", "ASSISTD_LOG_REQUESTS": "false"}
        with LiveServer(Path(tmp), env=env, startup_timeout=120) as server:
            client = OpenAI(base_url=server.base_url, api_key=API_KEY, timeout=300, max_retries=0)
            store_id, mapping, timing = ingest(client, corpus)
            started = time.perf_counter()
            hybrid = hybrid_rankings(server.base_url, store_id, queries, mapping, args.max_num_results)
            timing["hybrid_queries_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        keyword, vector, fused, rrf, chunks = asyncio.run(
            side_rankings(Path(tmp) / "assistd.db", store_id, queries, mapping, limit)
        )
        timing["side_queries_s"] = round(time.perf_counter() - started, 1)
    timing["chunks"] = chunks
    timing["chunks_per_s"] = round(chunks / timing["ingest_s"], 1) if timing["ingest_s"] else None
    same = sum(1 for q in hybrid if hybrid[q][:20] == fused[q][:20])
    return {
        "dataset": dataset,
        "ingestion": timing,
        "candidates_per_side": limit,
        "hybrid_endpoint_equals_in_process": f"{same}/{len(hybrid)}",
        "methods": {
            "keyword": score(keyword, qrels),
            "vector": score(vector, qrels),
            "hybrid": score(hybrid, qrels),
            "hybrid_rrf": score(rrf, qrels),
        },
        "rankings": {
            q: {"keyword": keyword[q][:20], "vector": vector[q][:20], "hybrid": hybrid[q][:20]} for q in queries
        },
    }


def report(result: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    d, ing, methods = result["dataset"], result["ingestion"], result["methods"]
    lines = [heading("retrieval quality", result), ""]
    lines.append(
        f"Dataset: {d['folder']} — {d['documents']:,} documents ({d['characters']:,} characters), "
        f"{d['queries']:,} queries. Ingestion through the API: upload {ing['upload_s']} s, "
        f"ingest {ing['ingest_s']} s, {ing['chunks']:,} chunks ({fmt(ing['chunks_per_s'], 1)} chunks/s), "
        f"{ing['failed_files']} failed files."
    )
    lines.append("")
    old = (baseline or {}).get("methods", {})
    cols = "| method | nDCG@10 | recall@20 | MRR | top-1 | queries | documents |"
    sep = "|---|---:|---:|---:|---:|---:|---:|"
    if old:
        cols += " baseline nDCG@10 | baseline recall@20 |"
        sep += "---:|---:|"
    lines += [cols, sep]
    names = {
        "keyword": "keyword only (FTS5 bm25)",
        "vector": "vector only (MiniLM cosine)",
        "hybrid": "hybrid (score fusion, endpoint)",
        "hybrid_rrf": "hybrid, RRF k=60 + leads (before; in process)",
    }
    for method in (m for m in METHODS if m in methods):
        m = methods[method]
        row = (
            f"| {names[method]} | {m['ndcg@10']:.3f} | {m['recall@20']:.3f} | {m['mrr']:.3f} | {m['top1']:.3f} "
            f"| {m['queries']:,} | {d['documents']:,} |"
        )
        if old:
            o = old.get(method, {})
            row += f" {fmt(o.get('ndcg@10'), 3)} | {fmt(o.get('recall@20'), 3)} |"
        lines.append(row)
    lines.append("")
    best = max(methods["keyword"]["ndcg@10"], methods["vector"]["ndcg@10"])
    verdict = "beats" if methods["hybrid"]["ndcg@10"] > best else "does NOT beat"
    lines.append(
        f"Hybrid {verdict} both of its parts on nDCG@10 ({methods['hybrid']['ndcg@10']:.3f} vs best side "
        f"{best:.3f}). Reference, BEIR SciFact (published): BM25 {SCIFACT_REFERENCE['keyword']}, "
        f"all-MiniLM-L6-v2 {SCIFACT_REFERENCE['vector']}, RRF hybrid {SCIFACT_REFERENCE['hybrid']}."
    )
    lines.append(
        f"Each side ranks {result['candidates_per_side']} chunk candidates (max_num_results "
        f"{result['settings']['max_num_results']} x 5); documents ranked by their best chunk. "
        "Endpoint hybrid = in-process search() on "
        f"{result['hybrid_endpoint_equals_in_process']} queries (top 20)."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beir", type=Path, help="a BEIR folder; without it the man-page set is built")
    parser.add_argument("--manpages-dir", type=Path, default=Path("/tmp/assistd-beir-manpages"))
    parser.add_argument("--docs", type=int, default=400, help="man pages to sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-doc-chars", type=int, default=20_000, help="skip longer man pages")
    parser.add_argument("--queries", type=int, default=0, help="score only the first N queries (0: all)")
    parser.add_argument("--max-num-results", type=int, default=50, help="hybrid results per query (API max 50)")
    add_output_args(parser, "retrieval")
    args = parser.parse_args(argv)
    load_before = loadavg()
    warn_if_loaded("bench_retrieval", load_before)
    started = time.time()
    body = run(args)
    result = {
        **result_head("retrieval", started, machine(load_before), versions(PACKAGES)),
        "settings": settings(args),
        **body,
    }
    print(report(result, load_baseline(args.baseline)))
    output = write_result(result, args.output, started)
    print(f"\nwritten to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
