"""One 3-replica cluster per module: PostgreSQL (pgserver), an S3 bucket (moto), the fake upstream, a proxy."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

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


def start_cluster(
    request: pytest.FixtureRequest, replicas: int = 3, env: dict[str, str] | None = None
) -> Iterator[Cluster]:
    """A cluster on a fresh database and bucket, with the fake upstream and `env` on top of the harness's defaults."""
    if "postgres" not in BACKENDS:
        pytest.skip("replicas share a PostgreSQL database (ASSISTD_TEST_BACKENDS has no postgres)")
    postgres: TestPostgres = request.getfixturevalue("postgres")
    s3: MotoS3 = request.getfixturevalue("cluster_s3")
    fake: FakeUpstream = request.getfixturevalue("fake")
    tmp: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
    bucket = f"assistd-cluster-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(bucket)
    settings = {"ASSISTD_UPSTREAM_BASE_URL": fake.base_url, **(env or {})}
    with Cluster(
        postgres.new_database(),
        s3.assistd_env(bucket, "files/"),
        tmp.mktemp("cluster"),
        replicas=replicas,
        env=settings,
    ) as running:
        yield running


@pytest.fixture(scope="session")
def cluster_starter() -> Callable[..., Iterator[Cluster]]:
    """`yield from cluster_starter(request, replicas=2, env={...})` in a fixture: a cluster of its own."""
    return start_cluster


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Three replicas; the harness's settings (worker poll 0.2 s, lease 3 s)."""
    yield from start_cluster(request)
