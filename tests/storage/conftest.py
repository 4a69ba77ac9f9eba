"""A real S3-compatible server (moto's server mode, from a venv of its own) for the blob store tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from assistd.testing.s3 import MotoS3


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    with MotoS3(log_dir=tmp_path_factory.mktemp("moto")) as server:
        yield server
