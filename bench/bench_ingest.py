"""Ingestion throughput: how long until a 100-page PDF is searchable through the API, and where the time goes.

    python bench/bench_ingest.py                             # 3 rounds on one server, about 2 minutes
    python bench/bench_ingest.py --pages 100 --rounds 5
    python bench/bench_ingest.py --baseline bench/results/ingest-OLD.json

The PDF is built here (no fixture): `--pages` pages of Helvetica text, ~`--chars-per-page` (3,000)
characters each, in 80-character lines, with a correct xref table (the approach of
tests/unit/test_retrieval_parsing.py's make_pdf). The prose is the standard library's docstrings
(real English, deterministic for a Python version), cut to latin-1; one sentence with made-up words
is put on page 73 so that a search can tell the file's chunks have arrived.

1. **searchable**: one `assistd serve` (LiveServer, SQLite, ASSISTD_LOCAL_ENABLED=false, bundled
   MiniLM embedder, default ingestion settings). Per round, with the OpenAI SDK: upload the PDF
   (`files.create`), create a vector store with it (`vector_stores.create(file_ids=...)`, default
   chunking: 800 tokens, 400 overlap), poll `vector_stores.files.retrieve` every `--poll` (50 ms)
   until `completed`, then `vector_stores.search` for the made-up sentence until a hit from page 73
   comes back. Reported per round: upload, ingest (add to completed), first search, total. Round 1
   is the server's first ingestion (it loads the model); the aim (total <= 15 s) is checked on the
   median of the rounds after it. chunks/s = chunks / ingest time.
2. **split**: the same bytes in process, the pipeline's steps one by one: retrieval.parsing.parse(),
   retrieval.chunking.chunk() (800/400), MiniLMEmbedder.embed() (loaded beforehand; threads and
   ASSISTD_EMBEDDINGS_MAX_WINDOWS as in the server, read from the same environment) - with the
   chunks' MiniLM wordpieces and the 256-wordpiece windows the embedder runs: the first
   `max_windows` of each chunk (default 1: the first 254 wordpieces, as sentence-transformers
   truncates; unset, every window, mean-pooled).
3. **what if** (`--what-if`, on by default): the embed step for other choices, to show what would
   move the total: no overlap (800/0: half the chunks), and the other windows setting (every
   window when the server embeds only the first ones; one window when it embeds them all).

Output: markdown tables and bench/results/ingest-<time>.json; --baseline compares with an earlier JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import io
import math
import statistics
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
    ratio,
    result_head,
    settings,
    versions,
    warn_if_loaded,
    write_result,
)

PACKAGES = ["openai", "onnxruntime", "tokenizers", "pypdfium2", "tiktoken", "numpy"]
AIM_SECONDS = 15.0
MARKER_PAGE = 73
MARKER = "The marigold sextant needs zinc plated quokka gearwheels before the vellum regatta."
MARKER_QUERY = "marigold sextant quokka gearwheels vellum regatta"
LINE_CHARS = 80
MODULES = [
    "os",
    "collections",
    "json",
    "argparse",
    "asyncio",
    "logging",
    "subprocess",
    "pathlib",
    "typing",
    "unittest",
    "inspect",
    "threading",
    "socket",
    "decimal",
    "datetime",
    "textwrap",
    "shutil",
    "tarfile",
    "zipfile",
    "csv",
    "sqlite3",
    "random",
    "statistics",
    "email.message",
    "http.client",
    "urllib.request",
    "functools",
    "itertools",
    "dataclasses",
    "enum",
    "contextlib",
    "io",
    "re",
    "string",
    "heapq",
    "bisect",
    "configparser",
    "ftplib",
    "smtplib",
    "imaplib",
    "pickle",
    "shelve",
    "tempfile",
    "glob",
    "fnmatch",
    "locale",
    "gettext",
    "calendar",
    "difflib",
    "pprint",
    "traceback",
    "warnings",
    "weakref",
    "abc",
]


# --- the PDF ------------------------------------------------------------------------------------


def prose(chars: int) -> str:
    """At least `chars` characters of docstring prose (printable latin-1, whitespace collapsed)."""
    seen: set[str] = set()
    parts: list[str] = []
    total = 0
    for name in MODULES:
        module = importlib.import_module(name)
        members = [module] + [v for k, v in sorted(vars(module).items()) if not k.startswith("_")]
        for member in members:
            doc = inspect.getdoc(member) if callable(member) or inspect.ismodule(member) else None
            if not doc or doc in seen or len(doc) < 200:
                continue
            seen.add(doc)
            text = " ".join(doc.encode("latin-1", "ignore").decode("latin-1").split())
            text = "".join(ch for ch in text if ch.isprintable())
            parts.append(text)
            total += len(text) + 1
            if total >= chars:
                return " ".join(parts)
    return (" ".join(parts) + " ") * math.ceil(chars / max(total, 1))


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word[:width]
        else:
            line = f"{line} {word}" if line else word[:width]
    if line:
        lines.append(line)
    return lines


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[list[str]]) -> bytes:
    """A valid PDF with one Helvetica text line per string, a page per list, and a correct xref table."""
    font_id, next_id = 3, 4
    page_ids: list[int] = []
    page_objs: list[tuple[int, bytes]] = []
    for lines in pages:
        ops = ["BT", "/F1 10 Tf", "13 TL", "56 740 Td"]
        ops += [f"({_pdf_escape(line)}) Tj T*" for line in lines]
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        content_id, page_id = next_id, next_id + 1
        next_id += 2
        page_objs.append((content_id, b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"))
        page_objs.append(
            (
                page_id,
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R"
                b" /Resources << /Font << /F1 %d 0 R >> >> >>" % (content_id, font_id),
            )
        )
        page_ids.append(page_id)
    kids = " ".join(f"{i} 0 R" for i in page_ids).encode()
    head = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % len(page_ids),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    numbered = sorted([(i + 1, body) for i, body in enumerate(head)] + page_objs)
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number, body in numbered:
        offsets[number] = out.tell()
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    size = len(numbered) + 1
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % size)
    for number in range(1, size):
        out.write(b"%010d 00000 n \n" % offsets[number])
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref))
    return out.getvalue()


def build_pdf(pages: int, chars_per_page: int) -> bytes:
    words = prose(pages * chars_per_page).split()
    per_page: list[list[str]] = []
    index = 0
    for number in range(1, pages + 1):
        page_words: list[str] = []
        length = 0
        while length < chars_per_page:
            word = words[index % len(words)]
            index += 1
            page_words.append(word)
            length += len(word) + 1
        text = " ".join(page_words)
        if number == MARKER_PAGE:
            text = f"{MARKER} {text}"
        per_page.append(_wrap(text, LINE_CHARS))
    return make_pdf(per_page)


# --- 1. searchable through the API ----------------------------------------------------------------


def _rounds(client: Any, pdf: bytes, rounds: int, poll: float, found: list[dict[str, Any]]) -> None:
    for number in range(1, rounds + 1):
        started = time.perf_counter()
        file = client.files.create(file=(f"manual-{number}.pdf", pdf), purpose="assistants")
        uploaded = time.perf_counter()
        store = client.vector_stores.create(name=f"bench-ingest-{number}", file_ids=[file.id])
        added = time.perf_counter()
        while True:
            state = client.vector_stores.files.retrieve(file.id, vector_store_id=store.id)
            if state.status != "in_progress":
                break
            time.sleep(poll)
        completed = time.perf_counter()
        if state.status != "completed":
            raise RuntimeError(f"ingestion ended {state.status}: {state.last_error}")
        searches = 0
        while True:
            searches += 1
            page = client.vector_stores.search(store.id, query=MARKER_QUERY, max_num_results=5)
            if any(hit.file_id == file.id and "quokka" in hit.content[0].text for hit in page.data):
                break
            if searches >= 100:
                raise RuntimeError("the marker sentence never came back from search")
            time.sleep(poll)
        done = time.perf_counter()
        row = {
            "round": number,
            "upload_s": uploaded - started,
            "add_s": added - uploaded,
            "ingest_s": completed - uploaded,
            "search_s": done - completed,
            "searches": searches,
            "total_s": done - started,
            "usage_bytes": state.usage_bytes,
        }
        found.append(row)
        print(f"bench_ingest: round {number}: {row['total_s']:.1f} s", file=sys.stderr)


def searchable_rounds(pdf: bytes, rounds: int, poll: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from openai import OpenAI

    from assistd.testing.server import LiveServer

    found: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        env = {"ASSISTD_API_KEYS": API_KEY, "ASSISTD_LOCAL_ENABLED": "false", "ASSISTD_LOG_REQUESTS": "false"}
        with LiveServer(Path(tmp), env=env, startup_timeout=120) as server:
            client = OpenAI(base_url=server.base_url, api_key=API_KEY, timeout=300, max_retries=0)
            try:
                _rounds(client, pdf, rounds, poll, found)
            except Exception:
                print(
                    f"bench_ingest: server exit code {server.process and server.process.poll()}, log tail:\n"
                    f"{server.logs()[-3000:]}",
                    file=sys.stderr,
                )
                raise
        db = Path(tmp) / "assistd.db"
        import sqlite3

        with sqlite3.connect(db) as conn:
            counts = dict(conn.execute("SELECT file_id, count(*) FROM chunks GROUP BY file_id").fetchall())
    return found, {"chunks_per_file": sorted(set(counts.values()))}


# --- 2. split and what-ifs ------------------------------------------------------------------------


async def split(pdf: bytes, what_if: bool) -> dict[str, Any]:
    from assistd.retrieval.chunking import chunk
    from assistd.retrieval.embedding import MiniLMEmbedder
    from assistd.retrieval.parsing import parse
    from assistd.settings import Settings

    max_windows = Settings().embeddings_max_windows  # what the server embeds of each chunk
    embedder = MiniLMEmbedder(max_windows=max_windows)
    started = time.perf_counter()
    embedder.load()
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    text = parse("manual.pdf", pdf)
    parsed = time.perf_counter()
    pieces = chunk(text, 800, 400)
    chunked = time.perf_counter()
    await embedder.embed([p.text for p in pieces])
    embedded = time.perf_counter()
    tokenizer = embedder._tokenizer  # the embedder's own WordPiece tokenizer
    encodings = tokenizer.encode_batch([p.text for p in pieces], add_special_tokens=False)
    wordpieces = [len(e.ids) for e in encodings]
    body = 254

    def runs(n: int, limit: int | None) -> int:
        """The windows the embedder runs for a text of n wordpieces."""
        return max(1, math.ceil(n / body)) if limit is None else min(limit, max(1, math.ceil(n / body)))

    windows = [runs(n, max_windows) for n in wordpieces]
    row: dict[str, Any] = {
        "max_windows": max_windows,
        "windows_all": sum(runs(n, None) for n in wordpieces),
        "characters": len(text),
        "chunks": len(pieces),
        "chunk_tokens_mean": statistics.mean(p.tokens for p in pieces),
        "wordpieces_per_chunk_mean": statistics.mean(wordpieces),
        "windows": sum(windows),
        "windows_per_chunk_mean": statistics.mean(windows),
        "model_load_s": load_s,
        "parse_s": parsed - started,
        "chunk_s": chunked - parsed,
        "embed_s": embedded - chunked,
    }
    row["windows_per_s"] = row["windows"] / row["embed_s"]
    what: list[dict[str, Any]] = []
    if what_if:
        no_overlap = chunk(text, 800, 0)
        started = time.perf_counter()
        await embedder.embed([p.text for p in no_overlap])
        elapsed = time.perf_counter() - started
        nwin = sum(
            runs(len(e.ids), max_windows)
            for e in tokenizer.encode_batch([p.text for p in no_overlap], add_special_tokens=False)
        )
        what.append({"case": "800/0 (no overlap)", "chunks": len(no_overlap), "windows": nwin, "embed_s": elapsed})
        other_windows = None if max_windows is not None else 1
        other = MiniLMEmbedder(max_windows=other_windows)
        other.load()
        started = time.perf_counter()
        await other.embed([p.text for p in pieces])
        elapsed = time.perf_counter() - started
        what.append(
            {
                "case": "800/400, every window" if other_windows is None else "800/400, first window only",
                "chunks": len(pieces),
                "windows": sum(runs(n, other_windows) for n in wordpieces),
                "embed_s": elapsed,
            }
        )
    return {"split": row, "what_if": what}


# --- report ---------------------------------------------------------------------------------------


def report(result: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    s, rounds, pdf = result["split"], result["rounds"], result["pdf"]
    lines = [heading("ingestion", result), ""]
    lines.append(
        f"PDF: {pdf['pages']} pages, {pdf['bytes']:,} bytes, {s['characters']:,} characters extracted, "
        f"{s['chunks']} chunks (800/400; the server stored {result['server']['chunks_per_file']} per file)."
    )
    lines.append("")
    lines.append("| round | upload s | ingest s (add → completed) | first search s | total s | chunks/s |")
    lines.append("|---:|---:|---:|---:|---:|---:|")
    for r in rounds:
        note = " (model load)" if r["round"] == 1 else ""
        lines.append(
            f"| {r['round']}{note} | {fmt(r['upload_s'])} | {fmt(r['ingest_s'])} | {fmt(r['search_s'])} "
            f"| {fmt(r['total_s'])} | {fmt(s['chunks'] / r['ingest_s'], 1)} |"
        )
    warm = result["warm_total_s"]
    lines.append("")
    verdict = "meets" if warm <= AIM_SECONDS else "MISSES"
    lines.append(
        f"Aim: a 100-page PDF searchable in <= {AIM_SECONDS:.0f} s on 2 cores — median of warm rounds "
        f"{warm:.1f} s on {result['machine']['cpus']} CPUs: {verdict} the aim."
    )
    if baseline:
        lines.append(
            f"Baseline: warm total {fmt(baseline.get('warm_total_s'))} s, new/old "
            f"{ratio(warm, baseline.get('warm_total_s'))}."
        )
    lines.append("")
    lines.append("Split, in process, same bytes:")
    lines.append("")
    lines.append("| step | s | share | notes |")
    lines.append("|---|---:|---:|---|")
    total = s["parse_s"] + s["chunk_s"] + s["embed_s"]
    lines.append(f"| parse (pdfium) | {fmt(s['parse_s'])} | {s['parse_s'] / total:.0%} | {s['characters']:,} chars |")
    lines.append(
        f"| chunk (cl100k, 800/400) | {fmt(s['chunk_s'])} | {s['chunk_s'] / total:.0%} "
        f"| {s['chunks']} chunks, "
        f"{s['chunk_tokens_mean']:.0f} tokens each |"
    )
    lines.append(
        f"| embed (MiniLM int8) | {fmt(s['embed_s'])} | {s['embed_s'] / total:.0%} | {s['windows']} windows "
        f"({s['windows_per_chunk_mean']:.2f}/chunk, max_windows {s.get('max_windows')}, "
        f"{s.get('windows_all', s['windows'])} if every window ran; "
        f"{s['wordpieces_per_chunk_mean']:.0f} wordpieces/chunk), "
        f"{s['windows_per_s']:.1f} windows/s |"
    )
    lines.append(f"| total | {fmt(total)} | | model load {fmt(s['model_load_s'])} s not included |")
    if result["what_if"]:
        lines.append("")
        lines.append("| what if (embed step only) | chunks | windows | embed s | vs now |")
        lines.append("|---|---:|---:|---:|---:|")
        now = "all windows" if s.get("max_windows") is None else f"first {s['max_windows']} window(s)"
        lines.append(f"| now: 800/400, {now} | {s['chunks']} | {s['windows']} | {fmt(s['embed_s'])} | 1.00 |")
        for w in result["what_if"]:
            lines.append(
                f"| {w['case']} | {w['chunks']} | {w['windows']} | {fmt(w['embed_s'])} "
                f"| {ratio(w['embed_s'], s['embed_s'])} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--chars-per-page", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between status polls")
    parser.add_argument("--what-if", action=argparse.BooleanOptionalAction, default=True)
    add_output_args(parser, "ingest")
    args = parser.parse_args(argv)
    load_before = loadavg()
    warn_if_loaded("bench_ingest", load_before)
    started = time.time()
    pdf = build_pdf(args.pages, args.chars_per_page)
    rounds, server = searchable_rounds(pdf, args.rounds, args.poll)
    parts = asyncio.run(split(pdf, args.what_if))
    warm = [r["total_s"] for r in rounds[1:]] or [rounds[0]["total_s"]]
    result = {
        **result_head("ingest", started, machine(load_before), versions(PACKAGES)),
        "settings": settings(args),
        "pdf": {"pages": args.pages, "bytes": len(pdf)},
        "rounds": rounds,
        "server": server,
        "warm_total_s": statistics.median(warm),
        **parts,
    }
    print(report(result, load_baseline(args.baseline)))
    output = write_result(result, args.output, started)
    print(f"\nwritten to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
