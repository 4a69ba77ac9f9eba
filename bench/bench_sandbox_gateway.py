"""code_interpreter on a kernel gateway against the local bubblewrap sandbox: cell latency.

    python bench/bench_sandbox_gateway.py [--cells 200] [--repeat 10]

In process, no API server. Starts a real `jupyter kernelgateway` on loopback from the tests' cached
environment (assistd.testing.kernel_gateway; built if missing) and a SQLite database for the
thread → kernel mapping; the local side is `SessionManager` as the server runs it (bwrap, root).
Times are from `await sandbox.execute(...)` to its result, in ms:

  warm cell        `1+1` in a live session, `--cells` times after 10 unmeasured
  new session      the first `1+1` of a new thread (gateway: POST a kernel, connect, set up;
                   local: no warm pool, kernel launch), `--repeat` threads
  file out 1 MiB   a cell writing a 1 MiB file, returned as an output file
  file in 1 MiB    the first cell of a thread given a 1 MiB input file (placed, then `1+1`)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from assistd.db import migrate
from assistd.db.database import Database, create_engine
from assistd.sandbox.base import InputFile, Sandbox
from assistd.sandbox.gateway import GatewayConfig, GatewaySandbox
from assistd.sandbox.gateway_client import GatewayOptions
from assistd.testing.kernel_gateway import KernelGateway, build, default_venv

MiB = 1 << 20


def blob(size: int) -> InputFile:
    data = os.urandom(size)

    async def read() -> AsyncIterator[bytes]:
        yield data

    return InputFile(f"file-{secrets.token_hex(4)}", "input.bin", read)


async def timed(samples: list[float], work: Callable[[], Awaitable[object]]) -> None:
    start = time.perf_counter()
    await work()
    samples.append((time.perf_counter() - start) * 1000)


async def measure(sandbox: Sandbox, cells: int, repeat: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"warm cell `1+1`": [], "new session": [], "file out 1 MiB": [], "file in 1 MiB": []}
    warm = f"thread_{secrets.token_hex(4)}"
    for _ in range(10):
        await sandbox.execute(warm, "1+1", [])
    for _ in range(cells):
        await timed(out["warm cell `1+1`"], lambda: sandbox.execute(warm, "1+1", []))
    for k in range(repeat):
        code = f"open('out{k}.bin', 'wb').write(b'x' * {MiB})"
        await timed(out["file out 1 MiB"], lambda code=code: sandbox.execute(warm, code, []))  # type: ignore[misc]
    await sandbox.close(warm, remove_files=True)
    for _ in range(repeat):
        key = f"thread_{secrets.token_hex(4)}"
        await timed(out["new session"], lambda key=key: sandbox.execute(key, "1+1", []))  # type: ignore[misc]
        await sandbox.close(key, remove_files=True)
        key = f"thread_{secrets.token_hex(4)}"
        await timed(out["file in 1 MiB"], lambda key=key: sandbox.execute(key, "1+1", [blob(MiB)]))  # type: ignore[misc]
        await sandbox.close(key, remove_files=True)
    return out


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    url = f"sqlite+aiosqlite:///{work / 'assistd.db'}"
    engine = create_engine(url, pool_size=1)
    await migrate.upgrade(engine)
    await engine.dispose()
    db = Database(url)
    results: dict[str, dict[str, list[float]]] = {}
    with KernelGateway(build(default_venv()), work / "gateway") as gateway:
        options = GatewayOptions(url=gateway.url, token=gateway.token)
        remote = GatewaySandbox(GatewayConfig(options, data_path=str(work / "kernels" / "{session}")), db)
        results["gateway"] = await measure(remote, args.cells, args.repeat)
        await remote.aclose()
    if os.geteuid() == 0:
        from assistd.sandbox.environment import build as build_python
        from assistd.sandbox.manager import SandboxConfig, SessionManager

        python = Path(os.environ.get("ASSISTD_SANDBOX_PYTHON", Path.home() / ".cache/assistd-tests/sandbox-python"))
        local = SessionManager(SandboxConfig(root=work / "local", python=build_python(python).venv, pool_size=0))
        assert local.unavailable() is None, local.unavailable()
        await local.start()
        results["local (bwrap)"] = await measure(local, args.cells, args.repeat)
        await local.aclose()
    await db.dispose()
    print("| backend | measure | n | p50 ms | p99 ms | mean ms |")
    print("|---|---|---:|---:|---:|---:|")
    for backend, measures in results.items():
        for name, values in measures.items():
            mean = statistics.fmean(values)
            print(f"| {backend} | {name} | {len(values)} | {p(values, 0.5):.1f} | {p(values, 0.99):.1f} | {mean:.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
