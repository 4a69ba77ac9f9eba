"""A server with ASSISTD_BLOB_STORE=s3 (each database backend) against moto, driven with the openai SDK.

Uploads land in the bucket (multipart for a file over one part), download streams the same bytes,
ingestion reads them for file_search, deleting the file deletes the object, a refused upload leaves
nothing behind, and a bucket that cannot be written stops the server at start with the reason.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from assistd.retrieval.embedding import MiniLMEmbedder
from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.s3 import MotoS3
from assistd.testing.server import LiveServer

BACKENDS = os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")
MIB = 1024 * 1024
PREFIX = "assistd/files/"
MAX_UPLOAD = 24 * MIB
BOOK = (
    "Call me Ishmael. The great white whale, Moby Dick, was hunted by Captain Ahab of the Pequod, "
    "a whaler out of Nantucket. "
) * 30


class S3Server:
    def __init__(self, server: LiveServer, bucket: str) -> None:
        self.server = server
        self.bucket = bucket


@pytest.fixture(scope="module", params=BACKENDS)
def s3_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    launch: Callable[..., LiveServer],
    moto_s3: MotoS3,
) -> S3Server:
    bucket = f"assistd-{request.param}-{uuid.uuid4().hex[:8]}"
    moto_s3.create_bucket(bucket)
    env = {
        **moto_s3.assistd_env(bucket, PREFIX),
        "ASSISTD_S3_PART_SIZE_MB": "5",
        "ASSISTD_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
    }
    return S3Server(launch(request, tmp_path_factory, request.param, env=env), bucket)


@pytest.fixture()
def sdk(s3_server: S3Server) -> Iterator[OpenAI]:
    with OpenAI(base_url=s3_server.server.base_url, api_key="x", max_retries=0) as client:
        yield client


def objects(moto_s3: MotoS3, s3_server: S3Server) -> list[str]:
    return [key for key in moto_s3.keys(s3_server.bucket) if key.startswith(PREFIX)]


def test_upload_lands_in_the_bucket_and_downloads_the_same_bytes(
    sdk: OpenAI, s3_server: S3Server, moto_s3: MotoS3
) -> None:
    payload = os.urandom(3 * MIB) * 4 + b"tail"  # 12 MiB: a multipart upload of three parts
    before = set(objects(moto_s3, s3_server))
    uploaded = sdk.files.create(file=("data.bin", payload), purpose="user_data")
    assert uploaded.bytes == len(payload)
    (new,) = set(objects(moto_s3, s3_server)) - before
    assert moto_s3.object_size(s3_server.bucket, new) == len(payload)
    assert not [p for p in s3_server.server.data_dir.rglob("*") if p.is_file() and p.stat().st_size >= MIB]
    content = sdk.files.content(uploaded.id)
    assert hashlib.sha256(content.content).digest() == hashlib.sha256(payload).digest()

    assert sdk.files.delete(uploaded.id).deleted
    assert new not in objects(moto_s3, s3_server)
    assert moto_s3.multipart_uploads(s3_server.bucket) == []


def test_an_upload_refused_midway_leaves_nothing_in_the_bucket(s3_server: S3Server, moto_s3: MotoS3) -> None:
    """No content-length: the server finds the file too large only after parts went out, then aborts."""
    before = objects(moto_s3, s3_server)
    started: list[str] = []
    boundary = "assistd-s3-test"

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\ncontent-disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n'
            f'--{boundary}\r\ncontent-disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
        ).encode()
        for _ in range(MAX_UPLOAD // MIB - 4):
            yield b"\0" * MIB
        deadline = time.monotonic() + 30
        while not started and time.monotonic() < deadline:
            started.extend(moto_s3.multipart_uploads(s3_server.bucket))
            time.sleep(0.05)
        for _ in range(8):
            yield b"\0" * MIB
        yield f"\r\n--{boundary}--\r\n".encode()

    response = httpx.post(
        f"{s3_server.server.base_url}/files",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}", "authorization": "Bearer x"},
        timeout=60,
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert started, "the upload never became a multipart upload"
    assert objects(moto_s3, s3_server) == before
    assert moto_s3.multipart_uploads(s3_server.bucket) == []


@pytest.mark.skipif(not MiniLMEmbedder.available(), reason="the bundled embedding model is not installed")
def test_file_search_reads_the_file_from_the_bucket(
    sdk: OpenAI, s3_server: S3Server, moto_s3: MotoS3, fake: FakeUpstream
) -> None:
    book = sdk.files.create(file=("moby.txt", BOOK.encode()), purpose="assistants")
    store = sdk.vector_stores.create(name="s3 library", file_ids=[book.id])
    done = sdk.vector_stores.files.poll(book.id, vector_store_id=store.id, poll_interval_ms=50)
    assert done.status == "completed", done.last_error
    hits = sdk.vector_stores.search(store.id, query="Who hunted the white whale?")
    assert hits.data and hits.data[0].file_id == book.id

    model = f"s3-fs-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply.call("file_search", {"queries": ["Who hunted Moby Dick?"]}), Reply.say("Ahab."))
    assistant = sdk.beta.assistants.create(
        model=model, tools=[{"type": "file_search"}], tool_resources={"file_search": {"vector_store_ids": [store.id]}}
    )
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Who hunted Moby Dick?"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "completed", run.last_error
    tool_output = next(m for m in fake.requests(model)[1]["messages"] if m["role"] == "tool")["content"]
    assert "Captain Ahab" in tool_output

    keys_with_book = [k for k in objects(moto_s3, s3_server) if moto_s3.object_size(s3_server.bucket, k) == len(BOOK)]
    assert keys_with_book
    sdk.files.delete(book.id)
    assert not [k for k in objects(moto_s3, s3_server) if k in keys_with_book]


@pytest.mark.skipif(
    shutil.which("bwrap") is None or os.geteuid() != 0,
    reason="the sandbox needs bubblewrap and a server running as root",
)
def test_code_interpreter_reads_its_input_from_the_bucket_and_writes_its_output_there(
    sdk: OpenAI, s3_server: S3Server, moto_s3: MotoS3, fake: FakeUpstream, sandbox_python: Path
) -> None:
    data = sdk.files.create(file=("numbers.txt", b"3\n4\n5\n"), purpose="assistants")
    thread = sdk.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "Square them.",
                "attachments": [{"file_id": data.id, "tools": [{"type": "code_interpreter"}]}],
            }
        ]
    )
    code = (
        "nums = [int(x) for x in open('/mnt/data/numbers.txt').read().split()]\n"
        "open('/mnt/data/squares.txt', 'w').write(' '.join(str(n * n) for n in nums))\n"
        "print(sum(nums))"
    )
    model = f"s3-ci-{uuid.uuid4().hex[:8]}"
    link = "sandbox:/mnt/data/squares.txt"
    fake.script(model, Reply.call("code_interpreter", {"code": code}), Reply.say(f"[squares]({link})"))
    assistant = sdk.beta.assistants.create(model=model, tools=[{"type": "code_interpreter"}])
    before = set(objects(moto_s3, s3_server))
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "completed", run.last_error
    (message,) = [m for m in sdk.beta.threads.messages.list(thread.id) if m.role == "assistant"]
    (note,) = message.content[0].text.annotations  # type: ignore[union-attr]
    made = note.file_path.file_id  # type: ignore[union-attr]
    assert sdk.files.content(made).read() == b"9 16 25"
    (output,) = set(objects(moto_s3, s3_server)) - before  # the output file is an object in the bucket
    assert moto_s3.object_size(s3_server.bucket, output) == len(b"9 16 25")


def test_a_bucket_that_cannot_be_written_stops_the_server_at_start(
    tmp_path: Path, moto_s3: MotoS3, fake: FakeUpstream
) -> None:
    env: dict[str, Any] = {**moto_s3.assistd_env("assistd-missing-bucket"), "ASSISTD_UPSTREAM_BASE_URL": fake.base_url}
    with pytest.raises(RuntimeError) as caught:
        LiveServer(tmp_path, env=env, startup_timeout=30).start()
    assert "assistd-missing-bucket" in str(caught.value) and "cannot be written" in str(caught.value)


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.slow
def test_a_large_upload_to_s3_keeps_the_server_memory_bounded(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    launch: Callable[..., LiveServer],
    moto_s3: MotoS3,
) -> None:
    """200 MB through the API: the server's peak RSS grows by about part size x (concurrency + 1), not the file."""
    bucket = f"assistd-big-{uuid.uuid4().hex[:8]}"
    moto_s3.create_bucket(bucket)
    size = 200 * MIB
    env = {**moto_s3.assistd_env(bucket, PREFIX), "ASSISTD_MAX_UPLOAD_BYTES": str(size + MIB)}
    server = launch(request, tmp_path_factory, "sqlite", env=env)
    assert server.process is not None
    with OpenAI(base_url=server.base_url, api_key="x", max_retries=0) as client:  # warm up the upload path
        client.files.delete(client.files.create(file=("warm.bin", os.urandom(9 * MIB)), purpose="user_data").id)
    before = vm_hwm_mib(server.process.pid)
    boundary = "assistd-big"
    block = os.urandom(MIB)

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\ncontent-disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n'
            f'--{boundary}\r\ncontent-disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
        ).encode()
        for _ in range(size // MIB):
            yield block
        yield f"\r\n--{boundary}--\r\n".encode()

    response = httpx.post(
        f"{server.base_url}/files",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        timeout=300,
    )
    assert response.status_code == 200, response.text
    assert response.json()["bytes"] == size
    growth = vm_hwm_mib(server.process.pid) - before
    assert growth < 100, f"the server's peak RSS grew {growth:.0f} MiB for a {size // MIB} MiB upload"
    (key,) = [k for k in moto_s3.keys(bucket) if k.startswith(PREFIX)]
    assert moto_s3.object_size(bucket, key) == size
