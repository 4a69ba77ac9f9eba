"""File bytes through the API on the local directory vs an S3-compatible bucket: throughput and memory.

    python bench/bench_blobs.py                       # 100 MB and 1 GB, local and s3, ~2 minutes
    python bench/bench_blobs.py --sizes 100 --stores s3

For each store a fresh `assistd serve` (LiveServer, SQLite, ASSISTD_LOCAL_ENABLED=false); `s3` is
moto's server mode (assistd.testing.s3: its own venv and process, on loopback). For each size a file
of random bytes is written to a temporary file, uploaded with the openai SDK from an open file
handle (httpx streams it), then downloaded with the SDK's streaming response into nothing. MB/s is
size / wall time of the request (10^6 bytes). Peak RSS is the server process's VmHWM
(/proc/<pid>/status) after the upload and after the download, against its VmHWM before the first
upload (the server is started fresh for each store, and warmed up with one small upload and
download). moto keeps every object in its own memory: its RSS is the test server's, reported for
completeness, not assistd's; so is the CPU time each process spent during the upload (both share
the machine's cores, so a slow S3 server shows here as upload MB/s).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import openai
from common import process_cpu_seconds

from assistd.testing.s3 import MotoS3
from assistd.testing.server import LiveServer

MB = 1_000_000
BLOCK = 16 * 1024 * 1024


def vm_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_file(directory: Path, size: int) -> Path:
    path = directory / f"payload-{size // MB}MB.bin"
    block = os.urandom(BLOCK)
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, BLOCK)
            fh.write(block[:n])
            left -= n
    return path


def upload(client: openai.OpenAI, path: Path) -> tuple[str, float]:
    started = time.perf_counter()
    with open(path, "rb") as fh:
        created = client.files.create(file=(path.name, fh), purpose="user_data")
    seconds = time.perf_counter() - started
    assert created.bytes == path.stat().st_size, created
    return created.id, seconds


def download(client: openai.OpenAI, file_id: str, size: int) -> float:
    started = time.perf_counter()
    received = 0
    with client.files.with_streaming_response.content(file_id) as response:
        for chunk in response.iter_bytes(1024 * 1024):
            received += len(chunk)
    seconds = time.perf_counter() - started
    assert received == size, (received, size)
    return seconds


def measure(store: str, sizes: list[int], files: dict[int, Path], moto: MotoS3 | None) -> list[list[str]]:
    env = {"ASSISTD_LOCAL_ENABLED": "false", "ASSISTD_LOG_REQUESTS": "false"}
    env["ASSISTD_MAX_UPLOAD_BYTES"] = str(max(sizes) + MB)
    if moto is not None:
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        moto.create_bucket(bucket)
        env |= moto.assistd_env(bucket, "bench/")
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as data_dir, LiveServer(Path(data_dir), env=env) as server:
        assert server.process is not None
        pid = server.process.pid
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client = openai.OpenAI(base_url=server.base_url, api_key="bench", max_retries=0, timeout=3600)
        warm = client.files.create(file=("warm.bin", os.urandom(3 * 1024 * 1024)), purpose="user_data")
        download(client, warm.id, warm.bytes)
        client.files.delete(warm.id)
        base = vm_mib(pid, "VmHWM")
        moto_pid = moto.process.pid if moto and moto.process else None
        for size in sizes:
            cpu = (process_cpu_seconds(pid), process_cpu_seconds(moto_pid) if moto_pid else None)
            file_id, up = upload(client, files[size])
            hwm_up = vm_mib(pid, "VmHWM")
            server_cpu = (process_cpu_seconds(pid) or 0) - (cpu[0] or 0)
            moto_cpu = (process_cpu_seconds(moto_pid) or 0) - (cpu[1] or 0) if moto_pid else None
            down = download(client, file_id, size)
            hwm_down = vm_mib(pid, "VmHWM")
            client.files.delete(file_id)
            moto_rss = f"{vm_mib(moto.process.pid, 'VmHWM'):,.0f}" if moto and moto.process else "—"
            rows.append(
                [
                    store,
                    f"{size / MB:,.0f} MB",
                    f"{size / MB / up:,.0f}",
                    f"{server_cpu:.1f}" + (f" / {moto_cpu:.1f}" if moto_cpu is not None else ""),
                    f"{size / MB / down:,.0f}",
                    f"{base:,.0f}",
                    f"{hwm_up:,.0f} ({hwm_up - base:+,.0f})",
                    f"{hwm_down:,.0f} ({hwm_down - base:+,.0f})",
                    moto_rss,
                ]
            )
            print("| " + " | ".join(rows[-1]) + " |", flush=True)
        client.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000", help="file sizes in MB, comma-separated (100,1000)")
    parser.add_argument("--stores", default="local,s3", help="local and/or s3 (local,s3)")
    args = parser.parse_args()
    sizes = [int(s) * MB for s in args.sizes.split(",")]
    stores = [s.strip() for s in args.stores.split(",")]
    print(f"{os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}; server: SQLite, S3 part 8 MiB x 4 in flight\n")
    header = [
        "store",
        "file",
        "upload MB/s",
        "upload CPU s: assistd / moto",
        "download MB/s",
        "server VmHWM before (MiB)",
        "after upload",
        "after download",
        "moto VmHWM (MiB)",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = {size: make_file(Path(tmp), size) for size in sizes}
        for store in stores:
            if store == "s3":
                with MotoS3(log_dir=Path(tmp)) as moto:
                    measure(store, sizes, files, moto)
            else:
                measure(store, sizes, files, None)
    print(f"\nload after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
