"""The blob store the settings ask for: the data directory (default) or an S3-compatible bucket."""

from __future__ import annotations

from assistd.extras import belongs_to, missing, missing_message
from assistd.settings import Settings
from assistd.storage.blobs import BlobStore, DirectoryBlobStore

MIB = 1024 * 1024


class BlobStoreConfigError(Exception):
    """The blob store cannot be opened as configured; the message says what to change."""


def s3_problem(settings: Settings) -> str | None:
    """What is wrong with an `s3` configuration before anything is contacted (None when nothing is)."""
    if settings.blob_store != "s3":
        return None
    if absent := missing("s3"):
        return f"ASSISTD_BLOB_STORE is 's3'. {missing_message('s3', absent[0])}"
    if not settings.s3_bucket:
        return "ASSISTD_BLOB_STORE is 's3' but ASSISTD_S3_BUCKET is not set (docs/deployment.md, Object storage)."
    if bool(settings.s3_access_key_id) != bool(settings.s3_secret_access_key):
        return "ASSISTD_S3_ACCESS_KEY_ID and ASSISTD_S3_SECRET_ACCESS_KEY go together: set both or neither."
    return None


async def open_blob_store(settings: Settings) -> BlobStore:
    """Open (and for S3, check with one write and delete) the configured store."""
    if settings.blob_store == "local":
        return DirectoryBlobStore(settings.blob_dir)
    if problem := s3_problem(settings):
        raise BlobStoreConfigError(problem)
    try:
        from assistd.storage.s3 import S3BlobStore, S3Settings
    except ImportError as exc:  # pragma: no cover - s3_problem found the module, but it failed to load
        if not belongs_to("s3", exc):
            raise
        raise BlobStoreConfigError(missing_message("s3", exc.name)) from exc
    assert settings.s3_bucket is not None  # s3_problem checked it
    secret = settings.s3_secret_access_key
    token = settings.s3_session_token
    store = S3BlobStore(
        S3Settings(
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
            session_token=token.get_secret_value() if token else None,
            path_style=settings.s3_path_style,
            part_size=settings.s3_part_size_mb * MIB,
            upload_concurrency=settings.s3_upload_concurrency,
        )
    )
    try:
        await store.check()
    except Exception as exc:
        where = settings.s3_endpoint_url or "AWS"
        raise BlobStoreConfigError(f"The S3 bucket '{settings.s3_bucket}' at {where} cannot be written: {exc}") from exc
    return store
