"""One 3-replica cluster per module: PostgreSQL (pgserver), an S3 bucket (moto), the fake upstream, a proxy."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from assistd.testing.cluster import Cluster
from assistd.testing.fake_upstream import FakeUpstream
from assistd.testing.postgres import TestPostgres
from assistd.testing.s3 import MotoS3

BACKENDS = os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")


@pytest.fixture(scope="session")
def cluster_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    with MotoS3(log_dir=tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fake: FakeUpstream,
) -> Iterator[Cluster]:
    if "postgres" not in BACKENDS:
        pytest.skip("replicas share a PostgreSQL database (ASSISTD_TEST_BACKENDS has no postgres)")
    postgres: TestPostgres = request.getfixturevalue("postgres")
    s3: MotoS3 = request.getfixturevalue("cluster_s3")
    bucket = f"assistd-cluster-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(bucket)
    env = {"ASSISTD_UPSTREAM_BASE_URL": fake.base_url}
    with Cluster(
        postgres.new_database(), s3.assistd_env(bucket, "files/"), tmp_path_factory.mktemp("cluster"), env=env
    ) as running:
        yield running
