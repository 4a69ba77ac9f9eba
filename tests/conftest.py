"""Shared fixtures: a live assistd per storage backend, and SDK clients pointed at it."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assistd.testing.fake_upstream import FakeUpstream
from assistd.testing.postgres import TestPostgres
from assistd.testing.server import LiveServer

BACKENDS = ["sqlite", "postgres"]
if os.environ.get("ASSISTD_TEST_BACKENDS"):
    BACKENDS = os.environ["ASSISTD_TEST_BACKENDS"].split(",")


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeUpstream]:
    """The scripted upstream every test server routes to. Script per model name to keep tests apart."""
    with FakeUpstream() as upstream:
        yield upstream


# code_interpreter's sandbox Python, built once per machine by the `sandbox_python` fixture (pip, ~30 s).
SANDBOX_PYTHON = Path(
    os.environ.get("ASSISTD_TEST_SANDBOX_PYTHON", Path.home() / ".cache" / "assistd-tests" / "sandbox-python")
)

# Settings every test server gets: the fake upstream as the default backend, quick polling and retries.
TEST_ENV = {
    "ASSISTD_SANDBOX_PYTHON": str(SANDBOX_PYTHON),
    # No warm kernel per test server; tests/sandbox covers the pool.
    "ASSISTD_SANDBOX_POOL_SIZE": "0",
    "ASSISTD_POLL_AFTER_MS": "20",
    "ASSISTD_UPSTREAM_RETRY_BASE_SECONDS": "0.01",
    "ASSISTD_WORKER_POLL_SECONDS": "0.2",
    # The bundled model has its own tests (tests/local); other servers need not load it.
    "ASSISTD_LOCAL_ENABLED": "false",
}


@pytest.fixture(scope="session")
def postgres() -> Iterator[TestPostgres]:
    pg = TestPostgres()
    yield pg
    pg.close()


def start_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    backend: str,
    env: dict[str, str] | None = None,
) -> LiveServer:
    data_dir = tmp_path_factory.mktemp(f"assistd-{backend}")
    database_url = None
    if backend == "postgres":
        database_url = request.getfixturevalue("postgres").new_database()
    fake: FakeUpstream = request.getfixturevalue("fake")
    full_env = {**TEST_ENV, "ASSISTD_UPSTREAM_BASE_URL": fake.base_url, **(env or {})}
    server = LiveServer(data_dir, database_url=database_url, env=full_env).start()
    request.addfinalizer(server.stop)
    return server


@pytest.fixture(scope="session")
def launch() -> Callable[..., LiveServer]:
    """`launch(request, tmp_path_factory, backend, env={...})`: a server of its own with extra settings."""
    return start_server


@pytest.fixture(scope="session", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    """An open server (no API keys): any bearer token works."""
    return start_server(request, tmp_path_factory, request.param)


@pytest.fixture(scope="session")
def backend(server: LiveServer) -> str:
    return "postgres" if "ASSISTD_DATABASE_URL" in server.env else "sqlite"


@pytest.fixture()
def client(server: LiveServer):  # type: ignore[no-untyped-def]
    from openai import OpenAI

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        c = OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
    yield c
    c.close()


@pytest.fixture()
def data_path() -> Path:
    return Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def sandbox_python() -> Path:
    """The sandbox's Python environment (built here the first time; later runs reuse it)."""
    from assistd.sandbox import environment

    return environment.build(SANDBOX_PYTHON, quiet=True).venv
