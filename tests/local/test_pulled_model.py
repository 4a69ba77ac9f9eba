"""A model pulled from the hub runs with `serve --model`: the bundled SmolLM2 GGUF, served by a stand-in hub."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from openai import OpenAI

from assistd.providers.local import bundled_model_path
from assistd.testing.fake_hub import FakeHub, running
from assistd.testing.server import LiveServer

REPO = "local-test/SmolLM2-135M-Instruct-GGUF"


def test_pull_then_serve_model_answers_a_chat(tmp_path: Path) -> None:
    bundled = bundled_model_path()
    assert bundled is not None
    data = tmp_path / "data"
    env = {"ASSISTD_DATA_DIR": str(data), "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    with running(FakeHub(repos={REPO: {"smollm2-135m-instruct-q4_1.gguf": bundled}})) as hub:
        done = subprocess.run(
            [sys.executable, "-m", "assistd", "models", "pull", REPO],
            env={**os.environ, **env, "HF_ENDPOINT": hub.url},
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stderr
    pulled = data / "models" / REPO / "smollm2-135m-instruct-q4_1.gguf"
    assert f"pulled {pulled}" in done.stdout
    assert hashlib.sha256(pulled.read_bytes()).digest() == hashlib.sha256(bundled.read_bytes()).digest()

    server_env = {**env, "ASSISTD_UPSTREAM_BASE_URL": "", "ASSISTD_LOCAL_CONTEXT_WINDOW": "2048"}
    with LiveServer(data, env=server_env, args=["--model", pulled.name]) as server:
        llm = OpenAI(base_url=server.base_url, api_key="no-key", max_retries=0, timeout=300)
        assistant = llm.beta.assistants.create(model="gpt-4o")
        thread = llm.beta.threads.create(messages=[{"role": "user", "content": "What is the capital of France?"}])
        run = llm.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, timeout=300)
        assert run.status == "completed", run.last_error
        (message,) = [m for m in llm.beta.threads.messages.list(thread.id) if m.role == "assistant"]
        assert message.content[0].text.value.strip()
        # The pulled copy is what was loaded, not the bundled file.
        assert f'"msg":"local model loaded","path":"{pulled}"' in server.log_path.read_text()
