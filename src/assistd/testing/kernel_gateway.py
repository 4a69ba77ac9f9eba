"""A real Jupyter Kernel Gateway for the gateway sandbox backend's tests.

It runs from a virtual environment of its own (built once per machine, ~1 min), never from the
server's interpreter: jupyter_kernel_gateway brings jupyter_server, tornado and jupyter_client
versions that the local sandbox's host side pins differently.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from assistd.testing.server import free_port


def default_venv() -> Path:
    """Where tests keep the gateway's environment: built once per machine, reused by later runs."""
    cache = Path.home() / ".cache" / "assistd-tests" / "kernel-gateway"
    return Path(os.environ.get("ASSISTD_TEST_KERNEL_GATEWAY", cache))


REQUIREMENTS = ("jupyter_kernel_gateway==3.0.1", "ipykernel==7.4.0", "matplotlib==3.11.2")
MARKER = "assistd-kernel-gateway.json"


def build(venv: Path, python: str = sys.executable) -> Path:
    """The environment's `jupyter` command, building the environment first if needed (idempotent)."""
    marker = venv / MARKER
    jupyter = venv / "bin" / "jupyter"
    if marker.is_file() and json.loads(marker.read_text()).get("requirements") == list(REQUIREMENTS):
        return jupyter
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, *REQUIREMENTS], check=True)
    marker.write_text(json.dumps({"requirements": list(REQUIREMENTS)}))
    return jupyter


class KernelGateway:
    """`jupyter kernelgateway` on a free loopback port with a random token, in `work_dir`."""

    def __init__(self, jupyter: Path, work_dir: Path, *, startup_timeout: float = 60.0) -> None:
        self.jupyter = jupyter
        self.work_dir = work_dir
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.startup_timeout = startup_timeout
        self.log_path = work_dir / f"kernel-gateway-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> KernelGateway:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTD_", "PYTHON"))}
        env["JUPYTER_RUNTIME_DIR"] = str(self.work_dir / "runtime")
        env["JUPYTER_DATA_DIR"] = str(self.work_dir / "data")
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(
            [
                str(self.jupyter),
                "kernelgateway",
                "--KernelGatewayApp.ip=127.0.0.1",
                f"--KernelGatewayApp.port={self.port}",
                f"--KernelGatewayApp.auth_token={self.token}",
            ],
            cwd=self.work_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the kernel gateway exited: {self.log_path.read_text()[-2000:]}")
            try:
                request = urllib.request.Request(f"{self.url}/api", headers={"Authorization": f"token {self.token}"})
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the kernel gateway did not start: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def __enter__(self) -> KernelGateway:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
