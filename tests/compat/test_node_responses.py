"""The official `openai` npm SDK's `responses.stream()` helper against a live server
(tests/node/responses_stream.mjs): streamed text, a function call round trip, and a background
response's stream resumed by id. The SDK is the one pinned for tests/compat/test_node_sdk.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import LiveServer

from .conftest import LEGACY_SDK
from .test_node_sdk import NODE_DIR, ensure_node_modules

# The replies responses_stream.mjs expects; keep in step with the constants at its top.
TEXT = "Hello from the node SDK, streamed as a response."
ARGS = {"city": "Paris"}
FINAL_TEXT = "It is sunny in Paris."

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(bool(LEGACY_SDK), reason="the node SDK does not depend on the Python SDK version"),
]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_node_sdk_responses_stream(server: LiveServer, fake: FakeUpstream) -> None:
    ensure_node_modules()
    prefix = f"m-{uuid.uuid4().hex[:8]}"
    fake.script(f"{prefix}-text", Reply.say(TEXT))
    fake.script(f"{prefix}-tools", Reply.call("get_weather", ARGS), Reply.say(FINAL_TEXT))
    fake.script(f"{prefix}-background", Reply.say(TEXT, delay=0.2, interval=0.02))
    env = {**os.environ, "ASSISTD_BASE_URL": server.base_url, "ASSISTD_TEST_MODEL": prefix, "NO_COLOR": "1"}
    result = subprocess.run(
        ["node", "--test", "--test-reporter=tap", "responses_stream.mjs"],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = f"{result.stdout[-8000:]}\n{result.stderr[-4000:]}"
    assert result.returncode == 0, output
    assert "# pass 3" in output and "# fail 0" in output, output
    assert len(fake.requests(f"{prefix}-text")) == 1
    assert len(fake.requests(f"{prefix}-tools")) == 2
    assert len(fake.requests(f"{prefix}-background")) == 1
