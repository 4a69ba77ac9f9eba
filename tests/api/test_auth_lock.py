"""Once keys exist, the server never falls back to open mode: revoking the last key locks it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest
from apihelpers import BETA, poll

from assistd.testing.server import LiveServer


def _cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistd", *args], env=server.env, capture_output=True, text=True, timeout=60
    )


def _status(server: LiveServer, key: str) -> int:
    headers = {**BETA, "Authorization": f"Bearer {key}"}
    return httpx.get(f"{server.base_url}/assistants", headers=headers, timeout=30).status_code


def test_revoking_the_last_key_locks_an_open_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    backend: str,
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server(request, tmp_path_factory, backend, env={"ASSISTD_KEY_CACHE_SECONDS": "0.2"})
    assert _status(server, "anything") == 200  # open: no key was ever stored

    created = _cli(server, "keys", "create", "--project", "locked")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    key_id = created.stderr.split()[1]
    assert poll(lambda: _status(server, "anything") == 401)
    assert _status(server, secret) == 200

    revoked = _cli(server, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert poll(lambda: _status(server, secret) == 401)
    assert _status(server, "anything") == 401  # not open again


def test_revoking_an_unknown_key_is_one_line_not_a_traceback(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    backend: str,
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server(request, tmp_path_factory, backend)
    result = _cli(server, "keys", "revoke", "key_nope")
    assert result.returncode == 1
    assert result.stderr.strip() == "assistd: No active key with id 'key_nope'."
