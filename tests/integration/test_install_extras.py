"""Install without extras (issue 12 item 1): `pip install .` alone, or with only `[postgres]`, serves.

The package is installed (not editable) into a fresh venv, `assistd serve` is started from that venv
with the fake upstream, and the openai SDK drives it from here: a run completes; file ingestion,
vector-store search, and runs calling file_search or code_interpreter fail with an error naming
the missing extra; the log has no traceback and no terminal colour codes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _install(venv: Path, source: Path, extras: str) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    target = f"{source}[{extras}]" if extras else str(source)
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", target],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"pip install {target} failed:\n{result.stdout}\n{result.stderr}"
    return python


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's packaging inputs, copied: pip's build then leaves nothing in the checkout."""
    copy = tmp_path_factory.mktemp("source") / "assistd"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, copy / name)
    shutil.copytree(ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return copy


class BareServer:
    def __init__(self, python: Path, data_dir: Path, env: dict[str, str], extras_spec: str = "") -> None:
        self.python = python
        self.extras_spec = extras_spec
        self.port = free_port()
        self.log_path = data_dir / "server.log"
        # Nothing from this test environment leaks in: the venv's own packages only.
        clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        clean = {k: v for k, v in clean.items() if not k.startswith("ASSISTD_")}
        self.env = {**clean, "ASSISTD_DATA_DIR": str(data_dir), **env}
        assistd = python.parent / "assistd"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(assistd), "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=data_dir,
            )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"assistd exited with {self.process.returncode}:\n{self.logs()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"assistd did not start:\n{self.logs()}") from None
                time.sleep(0.1)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def fake_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module", params=["", "postgres"], ids=["no-extras", "postgres-only"])
def bare(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    source: Path,
    fake_upstream: FakeUpstream,
) -> Iterator[BareServer]:
    extras: str = request.param
    fake_upstream.reset()  # replies a failed run never asked for must not reach the next server
    python = _install(tmp_path_factory.mktemp("venv") / "venv", source, extras)
    env = {"ASSISTD_UPSTREAM_BASE_URL": fake_upstream.base_url, "ASSISTD_POLL_AFTER_MS": "20"}
    if extras == "postgres":
        env["ASSISTD_DATABASE_URL"] = request.getfixturevalue("postgres").new_database()
    server = BareServer(python, tmp_path_factory.mktemp("bare-data"), env, f"[{extras}]")
    yield server
    server.stop()
    log = server.logs()
    assert "Traceback" not in log, log[-5000:]
    assert "\\u001b" not in log and "\x1b" not in log, "terminal colour codes in the log"


@pytest.fixture
def client(bare: BareServer) -> Iterator[OpenAI]:
    with OpenAI(base_url=f"http://127.0.0.1:{bare.port}/v1", api_key="x", max_retries=0) as sdk:
        yield sdk


def test_the_optional_packages_are_really_absent(bare: BareServer) -> None:
    probe = (
        "import importlib.util as u, assistd; "
        "print(assistd.__file__, [m for m in ('numpy', 'zmq', 'jupyter_client', 'llama_cpp', 'obstore') "
        "if u.find_spec(m)])"
    )
    found = subprocess.run([str(bare.python), "-c", probe], capture_output=True, text=True, env=bare.env, check=True)
    where, absent = found.stdout.strip().split(" ", 1)
    assert absent == "[]"
    assert "site-packages" in where  # the installed package, not this checkout


def test_a_run_completes(client: OpenAI, fake_upstream: FakeUpstream) -> None:
    assistant = client.beta.assistants.create(model="bare-plain", instructions="Be brief.")
    fake_upstream.script("bare-plain", Reply.say("Hello from a bare install."))
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "Hi"}]}, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error
    messages = client.beta.threads.messages.list(run.thread_id, order="desc")
    assert messages.data[0].content[0].text.value == "Hello from a bare install."  # type: ignore[union-attr]


def test_file_ingestion_fails_naming_the_retrieval_extra(client: OpenAI) -> None:
    uploaded = client.files.create(file=("notes.txt", b"The white whale is called Moby Dick."), purpose="assistants")
    store = client.vector_stores.create(name="bare", file_ids=[uploaded.id])
    deadline = time.monotonic() + 30
    while True:
        vs_file = client.vector_stores.files.retrieve(uploaded.id, vector_store_id=store.id)
        if vs_file.status != "in_progress" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert vs_file.status == "failed"
    assert vs_file.last_error is not None
    assert "assistd[retrieval]" in vs_file.last_error.message

    with pytest.raises(openai.BadRequestError) as caught:
        client.vector_stores.search(store.id, query="whale")
    assert "assistd[retrieval]" in caught.value.message


def test_a_run_calling_file_search_fails_naming_the_retrieval_extra(
    client: OpenAI, fake_upstream: FakeUpstream
) -> None:
    store = client.vector_stores.create(name="empty but attached")
    assistant = client.beta.assistants.create(
        model="bare-search",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    fake_upstream.script("bare-search", Reply.call("file_search", {"queries": ["whale"]}), Reply.say("unreached"))
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "Whale?"}]}, poll_interval_ms=50
    )
    assert run.status == "failed"
    assert run.last_error is not None and "assistd[retrieval]" in run.last_error.message


def test_a_run_calling_code_interpreter_fails_naming_the_sandbox_extra(
    client: OpenAI, fake_upstream: FakeUpstream
) -> None:
    assistant = client.beta.assistants.create(model="bare-code", tools=[{"type": "code_interpreter"}])
    fake_upstream.script("bare-code", Reply.call("code_interpreter", {"code": "print(6 * 7)"}), Reply.say("42"))
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "6 x 7?"}]}, poll_interval_ms=50
    )
    assert run.status == "failed"
    assert run.last_error is not None
    assert run.last_error.code == "server_error"
    assert "assistd[sandbox]" in run.last_error.message


def test_with_no_backend_a_run_is_refused_naming_the_local_extra(bare: BareServer, tmp_path: Path) -> None:
    """No upstream and no `local` extra: run creation answers 400 saying what to install (and the log says why)."""
    server = BareServer(bare.python, tmp_path, {})
    try:
        with OpenAI(base_url=f"http://127.0.0.1:{server.port}/v1", api_key="x", max_retries=0) as sdk:
            assistant = sdk.beta.assistants.create(model="gpt-4o")
            thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
            with pytest.raises(openai.BadRequestError) as caught:
                sdk.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        assert caught.value.code == "model_not_found"
        assert "assistd[local]" in caught.value.message
    finally:
        server.stop()
    log = server.logs()
    assert "no default model backend" in log and "assistd[local]" in log
    assert "Traceback" not in log


def test_a_postgresql_url_without_the_postgres_extra_is_refused_naming_it(bare: BareServer, tmp_path: Path) -> None:
    if "[postgres]" in bare.extras_spec:
        pytest.skip("the driver is installed here")
    env = {**bare.env, "ASSISTD_DATA_DIR": str(tmp_path), "ASSISTD_DATABASE_URL": "postgresql+asyncpg://u@127.0.0.1/db"}
    result = subprocess.run(
        [str(bare.python.parent / "assistd"), "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "assistd[postgres]" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_s3_blob_store_without_the_s3_extra_is_refused_naming_it(bare: BareServer, tmp_path: Path) -> None:
    env = {**bare.env, "ASSISTD_DATA_DIR": str(tmp_path), "ASSISTD_BLOB_STORE": "s3", "ASSISTD_S3_BUCKET": "files"}
    result = subprocess.run(
        [str(bare.python.parent / "assistd"), "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "assistd[s3]" in result.stderr
    assert "Traceback" not in result.stderr
