"""Hostile documents through the API: decompression bombs end `failed` with `invalid_file`, quickly,
and the server's peak memory (VmHWM) grows by far less than 300 MB while it ingests each of them.

The files are built here (assistd.testing.hostile): a .docx of 47 KB that unpacks to 30 MB of empty
paragraphs (it took the server to 1.1-1.7 GB and 73 s), a larger one, a .pptx with one enormous
slide, a PDF of 50,000 pages, a PDF whose content stream inflates 1000:1. A long real document still
ingests with the default limits.
"""

from __future__ import annotations

import io
import os
import random
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest

from assistd.retrieval.embedding import MiniLMEmbedder
from assistd.testing import hostile
from assistd.testing.server import LiveServer

pytestmark = pytest.mark.skipif(not MiniLMEmbedder.available(), reason="the bundled embedding model is not installed")
pytest.importorskip("pptx")

BACKENDS = [
    pytest.param(name, marks=pytest.mark.postgres) if name == "postgres" else name
    for name in os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")
]
MAX_GROWTH_MB = 300
MB = 1_000_000


def peak_rss_mb(server: LiveServer) -> float:
    """The server process's peak resident set (VmHWM), in MB."""
    assert server.process is not None
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


@pytest.fixture(scope="module", params=BACKENDS)
def own_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    """A server of its own: no other test's work moves its peak memory."""
    launch = request.getfixturevalue("launch")
    server: LiveServer = launch(request, tmp_path_factory, request.param)
    return server


@pytest.fixture()
def api(own_server: LiveServer) -> Iterator[openai.OpenAI]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = openai.OpenAI(base_url=own_server.base_url, api_key="test-key", max_retries=0)
    yield client
    client.close()


def ingest(api: openai.OpenAI, name: str, data: bytes, timeout: float = 120) -> tuple[object, float]:
    """Upload, add to a new store, poll until the file leaves `in_progress`; the file and the seconds taken."""
    store = api.vector_stores.create(name=name)
    uploaded = api.files.create(file=(name, data), purpose="assistants")
    started = time.monotonic()
    api.vector_stores.files.create(vector_store_id=store.id, file_id=uploaded.id)
    deadline = started + timeout
    while True:
        vs_file = api.vector_stores.files.retrieve(uploaded.id, vector_store_id=store.id)
        if vs_file.status != "in_progress" or time.monotonic() > deadline:
            return vs_file, time.monotonic() - started
        time.sleep(0.05)


HOSTILE: list[tuple[str, Callable[[], hostile.Hostile], str]] = [
    ("docx-30MB", lambda: hostile.docx_bomb(30 * MB), "decompression bomb"),
    ("docx-600MB", lambda: hostile.docx_bomb(600 * MB, "bigger.docx"), "over the parsing limit"),
    ("pptx-200MB-slide", lambda: hostile.pptx_bomb(200 * MB), "decompression bomb"),
    ("pdf-50000-pages", lambda: hostile.pdf_many_pages(50_000), "50000 pages"),
    ("pdf-500MB-stream", lambda: hostile.pdf_stream_bomb(500 * MB), "decompression bomb"),
]


@pytest.mark.parametrize(("label", "build", "message"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_file_fails_invalid_file_within_memory(
    own_server: LiveServer, api: openai.OpenAI, label: str, build: Callable[[], hostile.Hostile], message: str
) -> None:
    bomb = build()
    before = peak_rss_mb(own_server)
    vs_file, seconds = ingest(api, bomb.name, bomb.data)
    growth = peak_rss_mb(own_server) - before
    size = f"{len(bomb.data) / 1000:.0f} KB -> {bomb.unpacked / MB:.0f} MB"
    print(f"\n{label}: {size}, {seconds:.2f} s, peak RSS +{growth:.0f} MB")
    assert vs_file.status == "failed", vs_file  # type: ignore[attr-defined]
    error = vs_file.last_error  # type: ignore[attr-defined]
    assert error is not None and error.code == "invalid_file" and message in error.message, error
    assert growth < MAX_GROWTH_MB, f"peak RSS grew by {growth:.0f} MB"
    assert seconds < 30


def long_docx(chapters: int) -> bytes:
    import docx

    rng = random.Random(3)
    words = ["whale", "ship", "captain", "sea", "voyage", "harpoon", "deck", "crew", "storm", "ocean"]
    document = docx.Document()
    for chapter in range(chapters):
        document.add_heading(f"Chapter {chapter}", level=1)
        for _ in range(60):
            paragraph = document.add_paragraph()
            for r in range(3):
                paragraph.add_run(" ".join(rng.choice(words) for _ in range(30)) + " ").bold = r == 1
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_a_real_document_still_ingests(api: openai.OpenAI) -> None:
    vs_file, _ = ingest(api, "book.docx", long_docx(5), timeout=300)
    assert vs_file.status == "completed", vs_file.last_error  # type: ignore[attr-defined]
