"""Hostile files through the API: what each costs the server (time, peak memory) and how it ends.

    python bench/bench_hostile_files.py                       # this tree, every file, ~1 minute
    python bench/bench_hostile_files.py --src /path/to/old/src --only docx-30MB,pdf-300k-pages
    python bench/bench_hostile_files.py --env ASSISTD_INGESTION_MAX_COMPRESSION_RATIO=100000  # the caps behind

Each file gets a fresh `assistd serve` (LiveServer, SQLite, ASSISTD_LOCAL_ENABLED=false, default
settings), warmed up first by ingesting a small real .docx, .pptx and .pdf (so the embedding model and
the parsers are loaded before measuring). Then, with the OpenAI SDK: upload the file, add it to a
vector store, poll every 50 ms until it leaves `in_progress` (or `--timeout`). Peak RSS growth is the
server process's VmHWM (/proc/<pid>/status) after, minus before. The files are built here
(assistd.testing.hostile): decompression bombs of ~650:1 (docx, pptx) and ~1000:1 (a PDF content
stream), and a PDF of 300,000 pages.

`--src` runs the server from another source tree (e.g. `git archive` of an older commit) to compare.
A server that grows past `--rss-cap-mb` (4000) is killed, so that the machine survives the old code;
the row then says so.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import openai

from assistd.testing import hostile
from assistd.testing.server import LiveServer

MB = 1_000_000
FILES: dict[str, Callable[[], hostile.Hostile]] = {
    "docx-30MB": lambda: hostile.docx_bomb(30 * MB, "bomb-30MB.docx"),
    "docx-900MB": lambda: hostile.docx_bomb(900 * MB, "bomb-900MB.docx"),
    "docx-1600MB": lambda: hostile.docx_bomb(1600 * MB, "bomb-1600MB.docx"),
    "pptx-30MB-slide": lambda: hostile.pptx_bomb(30 * MB, "slide-30MB.pptx"),
    "pptx-600MB-slide": lambda: hostile.pptx_bomb(600 * MB, "slide-600MB.pptx"),
    "pdf-300k-pages": lambda: hostile.pdf_many_pages(300_000, "pages-300k.pdf"),
    "pdf-100MB-stream": lambda: hostile.pdf_stream_bomb(100 * MB, "stream-100MB.pdf"),
    "pdf-1000MB-stream": lambda: hostile.pdf_stream_bomb(1000 * MB, "stream-1000MB.pdf"),
}


def vm(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def warm_up_files() -> list[tuple[str, bytes]]:
    import docx
    import pptx

    document = docx.Document()
    document.add_paragraph("A warm-up paragraph about whales and ships.")
    deck = pptx.Presentation()
    deck.slides.add_slide(deck.slide_layouts[1]).shapes.title.text = "A warm-up slide"
    docx_bytes, pptx_bytes = io.BytesIO(), io.BytesIO()
    document.save(docx_bytes)
    deck.save(pptx_bytes)
    pdf = hostile.pdf_many_pages(1).data
    return [("warm.docx", docx_bytes.getvalue()), ("warm.pptx", pptx_bytes.getvalue()), ("warm.pdf", pdf)]


def ingest(client: openai.OpenAI, name: str, data: bytes, timeout: float, stop: threading.Event) -> tuple[str, float]:
    store = client.vector_stores.create(name=name)
    uploaded = client.files.create(file=(name, data), purpose="assistants")
    started = time.monotonic()
    client.vector_stores.files.create(vector_store_id=store.id, file_id=uploaded.id)
    while time.monotonic() - started < timeout and not stop.is_set():
        vs_file = client.vector_stores.files.retrieve(uploaded.id, vector_store_id=store.id)
        if vs_file.status != "in_progress":
            error = vs_file.last_error
            result = vs_file.status + (f" ({error.code}: {error.message})" if error else "")
            return result, time.monotonic() - started
        time.sleep(0.05)
    return "still in_progress" if not stop.is_set() else "killed", time.monotonic() - started


def measure(label: str, build: Callable[[], hostile.Hostile], args: argparse.Namespace) -> list[str]:
    bomb = build()
    env = {"ASSISTD_LOCAL_ENABLED": "false", "ASSISTD_LOG_REQUESTS": "false"}
    env |= dict(setting.split("=", 1) for setting in args.env)
    if args.src:
        env["PYTHONPATH"] = str(Path(args.src).resolve())
    with tempfile.TemporaryDirectory() as data_dir, LiveServer(Path(data_dir), env=env) as server:
        assert server.process is not None
        pid = server.process.pid
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client = openai.OpenAI(base_url=server.base_url, api_key="bench", max_retries=0, timeout=600)
        never = threading.Event()
        for name, data in warm_up_files():
            ingest(client, name, data, 120, never)
        before = vm(pid, "VmHWM")
        killed = threading.Event()

        def guard() -> None:  # the old code can take gigabytes: stop it before the machine does
            while server.process is not None and server.process.poll() is None and not done.is_set():
                if vm(pid, "VmRSS") > args.rss_cap_mb:
                    killed.set()
                    server.process.kill()
                    return
                time.sleep(0.05)

        done = threading.Event()
        watcher = threading.Thread(target=guard, daemon=True)
        watcher.start()
        try:
            result, seconds = ingest(client, bomb.name, bomb.data, args.timeout, killed)
            growth = vm(pid, "VmHWM") - before
        except openai.APIConnectionError:
            result, seconds, growth = "server died", float("nan"), float("nan")
        done.set()
        if killed.is_set():
            result, growth = f"killed at {args.rss_cap_mb} MB RSS", float(args.rss_cap_mb) - before
        client.close()
    return [
        bomb.name,
        f"{len(bomb.data) / 1000:,.0f} KB",
        f"{bomb.unpacked / MB:,.0f} MB",
        result[:110],
        f"{seconds:.2f}",
        f"{growth:+,.0f} MB",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", help="run the server from this source tree (its src/ directory)")
    parser.add_argument("--env", action="append", default=[], help="a server setting, KEY=VALUE (repeatable)")
    parser.add_argument("--only", help="comma-separated labels: " + ", ".join(FILES))
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for one file (300)")
    parser.add_argument("--rss-cap-mb", type=float, default=4000.0, help="kill the server past this RSS (4000)")
    args = parser.parse_args()
    labels = args.only.split(",") if args.only else list(FILES)
    settings = ", ".join(args.env) or "defaults"
    print(f"server from: {args.src or 'this tree'}; settings: {settings}; {os.cpu_count()} CPUs; ", end="")
    print(f"load {os.getloadavg()[0]:.2f}\n")
    header = ["file", "size", "unpacked", "result", "seconds", "peak RSS growth"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for label in labels:
        row = measure(label, FILES[label], args)
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
