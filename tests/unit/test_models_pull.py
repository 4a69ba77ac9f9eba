"""`assistd models pull|list` and `serve --model` against a local stand-in for the hub (HF_ENDPOINT), offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistd.providers.hub import HubError, ModelRef, choose_file, parse_ref, resolve_model
from assistd.testing.fake_hub import FakeHub, running

REPO = "someone/tiny-model-GGUF"


def cli(*args: str, data_dir: Path, endpoint: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ASSISTD_DATA_DIR": str(data_dir),
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(data_dir / "hf-home"),  # no token or cache from the machine
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    env.pop("HF_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "assistd", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture()
def hub(tmp_path: Path):  # type: ignore[no-untyped-def]
    files = tmp_path / "hub-files"
    files.mkdir()
    repo: dict[str, Path] = {}
    for name, size in (
        ("tiny-model-Q8_0.gguf", 3000),
        ("tiny-model-Q4_K_M.gguf", 200_000),
        ("tiny-model-Q2_K.gguf", 1000),
        ("README.md", 10),
    ):
        path = files / name
        path.write_bytes(os.urandom(size))
        repo[name] = path
    with running(FakeHub(repos={REPO: repo})) as served:
        yield served


def test_pull_with_only_the_repo_downloads_the_q4_k_m_file(hub: FakeHub, tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = cli("models", "pull", REPO, data_dir=data, endpoint=hub.url)
    assert done.returncode == 0, done.stderr
    expected = data / "models" / REPO / "tiny-model-Q4_K_M.gguf"
    assert expected.read_bytes() == hub.repos[REPO]["tiny-model-Q4_K_M.gguf"].read_bytes()
    assert f"pulled {expected}" in done.stdout
    assert "tiny-model-Q4_K_M.gguf" in done.stderr and "100%" in done.stderr  # the progress bar
    assert f"assistd serve --model {expected}" in done.stdout
    assert f"GET /api/models/{REPO}/revision/main" in hub.requests  # the file list came from the hub API
    listed = cli("models", "list", data_dir=data, endpoint=hub.url)
    assert listed.returncode == 0 and str(expected) in listed.stdout and "0.2 MB" in listed.stdout
    assert listed.stdout.count(".gguf") == 1


def test_pull_a_named_file_and_again_without_downloading_twice(hub: FakeHub, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for _ in range(2):
        done = cli("models", "pull", f"{REPO}:tiny-model-Q2_K.gguf", data_dir=data, endpoint=hub.url)
        assert done.returncode == 0, done.stderr
    path = data / "models" / REPO / "tiny-model-Q2_K.gguf"
    assert path.read_bytes() == hub.repos[REPO]["tiny-model-Q2_K.gguf"].read_bytes()
    assert hub.requests.count(f"GET /{REPO}/resolve/main/tiny-model-Q2_K.gguf") == 1


def test_pull_errors_are_one_line_messages(hub: FakeHub, tmp_path: Path) -> None:
    data = tmp_path / "data"
    missing_repo = cli("models", "pull", "nobody/nothing", data_dir=data, endpoint=hub.url)
    assert missing_repo.returncode == 1 and "no such repo on the hub" in missing_repo.stderr
    missing_file = cli("models", "pull", f"{REPO}:nope.gguf", data_dir=data, endpoint=hub.url)
    assert missing_file.returncode == 1 and "no file 'nope.gguf'" in missing_file.stderr
    bad = cli("models", "pull", "not-a-repo", data_dir=data, endpoint=hub.url)
    assert bad.returncode == 1 and "not a hub repo" in bad.stderr
    empty = cli("models", "list", data_dir=data, endpoint=hub.url)
    assert empty.returncode == 0 and "no models in" in empty.stdout


def test_serve_with_a_missing_model_file_says_so(tmp_path: Path) -> None:
    done = cli("serve", "--model", str(tmp_path / "nope.gguf"), data_dir=tmp_path, endpoint="http://127.0.0.1:9")
    assert done.returncode == 2 and "--model: no such model file" in done.stderr


def test_choose_file() -> None:
    assert choose_file(["a-Q8_0.gguf", "a-Q4_K_M.gguf", "a.Q4_0.gguf"]) == "a-Q4_K_M.gguf"
    assert choose_file(["x.q4_k_m.gguf", "x.f16.gguf"]) == "x.q4_k_m.gguf"
    assert choose_file(["m-f16.gguf", "m-Q8_0.gguf"]) == "m-Q8_0.gguf"
    assert choose_file(["only-f16.gguf", "README.md"]) == "only-f16.gguf"
    with pytest.raises(HubError, match="only split files"):
        choose_file(["big-Q4_K_M-00001-of-00002.gguf", "big-Q4_K_M-00002-of-00002.gguf"])
    with pytest.raises(HubError, match="no .gguf"):
        choose_file(["model.safetensors"])


def test_parse_ref_and_resolve(tmp_path: Path) -> None:
    assert parse_ref("a/b") == ModelRef("a/b")
    assert parse_ref("a/b:c.gguf") == ModelRef("a/b", "c.gguf")
    assert parse_ref("a/b@v1:c.gguf") == ModelRef("a/b", "c.gguf", "v1")
    pulled = tmp_path / "models" / "a" / "b" / "c.gguf"
    pulled.parent.mkdir(parents=True)
    pulled.write_bytes(b"GGUF")
    assert resolve_model("c.gguf", tmp_path) == pulled
    assert resolve_model(str(pulled), tmp_path) == pulled.resolve()
    with pytest.raises(HubError):
        resolve_model("d.gguf", tmp_path)
