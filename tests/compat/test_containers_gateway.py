"""Containers on the kernel gateway backend (ASSISTD_SANDBOX_BACKEND=gateway, a real `jupyter
kernelgateway` started here): files in, code run through ContainerService, files out, delete."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from assistd.testing.kernel_gateway import KernelGateway, build, default_venv
from assistd.testing.server import LiveServer

from .test_containers import run_in_container

BACKENDS = os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")


@pytest.fixture(scope="module")
def kernel_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelGateway]:
    with KernelGateway(build(default_venv()), tmp_path_factory.mktemp("kernel-gateway")) as gateway:
        yield gateway


@pytest.fixture(scope="module", params=BACKENDS)
def gw_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Any, kernel_gateway: KernelGateway
) -> LiveServer:
    kernels = tmp_path_factory.mktemp("gateway-kernels")
    env = {
        "ASSISTD_SANDBOX_BACKEND": "gateway",
        "ASSISTD_SANDBOX_GATEWAY_URL": kernel_gateway.url,
        "ASSISTD_SANDBOX_GATEWAY_TOKEN": kernel_gateway.token,
        "ASSISTD_SANDBOX_GATEWAY_DATA_PATH": f"{kernels}/{{session}}",
        "ASSISTD_SANDBOX_CELL_TIMEOUT_SECONDS": "10",
    }
    server: LiveServer = launch(request, tmp_path_factory, request.param, env=env)
    server.kernels = kernels  # type: ignore[attr-defined]
    return server


@pytest.fixture()
def cn(gw_server: LiveServer) -> Iterator[OpenAI]:
    c = OpenAI(base_url=gw_server.base_url, api_key="test-key", max_retries=0)
    yield c
    c.close()


def test_a_container_on_the_gateway_reads_its_files_and_returns_what_the_code_wrote(
    cn: OpenAI, gw_server: LiveServer
) -> None:
    container = cn.containers.create(name="gateway")
    cn.containers.files.create(container.id, file=("sales.csv", b"region,amount\nnorth,10\nsouth,32\n"))
    doomed = cn.containers.files.create(container.id, file=("doomed.txt", b"bye"))
    code = (
        "import csv\n"
        "rows = list(csv.DictReader(open('sales.csv')))\n"
        "open('total.txt', 'w').write(str(sum(int(r['amount']) for r in rows)))\n"
        "x = 7\nprint(len(rows))"
    )
    run = run_in_container(gw_server, container.id, code)
    assert run.execution.status == "ok" and run.execution.logs == "2\n", run.execution
    # the kernel is the container's on the gateway (recorded in the database): its state is kept
    assert run_in_container(gw_server, container.id, "print(x * 6)").execution.logs == "42\n"

    made = {f.path: f for f in cn.containers.files.list(container.id)}["/mnt/data/total.txt"]
    assert made.source == "assistant"
    assert cn.containers.files.content.retrieve(made.id, container_id=container.id).read() == b"42"

    data_dir: Path = gw_server.kernels / container.id  # type: ignore[attr-defined]
    assert (data_dir / "total.txt").read_text() == "42"
    assert (data_dir / "doomed.txt").read_text() == "bye"
    cn.containers.files.delete(doomed.id, container_id=container.id)  # through the kernel
    assert not (data_dir / "doomed.txt").exists()
    cn.containers.delete(container.id)
    assert not data_dir.exists()
