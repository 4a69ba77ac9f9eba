"""The S3 blob store against a real S3-compatible server (moto, started by the tests).

Multipart uploads from many small writes, streamed reads, size, delete, abort leaving neither an
object nor an unfinished upload, concurrent writers, and the startup check naming what is wrong.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid

import pytest

from assistd.settings import Settings
from assistd.storage.blobs import BlobWriter
from assistd.storage.factory import BlobStoreConfigError, open_blob_store, s3_problem
from assistd.storage.s3 import MIB, S3BlobStore, S3Settings
from assistd.testing.s3 import ACCESS_KEY, REGION, SECRET_KEY, MotoS3

PART = 5 * MIB  # S3's smallest part


def new_bucket(moto_s3: MotoS3) -> str:
    bucket = f"blobs-{uuid.uuid4().hex[:12]}"
    moto_s3.create_bucket(bucket)
    return bucket


def store_for(moto_s3: MotoS3, bucket: str, prefix: str = "files/") -> S3BlobStore:
    return S3BlobStore(
        S3Settings(
            bucket=bucket,
            prefix=prefix,
            endpoint_url=moto_s3.endpoint,
            region=REGION,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
            part_size=PART,
            upload_concurrency=2,
        )
    )


async def read_all(store: S3BlobStore, key: str) -> tuple[bytes, list[int]]:
    sizes: list[int] = []
    data = bytearray()
    async for chunk in store.read(key):
        assert isinstance(chunk, bytes)
        sizes.append(len(chunk))
        data += chunk
    return bytes(data), sizes


def test_many_small_writes_become_a_multipart_upload_read_back_streamed(moto_s3: MotoS3) -> None:
    bucket = new_bucket(moto_s3)
    store = store_for(moto_s3, bucket)
    piece = 64 * 1024
    blocks = [os.urandom(piece) for _ in range(8)]
    total_pieces = (4 * PART) // piece + 3  # four parts and a bit: 323 writes

    async def scenario() -> None:
        writer = store.writer()
        digest = hashlib.sha256()
        for i in range(total_pieces):
            block = blocks[i % len(blocks)]
            await writer.write(block)
            digest.update(block)
            if i == (2 * PART) // piece:
                # Past the first part: the bytes are going out as a multipart upload, not kept.
                assert len(moto_s3.multipart_uploads(bucket)) == 1
                assert moto_s3.keys(bucket) == []  # and nothing is visible before commit
        key = await writer.commit()
        assert moto_s3.multipart_uploads(bucket) == []
        assert moto_s3.keys(bucket) == [f"files/{key}"]
        assert await store.size(key) == total_pieces * piece
        data, sizes = await read_all(store, key)
        assert hashlib.sha256(data).digest() == digest.digest()
        assert len(sizes) > 1 and max(sizes) <= 2 * MIB  # streamed in chunks, not one 20 MB buffer

    asyncio.run(scenario())


def test_a_small_file_is_one_put_and_an_empty_one_is_stored_too(moto_s3: MotoS3) -> None:
    bucket = new_bucket(moto_s3)
    store = store_for(moto_s3, bucket, prefix="")

    async def scenario() -> None:
        writer = store.writer()
        await writer.write(b"hello ")
        await writer.write(b"world")
        key = await writer.commit()
        assert await store.size(key) == 11
        assert (await read_all(store, key))[0] == b"hello world"
        empty = await store.writer().commit()
        assert await store.size(empty) == 0
        assert (await read_all(store, empty))[0] == b""
        assert sorted(moto_s3.keys(bucket)) == sorted([key, empty])

    asyncio.run(scenario())


def test_abort_leaves_no_object_and_no_unfinished_upload(moto_s3: MotoS3) -> None:
    bucket = new_bucket(moto_s3)
    store = store_for(moto_s3, bucket)

    async def scenario() -> None:
        big = store.writer()
        for _ in range(3 * PART // MIB):
            await big.write(os.urandom(MIB))
        assert len(moto_s3.multipart_uploads(bucket)) == 1
        await big.abort()
        small = store.writer()
        await small.write(b"never committed")
        await small.abort()
        untouched = store.writer()
        await untouched.abort()
        await untouched.abort()  # twice is harmless (read_form's cleanup may repeat it)

    asyncio.run(scenario())
    assert moto_s3.multipart_uploads(bucket) == []
    assert moto_s3.keys(bucket) == []


def test_delete_removes_the_object_and_missing_keys_are_not_found(moto_s3: MotoS3) -> None:
    bucket = new_bucket(moto_s3)
    store = store_for(moto_s3, bucket)

    async def scenario() -> None:
        writer = store.writer()
        await writer.write(b"x" * 1000)
        key = await writer.commit()
        assert moto_s3.object_size(bucket, f"files/{key}") == 1000
        await store.delete(key)
        assert moto_s3.keys(bucket) == []
        await store.delete(key)  # deleting what is gone is not an error (as for the directory store)
        with pytest.raises(FileNotFoundError):
            await store.size(key)
        with pytest.raises(FileNotFoundError):
            await read_all(store, key)
        with pytest.raises(ValueError):
            await store.delete("../etc/passwd")

    asyncio.run(scenario())


def test_concurrent_writers_keep_their_bytes_apart(moto_s3: MotoS3) -> None:
    bucket = new_bucket(moto_s3)
    store = store_for(moto_s3, bucket)
    sizes = [PART + 123, 2 * PART + 7, 300_000, 3 * PART]

    async def one(n: int, size: int) -> tuple[str, bytes]:
        payload = hashlib.sha256(str(n).encode()).digest() * (size // 32 + 1)
        payload = payload[:size]
        writer = store.writer()
        for start in range(0, size, 256 * 1024):
            await writer.write(payload[start : start + 256 * 1024])
            await asyncio.sleep(0)  # interleave the writers
        return await writer.commit(), payload

    async def scenario() -> None:
        written = await asyncio.gather(*(one(n, size) for n, size in enumerate(sizes)))
        assert len({key for key, _ in written}) == len(sizes)
        for key, payload in written:
            assert await store.size(key) == len(payload)
            assert (await read_all(store, key))[0] == payload

    asyncio.run(scenario())
    assert moto_s3.multipart_uploads(bucket) == []


def s3_settings(moto_s3: MotoS3, bucket: str, **extra: object) -> Settings:
    values: dict[str, object] = {
        "blob_store": "s3",
        "s3_bucket": bucket,
        "s3_endpoint_url": moto_s3.endpoint,
        "s3_region": REGION,
        "s3_access_key_id": ACCESS_KEY,
        "s3_secret_access_key": SECRET_KEY,
        **extra,
    }
    return Settings(**values)  # type: ignore[arg-type]


def test_the_store_opened_from_settings_checks_it_can_write_the_bucket(moto_s3: MotoS3) -> None:
    bucket = new_bucket(moto_s3)
    store = asyncio.run(open_blob_store(s3_settings(moto_s3, bucket, s3_prefix="tenant-a")))
    assert isinstance(store, S3BlobStore)
    assert moto_s3.keys(bucket) == []  # the probe object was deleted again

    with pytest.raises(BlobStoreConfigError) as caught:
        asyncio.run(open_blob_store(s3_settings(moto_s3, "no-such-bucket-here")))
    assert "no-such-bucket-here" in str(caught.value) and "cannot be written" in str(caught.value)


def test_configuration_problems_are_named_before_anything_is_contacted() -> None:
    assert s3_problem(Settings(blob_store="local")) is None
    problem = s3_problem(Settings(blob_store="s3"))
    assert problem is not None and "ASSISTD_S3_BUCKET" in problem
    half = Settings(blob_store="s3", s3_bucket="b", s3_access_key_id="AKIA")  # type: ignore[arg-type]
    problem = s3_problem(half)
    assert problem is not None and "ASSISTD_S3_SECRET_ACCESS_KEY" in problem


def test_abort_when_the_server_is_gone_does_not_raise(tmp_path_factory: pytest.TempPathFactory) -> None:
    """abort runs while another error is handled (a refused upload): its own failure must not replace it."""
    with MotoS3(log_dir=tmp_path_factory.mktemp("moto-gone")) as moto:
        bucket = new_bucket(moto)
        store = store_for(moto, bucket)

        async def start() -> BlobWriter:
            writer = store.writer()
            for _ in range(2 * PART // MIB):
                await writer.write(os.urandom(MIB))
            return writer

        loop = asyncio.new_event_loop()
        try:
            writer = loop.run_until_complete(start())
            moto.stop()
            loop.run_until_complete(writer.abort())
        finally:
            loop.close()
