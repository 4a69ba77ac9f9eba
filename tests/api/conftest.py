"""tests/api fixtures: an httpx client on the shared live server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from apihelpers import BETA

from assistd.testing.server import LiveServer


@pytest.fixture()
def http(server: LiveServer) -> Iterator[httpx.Client]:
    """Talks to the shared open server; sends the beta header like the SDK does on assistants routes."""
    with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer test-key", **BETA}, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def start_server(launch: Callable[..., LiveServer]) -> Callable[..., LiveServer]:
    """The root conftest's `start_server(request, tmp_path_factory, backend, env=...)`."""
    return launch
