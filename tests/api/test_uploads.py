"""POST /v1/files with malformed bodies: always a 4xx envelope, and never a leftover blob or row.
Uploads over ASSISTD_MAX_UPLOAD_BYTES get 413 while the body is still arriving (nothing buffered)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from apihelpers import assert_error, blob_files, raw_request

from assistd.testing.server import LiveServer

BOUNDARY = "assistdtestboundary7MA4YWxkTrZu0gW"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(*parts: tuple[str, str | None, bytes], boundary: str = BOUNDARY, close: bool = True) -> bytes:
    """parts: (field name, filename or None for a plain field, value)."""
    out = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + value + b"\r\n"
    if close:
        out += f"--{boundary}--\r\n".encode()
    return out


FILE = ("file", "hello.txt", b"hello world")


def files_state(http: httpx.Client, server: LiveServer) -> tuple[Any, list[Any]]:
    listed = http.get("/v1/files").json()
    return listed, blob_files(server.data_dir)


MALFORMED: list[tuple[str, bytes, str | None, int, str | None, str | None]] = [
    # (id, body, content type (None → MULTIPART), status, param, message substring)
    (
        "missing-file",
        multipart(("purpose", None, b"user_data")),
        None,
        400,
        "file",
        "Missing required parameter: 'file'.",
    ),
    ("missing-purpose", multipart(FILE), None, 400, "purpose", "Missing required parameter: 'purpose'."),
    ("empty-form", f"--{BOUNDARY}--\r\n".encode(), None, 400, "file", None),
    (
        "bad-purpose",
        multipart(FILE, ("purpose", None, b"fine_tune")),
        None,
        400,
        "purpose",
        "Invalid value: 'fine_tune'. Supported values are:",
    ),
    ("output-purpose", multipart(FILE, ("purpose", None, b"assistants_output")), None, 400, "purpose", None),
    ("purpose-as-file", multipart(FILE, ("purpose", "p.txt", b"user_data")), None, 400, "purpose", None),
    ("file-as-field", multipart(("file", None, b"hello"), ("purpose", None, b"user_data")), None, 400, "file", None),
    (
        "unknown-field",
        multipart(FILE, ("purpose", None, b"user_data"), ("foo", None, b"1")),
        None,
        400,
        "foo",
        "Unrecognized request argument supplied: foo",
    ),
    (
        "unknown-file-field",
        multipart(FILE, ("purpose", None, b"user_data"), ("other", "x.bin", b"12")),
        None,
        400,
        "other",
        None,
    ),
    ("two-files", multipart(FILE, FILE, ("purpose", None, b"user_data")), None, 400, "file", None),
    (
        "expires-seconds-too-small",
        multipart(
            FILE,
            ("purpose", None, b"user_data"),
            ("expires_after[anchor]", None, b"created_at"),
            ("expires_after[seconds]", None, b"3599"),
        ),
        None,
        400,
        "expires_after.seconds",
        "between 3600 and 2592000, but got 3599",
    ),
    (
        "expires-seconds-too-large",
        multipart(
            FILE,
            ("purpose", None, b"user_data"),
            ("expires_after[anchor]", None, b"created_at"),
            ("expires_after[seconds]", None, b"2592001"),
        ),
        None,
        400,
        "expires_after.seconds",
        None,
    ),
    (
        "expires-seconds-not-int",
        multipart(
            FILE,
            ("purpose", None, b"user_data"),
            ("expires_after[anchor]", None, b"created_at"),
            ("expires_after[seconds]", None, b"1h"),
        ),
        None,
        400,
        "expires_after.seconds",
        None,
    ),
    (
        "expires-seconds-negative",
        multipart(
            FILE,
            ("purpose", None, b"user_data"),
            ("expires_after[anchor]", None, b"created_at"),
            ("expires_after[seconds]", None, b"-3600"),
        ),
        None,
        400,
        "expires_after.seconds",
        None,
    ),
    (
        "expires-no-seconds",
        multipart(FILE, ("purpose", None, b"user_data"), ("expires_after[anchor]", None, b"created_at")),
        None,
        400,
        "expires_after.seconds",
        None,
    ),
    (
        "expires-bad-anchor",
        multipart(
            FILE,
            ("purpose", None, b"user_data"),
            ("expires_after[anchor]", None, b"last_active_at"),
            ("expires_after[seconds]", None, b"3600"),
        ),
        None,
        400,
        "expires_after.anchor",
        None,
    ),
    (
        "expires-no-anchor",
        multipart(FILE, ("purpose", None, b"user_data"), ("expires_after[seconds]", None, b"3600")),
        None,
        400,
        "expires_after.anchor",
        None,
    ),
    (
        "expires-as-json-field",
        multipart(
            FILE, ("purpose", None, b"user_data"), ("expires_after", None, b'{"anchor":"created_at","seconds":3600}')
        ),
        None,
        400,
        "expires_after",
        None,
    ),
    ("truncated-body", multipart(FILE, ("purpose", None, b"user_data"), close=False)[:-30], None, 400, None, None),
    ("garbage-body", b"this is not multipart at all", None, 400, None, None),
    (
        "wrong-boundary",
        multipart(FILE, ("purpose", None, b"user_data"), boundary="otherboundary"),
        None,
        400,
        None,
        None,
    ),
    (
        "json-body",
        b'{"purpose": "user_data", "file": "aGVsbG8="}',
        "application/json",
        415,
        None,
        "This endpoint expects a multipart/form-data body.",
    ),
    ("urlencoded-body", b"purpose=user_data&file=hello", "application/x-www-form-urlencoded", 415, None, None),
    ("octet-stream-body", b"hello", "application/octet-stream", 415, None, None),
    ("no-content-type", b"hello", "", 415, None, None),
    ("multipart-no-boundary", multipart(FILE, ("purpose", None, b"user_data")), "multipart/form-data", 415, None, None),
    (
        "multipart-mixed",
        multipart(FILE, ("purpose", None, b"user_data")),
        f"multipart/mixed; boundary={BOUNDARY}",
        415,
        None,
        None,
    ),
]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "param", "contains"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_upload_is_4xx_and_leaves_nothing(
    http: httpx.Client,
    server: LiveServer,
    body: bytes,
    content_type: str | None,
    status: int,
    param: str | None,
    contains: str | None,
) -> None:
    before = files_state(http, server)
    headers = {"content-type": MULTIPART if content_type is None else content_type}
    r = http.post("/v1/files", content=body, headers=headers)
    assert_error(r, status, contains=contains, param=param if param is not None else Any)
    assert files_state(http, server) == before


def test_well_formed_control_upload_is_accepted(http: httpx.Client, server: LiveServer) -> None:
    """The hand-built multipart above is right when nothing is wrong with it (else the 400s prove nothing)."""
    before = blob_files(server.data_dir)
    body = multipart(
        FILE,
        ("purpose", None, b"user_data"),
        ("expires_after[anchor]", None, b"created_at"),
        ("expires_after[seconds]", None, b"3600"),
    )
    r = http.post("/v1/files", content=body, headers={"content-type": MULTIPART})
    assert r.status_code == 200, r.text
    created = r.json()
    assert created["bytes"] == 11 and created["filename"] == "hello.txt" and created["purpose"] == "user_data"
    assert created["expires_at"] == created["created_at"] + 3600
    assert len(blob_files(server.data_dir)) == len(before) + 1
    assert http.get(f"/v1/files/{created['id']}/content").content == b"hello world"
    assert http.delete(f"/v1/files/{created['id']}").status_code == 200
    assert blob_files(server.data_dir) == before


# --- the size cap --------------------------------------------------------------------------------

CAP = 1024 * 1024


@pytest.fixture(scope="module")
def capped(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    backend: str,
    start_server: Callable[..., LiveServer],
) -> LiveServer:
    return start_server(request, tmp_path_factory, backend, env={"ASSISTD_MAX_UPLOAD_BYTES": str(CAP)})


@pytest.fixture()
def capped_http(capped: LiveServer) -> Any:
    with httpx.Client(base_url=capped.url, headers={"Authorization": "Bearer k"}, timeout=30) as client:
        yield client


def _head(port: int, extra: str) -> bytes:
    return (
        f"POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer k\r\n"
        f"Content-Type: {MULTIPART}\r\n{extra}\r\n"
    ).encode()


def _over_cap_body() -> tuple[bytes, bytes]:
    """(everything before the file bytes, the closing part); the file itself is 2 MB of random bytes."""
    prefix = multipart(("purpose", None, b"user_data"), close=False)
    prefix += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    suffix = f"\r\n--{BOUNDARY}--\r\n".encode()
    return prefix, suffix


def test_declared_length_over_cap_is_413_before_the_body(capped: LiveServer, capped_http: httpx.Client) -> None:
    before = files_state(capped_http, capped)
    prefix, suffix = _over_cap_body()
    length = len(prefix) + 2 * CAP + len(suffix)
    # Send the headers only: the answer must come without a single body byte having been sent.
    status, headers, body, sent = raw_request(capped.port, _head(capped.port, f"Content-Length: {length}\r\n"))
    assert status == 413, body
    assert sent == 0
    assert "x-request-id" in headers
    error = httpx.Response(413, content=body, headers={"content-type": headers["content-type"]})
    assert_error(error, 413, code="payload_too_large", contains=str(CAP))
    assert files_state(capped_http, capped) == before


def test_chunked_body_over_cap_is_413_while_streaming(capped: LiveServer, capped_http: httpx.Client) -> None:
    before = files_state(capped_http, capped)
    prefix, _suffix = _over_cap_body()
    piece = os.urandom(64 * 1024)
    chunks = [b"%x\r\n%s\r\n" % (len(prefix), prefix)]
    chunks += [b"%x\r\n%s\r\n" % (len(piece), piece)] * (2 * CAP // len(piece))
    # The body is never finished (no closing part, no last chunk): a server that buffered the whole
    # body before checking could not answer at all; one that streams answers 413 mid-body.
    status, headers, body, sent = raw_request(capped.port, _head(capped.port, "Transfer-Encoding: chunked\r\n"), chunks)
    assert status == 413, body
    error = httpx.Response(413, content=body, headers={"content-type": headers["content-type"]})
    assert_error(error, 413, code="payload_too_large")
    assert sent > CAP  # it did read the file bytes up to the cap before refusing
    assert files_state(capped_http, capped) == before


def test_declared_length_within_slack_but_file_over_cap(capped: LiveServer, capped_http: httpx.Client) -> None:
    """A Content-Length that passes the header check, but a file part just over the cap."""
    before = files_state(capped_http, capped)
    body = multipart(("file", "big.bin", os.urandom(CAP + 1)), ("purpose", None, b"user_data"))
    r = capped_http.post("/v1/files", content=body, headers={"content-type": MULTIPART})
    assert_error(r, 413, code="payload_too_large")
    assert files_state(capped_http, capped) == before


def test_exactly_the_cap_is_accepted(capped: LiveServer, capped_http: httpx.Client) -> None:
    data = os.urandom(CAP)
    r = capped_http.post("/v1/files", files={"file": ("cap.bin", data)}, data={"purpose": "user_data"})
    assert r.status_code == 200, r.text
    assert r.json()["bytes"] == CAP
    assert capped_http.get(f"/v1/files/{r.json()['id']}/content").content == data
    assert capped_http.delete(f"/v1/files/{r.json()['id']}").status_code == 200


def test_server_still_healthy_after_refusals(capped: LiveServer, capped_http: httpx.Client) -> None:
    test_declared_length_over_cap_is_413_before_the_body(capped, capped_http)
    r = capped_http.post("/v1/files", files={"file": ("s.txt", b"small")}, data={"purpose": "user_data"})
    assert r.status_code == 200
    capped_http.delete(f"/v1/files/{r.json()['id']}")
