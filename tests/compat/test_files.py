"""Files through the official SDK (sync and async) against a live server."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import warnings
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from assistd.testing.server import LiveServer


def blobs(server: LiveServer) -> set[Path]:
    root = server.data_dir / "blobs"
    return {p for p in root.rglob("*") if p.is_file()}


def test_upload_with_purpose(client: OpenAI) -> None:
    started = int(time.time())
    created = client.files.create(file=("notes.txt", b"some notes\n"), purpose="assistants")
    assert created.id.startswith("file-")
    assert created.object == "file"
    assert created.bytes == 11
    assert created.filename == "notes.txt"
    assert created.purpose == "assistants"
    assert created.status == "processed"
    assert started - 1 <= created.created_at <= int(time.time()) + 1
    assert created.expires_at is None
    assert client.files.retrieve(created.id) == created


@pytest.mark.parametrize("purpose", ["assistants", "batch", "fine-tune", "vision", "user_data", "evals"])
def test_every_upload_purpose(client: OpenAI, purpose: str) -> None:
    created = client.files.create(file=("f.jsonl", b"{}\n"), purpose=purpose)  # type: ignore[arg-type]
    assert created.purpose == purpose
    assert client.files.retrieve(created.id).purpose == purpose
    client.files.delete(created.id)


def test_upload_from_a_path(client: OpenAI, tmp_path: Path) -> None:
    path = tmp_path / "from-disk.csv"
    path.write_bytes(b"a,b\n1,2\n")
    created = client.files.create(file=path, purpose="user_data")
    assert created.filename == "from-disk.csv"
    assert created.bytes == 8
    assert client.files.content(created.id).read() == b"a,b\n1,2\n"


def test_expires_after(client: OpenAI) -> None:
    created = client.files.create(
        file=("e.txt", b"x"), purpose="user_data", expires_after={"anchor": "created_at", "seconds": 3600}
    )
    assert created.expires_at == created.created_at + 3600
    assert client.files.retrieve(created.id).expires_at == created.expires_at
    longest = client.files.create(
        file=("e.txt", b"x"), purpose="user_data", expires_after={"anchor": "created_at", "seconds": 2_592_000}
    )
    assert longest.expires_at == longest.created_at + 2_592_000


def test_expires_after_out_of_range(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.files.create(
            file=("e.txt", b"x"), purpose="user_data", expires_after={"anchor": "created_at", "seconds": 60}
        )
    assert info.value.status_code == 400
    assert info.value.param == "expires_after.seconds"


def test_list_with_purpose_filter(client: OpenAI) -> None:
    a = client.files.create(file=("a.txt", b"a"), purpose="assistants")
    u = client.files.create(file=("u.txt", b"u"), purpose="user_data")
    b = client.files.create(file=("b.jsonl", b"{}"), purpose="batch")
    for purpose, mine, others in [("assistants", a, (u, b)), ("user_data", u, (a, b)), ("batch", b, (a, u))]:
        listed = list(client.files.list(purpose=purpose))
        assert listed and all(f.purpose == purpose for f in listed)
        ids = {f.id for f in listed}
        assert mine.id in ids
        assert not ids & {o.id for o in others}
    everything = {f.id for f in client.files.list()}
    assert {a.id, u.id, b.id} <= everything
    assert list(client.files.list(purpose="no-such-purpose")) == []


def test_list_pagination(client: OpenAI) -> None:
    marker = client.files.create(file=("marker.txt", b"m"), purpose="user_data")
    mine = [client.files.create(file=(f"p{i}.txt", b"p"), purpose="user_data").id for i in range(5)]

    first = client.files.list(order="asc", after=marker.id, limit=2)
    assert [f.id for f in first.data] == mine[:2]
    assert first.has_more is True
    second = client.files.list(order="asc", after=first.data[-1].id, limit=2)
    assert [f.id for f in second.data] == mine[2:4]
    last = client.files.list(order="asc", after=second.data[-1].id, limit=2)
    assert [f.id for f in last.data] == mine[4:]
    assert last.has_more is False

    # The SDK's auto-pagination follows `after` with the same limit and order.
    assert [f.id for f in client.files.list(order="asc", after=marker.id, limit=2)] == mine
    # Newest first by default, and `after` works backwards in desc order.
    newest = client.files.list(limit=3)
    assert [f.id for f in newest.data] == mine[::-1][:3]
    assert [f.id for f in client.files.list(order="desc", after=mine[2], limit=10).data][:3] == [
        mine[1],
        mine[0],
        marker.id,
    ]
    # A deleted cursor still pages (ids sort by creation time).
    client.files.delete(mine[1])
    assert [f.id for f in client.files.list(order="asc", after=mine[1], limit=10).data] == mine[2:]


def test_retrieve_and_content(client: OpenAI) -> None:
    data = "héllo wörld\n".encode()
    created = client.files.create(file=("greeting.txt", data), purpose="user_data")
    fetched = client.files.retrieve(created.id)
    assert fetched.model_dump() == created.model_dump()
    content = client.files.content(created.id)
    assert content.read() == data
    assert content.response.headers["content-type"] == "application/octet-stream"
    assert content.response.headers["content-length"] == str(len(data))


def test_empty_file(client: OpenAI) -> None:
    created = client.files.create(file=("empty.txt", b""), purpose="user_data")
    assert created.bytes == 0
    assert client.files.content(created.id).read() == b""


def test_assistants_purpose_cannot_be_downloaded(client: OpenAI) -> None:
    created = client.files.create(file=("secret.txt", b"no"), purpose="assistants")
    with pytest.raises(openai.BadRequestError) as info:
        client.files.content(created.id)
    assert info.value.status_code == 400
    assert "Not allowed to download files of purpose: assistants" in str(info.value)
    assert info.value.body == {
        "message": "Not allowed to download files of purpose: assistants",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert client.files.retrieve(created.id).purpose == "assistants"  # the metadata is still readable


def test_delete_removes_row_and_bytes(client: OpenAI, server: LiveServer) -> None:
    before = blobs(server)
    data = os.urandom(4096)
    created = client.files.create(file=("doomed.bin", data), purpose="user_data")
    new = blobs(server) - before
    assert len(new) == 1
    (blob,) = new
    assert blob.read_bytes() == data

    deleted = client.files.delete(created.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (created.id, "file", True)
    assert not blob.exists()
    with pytest.raises(openai.NotFoundError) as info:
        client.files.retrieve(created.id)
    assert info.value.body == {
        "message": f"No file found with id '{created.id}'.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.NotFoundError):
        client.files.content(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(created.id)
    assert created.id not in {f.id for f in client.files.list()}


@pytest.mark.slow
def test_50mb_binary_round_trip(client: OpenAI, server: LiveServer, tmp_path: Path) -> None:
    size = 50 * 1024 * 1024
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with open(source, "wb") as fh:
        for _ in range(50):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            fh.write(block)
    expected = digest.hexdigest()

    with open(source, "rb") as fh:
        created = client.files.create(file=fh, purpose="user_data")
    assert created.bytes == size
    assert created.filename == "big.bin"

    got = hashlib.sha256()
    total = 0
    with client.with_streaming_response.files.content(created.id) as response:
        assert response.headers["content-length"] == str(size)
        for chunk in response.iter_bytes():
            got.update(chunk)
            total += len(chunk)
    assert total == size
    assert got.hexdigest() == expected

    # write_to_file, the SDK's other download path
    target = tmp_path / "copy.bin"
    client.files.content(created.id).write_to_file(target)
    assert target.stat().st_size == size
    assert hashlib.sha256(target.read_bytes()).hexdigest() == expected
    client.files.delete(created.id)


def test_async_upload_and_download(server: LiveServer) -> None:
    async def scenario() -> None:
        from openai import AsyncOpenAI

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            aclient = AsyncOpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
        async with aclient:
            data = os.urandom(3 * 1024 * 1024 + 17)
            created = await aclient.files.create(
                file=("async.bin", data), purpose="user_data", expires_after={"anchor": "created_at", "seconds": 7200}
            )
            assert created.bytes == len(data)
            assert created.expires_at == created.created_at + 7200
            assert (await aclient.files.retrieve(created.id)).id == created.id
            content = await aclient.files.content(created.id)
            assert content.read() == data
            # Several at once over one client.
            uploads = await asyncio.gather(
                *[aclient.files.create(file=(f"c{i}.txt", f"n{i}".encode()), purpose="user_data") for i in range(5)]
            )
            bodies = await asyncio.gather(*[aclient.files.content(f.id) for f in uploads])
            assert [b.read() for b in bodies] == [f"n{i}".encode() for i in range(5)]
            listed = [f.id async for f in aclient.files.list(purpose="user_data")]
            assert {f.id for f in uploads} | {created.id} <= set(listed)
            deleted = await aclient.files.delete(created.id)
            assert deleted.deleted is True
            with pytest.raises(openai.NotFoundError):
                await aclient.files.content(created.id)

    asyncio.run(scenario())
