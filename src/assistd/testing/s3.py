"""A real S3-compatible server for tests and benchmarks: moto's server mode, in a process of its own.

moto (and its Flask stack) lives in a virtual environment of its own, built once per machine under
~/.cache/assistd-tests (pip, ~30 s), so its dependencies never change the interpreter under test.
Bucket admin and inspection (create a bucket, list objects and unfinished multipart uploads) are
plain HTTP requests: moto's server does not check signatures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from types import TracebackType

from assistd.testing.server import free_port

REQUIREMENTS = ("moto[server]==5.2.1",)
MARKER = "assistd-moto.json"
DEFAULT_VENV = Path(os.environ.get("ASSISTD_TEST_MOTO_VENV", Path.home() / ".cache" / "assistd-tests" / "moto-server"))
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
# moto does not check credentials, but a client must sign with some.
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"
# moto serves every AWS service on one port and routes by the credential scope: name S3's (unsigned).
S3_ROUTE = {
    "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{REGION}/s3/aws4_request, "
    "SignedHeaders=host, Signature=0"
}


def build_venv(venv: Path = DEFAULT_VENV) -> Path:
    """The venv's python, with moto[server] installed (built the first time only)."""
    python = venv / "bin" / "python"
    marker = venv / MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("requirements") == list(REQUIREMENTS):
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-input", *REQUIREMENTS],
        check=True,
    )
    marker.write_text(json.dumps({"requirements": list(REQUIREMENTS)}))
    return python


class MotoS3:
    """`with MotoS3() as s3: s3.create_bucket("b"); env = s3.assistd_env("b")`."""

    def __init__(self, venv: Path = DEFAULT_VENV, log_dir: Path | None = None, startup_timeout: float = 60.0) -> None:
        self.venv = venv
        self.port = free_port()
        self.startup_timeout = startup_timeout
        self.log_path = (log_dir or Path(os.environ.get("TMPDIR", "/tmp"))) / f"moto-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoS3:
        python = build_venv(self.venv)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(python), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto exited with {self.process.returncode}:\n{self.logs()}")
            try:
                self._request("GET", "/moto-api/data.json")
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto did not start in {self.startup_timeout}s:\n{self.logs()}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20_000:]
        except OSError:
            return ""

    def _request(self, method: str, path: str) -> bytes:
        data = b"" if method == "PUT" else None
        request = urllib.request.Request(self.endpoint + path, data=data, method=method, headers=S3_ROUTE)
        with urllib.request.urlopen(request, timeout=30) as response:
            body: bytes = response.read()
            return body

    def create_bucket(self, bucket: str) -> None:
        self._request("PUT", f"/{bucket}")

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in the bucket under `prefix` (ListObjectsV2, all pages)."""
        keys: list[str] = []
        token = ""
        while True:
            query = f"?list-type=2&prefix={urllib.parse.quote(prefix)}"
            if token:
                query += f"&continuation-token={urllib.parse.quote(token)}"
            root = ET.fromstring(self._request("GET", f"/{bucket}{query}"))
            keys += [el.text or "" for el in root.iter(f"{NS}Key")]
            token = root.findtext(f"{NS}NextContinuationToken") or ""
            if root.findtext(f"{NS}IsTruncated") != "true" or not token:
                return keys

    def object_size(self, bucket: str, key: str) -> int | None:
        request = urllib.request.Request(f"{self.endpoint}/{bucket}/{key}", method="HEAD", headers=S3_ROUTE)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.headers["content-length"])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def multipart_uploads(self, bucket: str) -> list[str]:
        """Keys of the multipart uploads started and neither completed nor aborted (ListMultipartUploads)."""
        root = ET.fromstring(self._request("GET", f"/{bucket}?uploads"))
        return [upload.findtext(f"{NS}Key") or "" for upload in root.iter(f"{NS}Upload")]

    def assistd_env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """The settings that point an assistd server at this bucket."""
        return {
            "ASSISTD_BLOB_STORE": "s3",
            "ASSISTD_S3_BUCKET": bucket,
            "ASSISTD_S3_PREFIX": prefix,
            "ASSISTD_S3_ENDPOINT_URL": self.endpoint,
            "ASSISTD_S3_REGION": REGION,
            "ASSISTD_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "ASSISTD_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def __enter__(self) -> MotoS3:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
