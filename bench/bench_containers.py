"""Containers: API latency, file transfer, and code cells in a container (cold and warm kernel).

    python bench/bench_containers.py                      # sqlite, 100 requests per API row, 10 cells
    python bench/bench_containers.py --backends sqlite,postgres --requests 200

One `assistd serve` per backend. API rows are sequential requests on one keep-alive connection:
create a container, retrieve it, add a 1 MB file (multipart upload), list 100 files, download 1 MB.
Transfer rows: a 50 MB upload and download, in MB/s. Cell rows run code through ContainerService
(the interface the Responses code_interpreter tool calls) in this process over the server's database
and sandbox directory, with the real bubblewrap sandbox (needs root and bwrap): the first cell of a
new container (kernel start, no warm pool) and later cells (`print(1)`), each followed by the
written-file bookkeeping; and a cell that writes a 1 MB file, until it is listed by the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from common import API_KEY, database_urls, fmt, loadavg, pct, warn_if_loaded

from assistd.app import make_sandbox
from assistd.db.database import Database
from assistd.services.containers import ContainerService
from assistd.services.files import FileService
from assistd.settings import Settings
from assistd.storage.factory import open_blob_store
from assistd.testing.server import LiveServer

MB = 1 << 20
SANDBOX_PYTHON = Path(
    os.environ.get("ASSISTD_TEST_SANDBOX_PYTHON", Path.home() / ".cache" / "assistd-tests" / "sandbox-python")
)


def timed(samples: list[float], call: Callable[..., httpx.Response], path: str, **options: Any) -> httpx.Response:
    began = time.perf_counter()
    response = call(path, **options)
    samples.append((time.perf_counter() - began) * 1000)
    response.raise_for_status()
    return response


async def cells(server: LiveServer, container_ids: list[str], warm: int) -> dict[str, list[float]]:
    env = {k.removeprefix("ASSISTD_").lower(): v for k, v in server.env.items() if k.startswith("ASSISTD_")}
    settings = Settings.model_validate(env)
    db = Database(settings.effective_database_url, pool_size=2)
    blobs = await open_blob_store(settings)
    sandbox = make_sandbox(settings, db)
    await sandbox.start()
    service = ContainerService(db, blobs, FileService(db, blobs), sandbox, max_minutes=60)
    out: dict[str, list[float]] = {"cold": [], "warm": [], "write": []}
    try:
        for container_id in container_ids:
            for kind, code in (
                [("cold", "print(1)")]
                + [("warm", "print(1)")] * warm
                + [("write", "open('/mnt/data/big.bin', 'wb').write(bytes(1 << 20))")]
            ):
                began = time.perf_counter()
                run = await service.execute("proj_default", container_id, code)
                out[kind].append((time.perf_counter() - began) * 1000)
                assert run.execution.status == "ok", run.execution
            await sandbox.close(container_id, remove_files=False)
    finally:
        await sandbox.aclose()
        await db.dispose()
    return out


def measure(backend: str, requests: int, cell_containers: int) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp, database_urls(backend, 1) as (url,):
        env = {
            "ASSISTD_API_KEYS": API_KEY,
            "ASSISTD_SANDBOX_PYTHON": str(SANDBOX_PYTHON),
            "ASSISTD_SANDBOX_POOL_SIZE": "0",
        }
        server = LiveServer(Path(tmp), database_url=url, env=env).start()
        try:
            headers = {"Authorization": f"Bearer {API_KEY}"}
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=120) as http:
                times: dict[str, list[float]] = {k: [] for k in ("create", "retrieve", "upload", "list", "download")}
                one = bytes(range(256)) * (MB // 256)
                box = http.post("/containers", json={"name": "bench"}).raise_for_status().json()["id"]
                for n in range(requests):
                    timed(times["create"], http.post, "/containers", json={"name": f"c{n}"})
                    timed(times["retrieve"], http.get, f"/containers/{box}")
                    made = timed(
                        times["upload"], http.post, f"/containers/{box}/files", files={"file": (f"f{n}", one)}
                    ).json()
                    timed(times["list"], http.get, f"/containers/{box}/files", params={"limit": 100})
                    got = timed(times["download"], http.get, f"/containers/{box}/files/{made['id']}/content")
                    assert got.content == one
                for label, key in [
                    ("create a container", "create"),
                    ("retrieve a container", "retrieve"),
                    ("add a 1 MB file (upload)", "upload"),
                    ("list 100 files", "list"),
                    ("download a 1 MB file", "download"),
                ]:
                    rows.append((label, fmt(pct(times[key], 50)), fmt(pct(times[key], 99))))
                big = os.urandom(50 * MB)
                began = time.perf_counter()
                made = http.post(f"/containers/{box}/files", files={"file": ("big", big)}).raise_for_status().json()
                up = time.perf_counter() - began
                began = time.perf_counter()
                got = http.get(f"/containers/{box}/files/{made['id']}/content").raise_for_status()
                down = time.perf_counter() - began
                assert got.content == big
                rows.append(("50 MB upload, MB/s", fmt(50 / up, 0), ""))
                rows.append(("50 MB download, MB/s", fmt(50 / down, 0), ""))
                if cell_containers and shutil.which("bwrap") and os.geteuid() == 0:
                    ids = [
                        http.post("/containers", json={"name": f"cells{k}"}).raise_for_status().json()["id"]
                        for k in range(cell_containers)
                    ]
                    found = asyncio.run(cells(server, ids, 9))
                    for label, key in [
                        ("first cell in a new container (kernel start)", "cold"),
                        ("later cell, print(1)", "warm"),
                        ("cell writing a 1 MB file, recorded", "write"),
                    ]:
                        rows.append((label, fmt(pct(found[key], 50)), fmt(pct(found[key], 99))))
                    listed = http.get(f"/containers/{ids[0]}/files").raise_for_status().json()["data"]
                    assert [f["path"] for f in listed] == ["/mnt/data/big.bin"]
        finally:
            server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--cell-containers", type=int, default=3, help="containers whose cells are timed (0: none)")
    args = parser.parse_args()
    warn_if_loaded("bench_containers", loadavg())
    for backend in args.backends.split(","):
        rows = measure(backend, args.requests, args.cell_containers)
        print(f"\n{backend}: {args.requests} requests per API row, load {loadavg()[0]:.2f}\n")
        print("| operation | p50 ms | p99 ms |")
        print("|---|---:|---:|")
        for label, p50, p99 in rows:
            print(f"| {label} | {p50} | {p99} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
