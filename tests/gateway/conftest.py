"""Fixtures for the kernel gateway sandbox backend: a real `jupyter kernelgateway` on loopback, a
migrated SQLite database, and backends on one event loop (two of them play two replicas)."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from assistd.db import migrate
from assistd.db.database import Database, create_engine
from assistd.sandbox.base import Execution, InputFile
from assistd.sandbox.gateway import GatewayConfig, GatewaySandbox
from assistd.sandbox.gateway_client import GatewayOptions
from assistd.testing.kernel_gateway import KernelGateway, build, default_venv

T = TypeVar("T")
BACKENDS = os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")
MiB = 1 << 20


@pytest.fixture(scope="session")
def kernel_gateway_jupyter() -> Path:
    """The kernel gateway's own environment (built here the first time; later runs reuse it)."""
    return build(default_venv())


@pytest.fixture(scope="session")
def kernel_gateway(kernel_gateway_jupyter: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelGateway]:
    with KernelGateway(kernel_gateway_jupyter, tmp_path_factory.mktemp("kernel-gateway")) as gateway:
        yield gateway


@pytest.fixture(scope="session")
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as r:
        yield r


@pytest.fixture(scope="session")
def run(runner: asyncio.Runner) -> Callable[[Coroutine[Any, Any, T]], T]:
    return runner.run


@pytest.fixture(scope="session", params=BACKENDS)
def database(
    request: pytest.FixtureRequest,
    run: Callable[[Coroutine[Any, Any, Any]], Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Database]:
    """The database holding the thread → kernel mapping (SQLite and PostgreSQL, as the servers use)."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres").new_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('gateway-db') / 'assistd.db'}"

    async def migrated() -> None:
        engine = create_engine(url, pool_size=1)
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()

    run(migrated())
    db = Database(url, pool_size=2)
    yield db
    run(db.dispose())


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway-data")


def gateway_config(gateway: KernelGateway, data_root: Path, **changes: Any) -> GatewayConfig:
    options = GatewayOptions(url=gateway.url, token=gateway.token, connect_timeout=10, start_timeout=60)
    values: dict[str, Any] = {
        "options": options,
        "data_path": str(data_root / "{session}"),
        "cell_timeout": 30,
        "interrupt_grace": 3,
        "max_file_bytes": 1 * MiB,
        "max_cell_files_bytes": 4 * MiB,
    }
    values.update(changes)
    return GatewayConfig(**values)


@pytest.fixture(scope="session")
def backend(
    run: Callable[[Coroutine[Any, Any, Any]], Any], kernel_gateway: KernelGateway, database: Database, data_root: Path
) -> Iterator[GatewaySandbox]:
    sandbox = GatewaySandbox(gateway_config(kernel_gateway, data_root), database)
    assert sandbox.unavailable() is None
    run(sandbox.start())
    yield sandbox
    run(sandbox.aclose())


@pytest.fixture(scope="session")
def replica(
    run: Callable[[Coroutine[Any, Any, Any]], Any], kernel_gateway: KernelGateway, database: Database, data_root: Path
) -> Iterator[GatewaySandbox]:
    """A second backend on the same database and gateway: another server replica."""
    sandbox = GatewaySandbox(gateway_config(kernel_gateway, data_root), database)
    run(sandbox.start())
    yield sandbox
    run(sandbox.aclose())


@pytest.fixture()
def session(run: Callable[[Coroutine[Any, Any, Any]], Any], backend: GatewaySandbox) -> Iterator[str]:
    """A fresh session key, closed (kernel deleted, files removed) after the test."""
    key = f"thread_{secrets.token_hex(6)}"
    yield key
    run(backend.close(key, remove_files=True))


def input_file(name: str, data: bytes, file_id: str | None = None) -> InputFile:
    async def read() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 7919):  # several chunks
            yield data[start : start + 7919]
        if not data:
            yield b""

    return InputFile(file_id or f"file-{secrets.token_hex(6)}", name, read)


def execute(
    run: Callable[[Coroutine[Any, Any, Any]], Any],
    sandbox: GatewaySandbox,
    key: str,
    code: str,
    inputs: list[InputFile] | None = None,
) -> Execution:
    result: Execution = run(sandbox.execute(key, code, inputs or []))
    return result
