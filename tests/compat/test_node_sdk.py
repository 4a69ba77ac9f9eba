"""The official `openai` npm SDK's streaming helpers against a live server (tests/node/stream.test.mjs).

The SDK version is pinned in tests/node/package.json (with a lockfile): 6.49.0 is the newest release
that still runs on node 20 (7.x requires node >= 22), and it has `beta.threads.runs.stream`,
`submitToolOutputsStream` and `createAndRunStream`. `npm ci` installs it on first use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import LiveServer

from .conftest import LEGACY_SDK

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
# The replies stream.test.mjs expects; keep in step with the constants at its top.
TEXT = "Hello from the node SDK, streamed word by word."
ARGS = {"city": "Paris"}
FINAL_TEXT = "It is sunny in Paris."

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(bool(LEGACY_SDK), reason="the node SDK does not depend on the Python SDK version"),
]


def ensure_node_modules() -> None:
    if (NODE_DIR / "node_modules" / "openai" / "package.json").exists():
        return
    npm = shutil.which("npm")
    assert npm is not None, "node is installed but npm is not"
    command = "ci" if (NODE_DIR / "package-lock.json").exists() else "install"
    result = subprocess.run(
        [npm, command, "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"npm {command} failed:\n{result.stdout}\n{result.stderr}"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_node_sdk_streaming(server: LiveServer, fake: FakeUpstream) -> None:
    ensure_node_modules()
    prefix = f"m-{uuid.uuid4().hex[:8]}"
    fake.script(f"{prefix}-text", Reply.say(TEXT))
    fake.script(f"{prefix}-tools", Reply.call("get_weather", ARGS), Reply.say(FINAL_TEXT))
    env = {**os.environ, "ASSISTD_BASE_URL": server.base_url, "ASSISTD_TEST_MODEL": prefix, "NO_COLOR": "1"}
    result = subprocess.run(
        ["node", "--test", "--test-reporter=tap", str(NODE_DIR)],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = f"{result.stdout[-8000:]}\n{result.stderr[-4000:]}"
    assert result.returncode == 0, output
    # Both JS tests ran and passed (a file that failed to load, or ran nothing, must not pass quietly).
    assert "# pass 2" in output and "# fail 0" in output, output
    # And they really talked to the server: each scripted reply was consumed.
    assert len(fake.requests(f"{prefix}-text")) == 1
    assert len(fake.requests(f"{prefix}-tools")) == 2
