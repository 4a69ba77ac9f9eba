"""File bytes in an S3-compatible bucket (AWS S3, R2, Garage, SeaweedFS, Ceph RGW, MinIO...) via obstore.

Needs the `s3` extra. Writes stream into a multipart upload: at most `part_size * (concurrency + 1)`
bytes of a file are in memory at once, whatever its size; a write that would exceed that waits for
a part to finish uploading. A file smaller than one part is sent as a single PUT. An aborted writer
aborts its multipart upload, so nothing is left behind. Reads stream one GET, chunk by chunk.
The object's key is `<prefix><key>`; keys are our own uuid hex, so objects never overwrite each other.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import obstore
from obstore.exceptions import NotFoundError
from obstore.store import S3Store

from assistd.storage.blobs import CHUNK, BlobWriter, check_key

if TYPE_CHECKING:
    from obstore import AsyncWritableFile
    from obstore.store import ClientConfig, S3Config

log = logging.getLogger("assistd.storage")

MIB = 1024 * 1024
# Not a blob key (those are hex): written and deleted by check().
PROBE_KEY = ".assistd-write-check"


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    # None: path-style with a custom endpoint (what self-hosted servers expect), virtual-hosted on AWS.
    path_style: bool | None = None
    part_size: int = 8 * MIB
    upload_concurrency: int = 4


def _virtual_host_endpoint(endpoint: str, bucket: str) -> str:
    """object_store wants the bucket's own URL when virtual-hosted: https://host -> https://bucket.host."""
    parts = urlsplit(endpoint)
    return urlunsplit(parts._replace(netloc=f"{bucket}.{parts.netloc}"))


def make_store(settings: S3Settings) -> S3Store:
    config: S3Config = {}
    client: ClientConfig = {}
    if settings.region:
        config["region"] = settings.region
    if settings.access_key_id:
        config["access_key_id"] = settings.access_key_id
        config["secret_access_key"] = settings.secret_access_key or ""
        if settings.session_token:
            config["session_token"] = settings.session_token
    path_style = settings.path_style if settings.path_style is not None else settings.endpoint_url is not None
    config["virtual_hosted_style_request"] = not path_style
    if settings.endpoint_url:
        endpoint = settings.endpoint_url.rstrip("/")
        config["endpoint"] = endpoint if path_style else _virtual_host_endpoint(endpoint, settings.bucket)
        if endpoint.startswith("http://"):
            client["allow_http"] = True
    # Credentials not given here come from the environment: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
    # a web identity token (EKS), the ECS task role or EC2 instance metadata (object_store's chain).
    return S3Store(settings.bucket, prefix=settings.prefix or None, config=config, client_options=client)


class _S3Writer:
    """Buffers up to one part; beyond that, obstore turns the write into a multipart upload."""

    def __init__(self, store: S3Store, settings: S3Settings) -> None:
        self.key = uuid.uuid4().hex
        self._file: AsyncWritableFile = obstore.open_writer_async(
            store, self.key, buffer_size=settings.part_size, max_concurrency=settings.upload_concurrency
        )
        self._done = False

    async def write(self, data: bytes) -> None:
        await self._file.write(data)

    async def commit(self) -> str:
        self._done = True
        await self._file.close()  # completes the multipart upload (or PUTs a small file whole)
        return self.key

    async def abort(self) -> None:
        if self._done:
            return
        self._done = True
        # Leaving the writer's context with an exception is obstore's abort: AbortMultipartUpload.
        # It runs while another error is being handled (a refused upload, a client gone): a failure
        # here must not replace that error, and leaves at most hidden parts (docs/deployment.md).
        try:
            await self._file.__aexit__(_Aborted, _Aborted(), None)
        except Exception as exc:
            log.warning("could not abort the upload of blob %s: %s", self.key, str(exc).splitlines()[0])


class _Aborted(Exception):
    pass


class S3BlobStore:
    def __init__(self, settings: S3Settings, store: S3Store | None = None) -> None:
        self.settings = settings
        self.store = store or make_store(settings)

    def writer(self) -> BlobWriter:
        return _S3Writer(self.store, self.settings)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        try:
            result = await obstore.get_async(self.store, check_key(key))
        except NotFoundError as exc:
            raise FileNotFoundError(f"blob {key} is not in the bucket") from exc
        async for chunk in result.stream(min_chunk_size=CHUNK):
            yield bytes(chunk)

    async def size(self, key: str) -> int:
        try:
            meta = await obstore.head_async(self.store, check_key(key))
        except NotFoundError as exc:
            raise FileNotFoundError(f"blob {key} is not in the bucket") from exc
        return int(meta["size"])

    async def delete(self, key: str) -> None:
        # S3's DeleteObject succeeds for a missing key, like the directory store's unlink(missing_ok).
        await obstore.delete_async(self.store, check_key(key))

    async def check(self) -> None:
        """Write and delete a tiny object at startup: a wrong bucket, endpoint, region or credentials (or a
        policy without PutObject/DeleteObject) stop the server with S3's reason instead of failing uploads."""
        await obstore.put_async(self.store, PROBE_KEY, b"assistd")
        await obstore.delete_async(self.store, PROBE_KEY)
