"""Raw-HTTP helpers for tests/api: the error-envelope check, blob listing, polling, raw sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

BETA = {"OpenAI-Beta": "assistants=v2"}


def assert_error(
    response: httpx.Response,
    status: int,
    message: str | None = None,
    *,
    param: str | None | type[Any] = Any,
    code: str | None | type[Any] = Any,
    type_: str = "invalid_request_error",
    contains: str | None = None,
) -> dict[str, Any]:
    """The exact OpenAI envelope: {"error": {message, type, param, code}} and nothing else."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] == type_, error
    assert error["param"] is None or isinstance(error["param"], str)
    assert error["code"] is None or isinstance(error["code"], str)
    if message is not None:
        assert error["message"] == message, error
    if contains is not None:
        assert contains in error["message"], error
    if param is not Any:
        assert error["param"] == param, error
    if code is not Any:
        assert error["code"] == code, error
    return error  # type: ignore[no-any-return]


def blob_files(data_dir: Path) -> list[Path]:
    """Every file in the blob store, including half-written ones in tmp/."""
    root = data_dir / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def poll(fn: Callable[[], T | None], timeout: float = 15.0, interval: float = 0.05) -> T:
    """Call fn until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        time.sleep(interval)


def raw_request(
    port: int,
    head: bytes,
    body_chunks: Sequence[bytes] = (),
    *,
    timeout: float = 15.0,
) -> tuple[int, dict[str, str], bytes, int]:
    """Send `head` then the chunks, stopping as soon as the server answers. Returns
    (status, headers, body, bytes of body chunks actually sent before the answer came)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(head)
        sent = 0
        received = b""
        for chunk in body_chunks:
            sock.setblocking(False)
            try:
                data = sock.recv(65536)
                if data:
                    received += data
                    break
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        sock.settimeout(timeout)
        while b"\r\n\r\n" not in received:
            data = sock.recv(65536)
            if not data:
                break
            received += data
        head_part, _, rest = received.partition(b"\r\n\r\n")
        lines = head_part.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            data = sock.recv(65536)
            if not data:
                break
            rest += data
        return status, headers, rest, sent
    finally:
        sock.close()
