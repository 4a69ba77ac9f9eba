"""What an operator sees from `assistd serve` (issue 12 item 12): its help, its banner, plain logs."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from assistd.testing.server import LiveServer

Launch = Callable[..., LiveServer]


def _wait_for(server: LiveServer, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        log = server.logs()
        if text in log or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def test_serve_help_shows_the_defaults_and_points_at_the_settings_docs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "assistd", "serve", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    text = " ".join(result.stdout.split())
    for expected in ("(default: 127.0.0.1)", "(default: 8000)", "(default: 30.0)", "docs/configuration.md"):
        assert expected in text, result.stdout
    assert "ASSISTD_KEEP_ALIVE_SECONDS" in text


def test_serve_prints_where_it_listens_the_console_and_the_open_auth_mode(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Launch
) -> None:
    server = launch(request, tmp_path_factory, "sqlite")
    log = _wait_for(server, "auth:")
    assert f"listening on 127.0.0.1:{server.port}" in log
    assert f"API:     http://127.0.0.1:{server.port}/v1" in log
    assert f"console: http://127.0.0.1:{server.port}/" in log
    assert "auth:    open: no API keys configured" in log
    # JSON log lines only, without uvicorn's colour-coded duplicate of its messages
    assert "color_message" not in log
    assert "\\u001b" not in log and "\x1b" not in log


def test_serve_prints_that_keys_are_required_and_the_console_is_off(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Launch
) -> None:
    env = {"ASSISTD_API_KEYS": "sk-one,sk-two", "ASSISTD_CONSOLE_ENABLED": "false"}
    server = launch(request, tmp_path_factory, "sqlite", env=env)
    log = _wait_for(server, "auth:")
    assert "console: off (ASSISTD_CONSOLE_ENABLED=false)" in log
    assert "auth:    API keys required (2 in ASSISTD_API_KEYS" in log
    assert "sk-one" not in log  # never the keys themselves
