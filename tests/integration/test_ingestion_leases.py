"""Ingestion holds its lease like a run: renewed while it works, handed back on a clean shutdown.

An ingestion that outlives its lease many times over is done exactly once, with two replicas
polling for work; a server stopped with
SIGTERM mid-ingestion leaves no lease behind, and the next server finishes the file at once.
Attempts are counted from the servers' logs (one "ingesting a file" line per claim).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
import warnings
from collections.abc import Callable
from typing import Any

import openai
import pytest
from sqlalchemy import select

from assistd.db import tables as t
from assistd.db.database import Database
from assistd.retrieval.embedding import MiniLMEmbedder
from assistd.testing.server import LiveServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not MiniLMEmbedder.available(), reason="the bundled embedding model is not installed"),
]

BACKENDS = [
    pytest.param(name, marks=pytest.mark.postgres) if name == "postgres" else name
    for name in os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")
]
WORDS = [
    "lease",
    "heartbeat",
    "claim",
    "worker",
    "replica",
    "ingestion",
    "vector",
    "store",
    "chunk",
    "embedding",
    "search",
    "shutdown",
]
# Small chunks, many of them: on two cores this file takes several seconds to embed, many 1 s leases.
CHUNKING = {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}}


def slow_file(chunks: int) -> bytes:
    rng = random.Random(chunks)
    return " ".join(rng.choice(WORDS) for _ in range(chunks * 100)).encode()


def client_for(server: LiveServer) -> openai.OpenAI:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)


def attempts(servers: list[LiveServer], file_id: str) -> int:
    """Claims of the file's ingestion, from the servers' JSON log lines."""
    count = 0
    for server in servers:
        for line in server.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"ingesting a file"' in line and json.loads(line).get("file_id") == file_id:
                count += 1
    return count


def wait_until(probe: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    value = probe()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r}")
        time.sleep(0.05)
        value = probe()
    return value


def lease_of(server: LiveServer, store_id: str, file_id: str) -> tuple[str, str | None, float | None]:
    """The vector-store file's row as the database has it: status, lease owner, lease expiry."""
    url = server.env.get("ASSISTD_DATABASE_URL") or f"sqlite+aiosqlite:///{server.data_dir / 'assistd.db'}"

    async def read() -> tuple[str, str | None, float | None]:
        db = Database(url)
        try:
            c = t.vector_store_files.c
            async with db.read() as conn:
                row = (
                    await conn.execute(
                        select(c.status, c.lease_owner, c.lease_expires_at).where(
                            c.vector_store_id == store_id, c.id == file_id
                        )
                    )
                ).one()
            return row.status, row.lease_owner, row.lease_expires_at
        finally:
            await db.dispose()

    return asyncio.run(read())


def start(request: pytest.FixtureRequest, backend: str, env: dict[str, str]) -> LiveServer:
    launch = request.getfixturevalue("launch")
    server: LiveServer = launch(request, request.getfixturevalue("tmp_path_factory"), backend, env=env)
    return server


def add_file(client: openai.OpenAI, data: bytes) -> tuple[str, str, float]:
    store = client.vector_stores.create(name="leases")
    uploaded = client.files.create(file=("slow.txt", data), purpose="assistants")
    started = time.monotonic()
    client.vector_stores.files.create(
        vector_store_id=store.id,
        file_id=uploaded.id,
        chunking_strategy=CHUNKING,  # type: ignore[arg-type]
    )
    return store.id, uploaded.id, started


@pytest.mark.parametrize("backend", BACKENDS)
def test_ingestion_outliving_its_lease_is_done_once(request: pytest.FixtureRequest, backend: str) -> None:
    server = start(request, backend, {"ASSISTD_LEASE_SECONDS": "1"})
    replica = LiveServer(server.data_dir, env=server.env).start()  # a second replica on the same database
    request.addfinalizer(replica.stop)
    client = client_for(server)
    store_id, file_id, started = add_file(client, slow_file(400))
    done = wait_until(
        lambda: client.vector_stores.files.retrieve(file_id, vector_store_id=store_id),
        lambda f: f.status != "in_progress",
        180,
        "the ingestion to end",
    )
    seconds = time.monotonic() - started
    tries = attempts([server, replica], file_id)
    print(f"\n[{backend}] ingestion on two replicas: {seconds:.1f} s with a 1 s lease, {tries} attempt(s)")
    assert done.status == "completed", done.last_error
    assert seconds > 3, "the file must take several leases to ingest for this test to mean anything"
    assert tries == 1
    assert lease_of(server, store_id, file_id) == ("completed", None, None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_mid_ingestion_hands_the_lease_back(request: pytest.FixtureRequest, backend: str) -> None:
    # A long lease: without the hand-back the next server would wait a minute before it could start.
    env = {"ASSISTD_LEASE_SECONDS": "60", "ASSISTD_DRAIN_SECONDS": "0"}
    first = start(request, backend, env)
    client = client_for(first)
    store_id, file_id, _ = add_file(client, slow_file(400))
    wait_until(lambda: attempts([first], file_id), lambda n: n == 1, 30, "the ingestion to start")
    client.close()
    assert first.stop(signal.SIGTERM) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its shutdown

    status, owner, expires = lease_of(first, store_id, file_id)
    assert (status, owner, expires) == ("in_progress", None, None)

    second = LiveServer(first.data_dir, env=first.env).start()  # same data dir, same database
    request.addfinalizer(second.stop)
    client = client_for(second)
    done = wait_until(
        lambda: client.vector_stores.files.retrieve(file_id, vector_store_id=store_id),
        lambda f: f.status != "in_progress",
        120,
        "the restarted server to finish the file",
    )
    assert done.status == "completed", done.last_error
    assert attempts([first], file_id) == 1 and attempts([second], file_id) == 1
    assert lease_of(second, store_id, file_id) == ("completed", None, None)
