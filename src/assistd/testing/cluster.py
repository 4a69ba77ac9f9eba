"""Several `assistd serve` replicas on one PostgreSQL and one S3 bucket, behind a round-robin proxy.

The topology docs/deployment.md describes for scaling out, on one machine: every replica has a data
directory of its own (nothing shared on disk), the database and the bucket are the only shared state,
and clients reach the replicas through `RoundRobinProxy` (one connection, the next replica).

    with Cluster(database_url, s3.assistd_env(bucket), root, env={"ASSISTD_UPSTREAM_BASE_URL": ...}) as c:
        client = c.client()          # openai SDK through the proxy, a fresh connection per request
        c.replica_client(1)          # straight to replica 1
        c.executing_replica(run_id)  # which replica holds the run's lease (from the database)
        c.kill(1); c.restart(1)

Which replica executes a run is read from `runs.lease_owner` (`host:pid:nonce`, engine worker ids),
matched against the replicas' process ids.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import openai

from assistd.testing.proxy import CLOSE_CONNECTION, RoundRobinProxy
from assistd.testing.server import LiveServer

# Quick polling, as the test servers use, a short lease so a dead replica's run is recovered in a few
# seconds, and no bundled local model or warm sandbox kernels.
DEFAULT_ENV = {
    "ASSISTD_LOCAL_ENABLED": "false",
    "ASSISTD_SANDBOX_POOL_SIZE": "0",
    "ASSISTD_POLL_AFTER_MS": "20",
    "ASSISTD_UPSTREAM_RETRY_BASE_SECONDS": "0.01",
    "ASSISTD_WORKER_POLL_SECONDS": "0.2",
    "ASSISTD_LEASE_SECONDS": "3",
}


def _asyncpg_dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


class Cluster:
    def __init__(
        self,
        database_url: str,
        blob_env: Mapping[str, str],
        root: Path,
        *,
        replicas: int = 3,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if not database_url.startswith("postgresql"):
            raise ValueError("replicas share a PostgreSQL database")
        self.database_url = database_url
        self.root = Path(root)
        self.env = {**DEFAULT_ENV, **blob_env, **(env or {})}
        self.replicas = [
            LiveServer(self.root / f"replica-{i}", database_url=database_url, env=self.env) for i in range(replicas)
        ]
        self.proxy = RoundRobinProxy([("127.0.0.1", r.port) for r in self.replicas])

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Cluster:
        try:
            # The first one alone: it migrates the database; the others start against a migrated one.
            self.replicas[0].start()
            self._start_all(range(1, len(self.replicas)))
            self.proxy.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_all(self, indexes: range | list[int]) -> None:
        errors: list[BaseException] = []

        def start(i: int) -> None:
            try:
                self.replicas[i].start()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(i,)) for i in indexes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def stop(self) -> None:
        self.proxy.stop()
        for replica in self.replicas:
            replica.stop()

    def kill(self, index: int) -> None:
        """SIGKILL one replica (no drain, no lease handed back), and wait for it to be gone."""
        replica = self.replicas[index]
        assert replica.process is not None
        replica.process.send_signal(signal.SIGKILL)
        replica.process.wait(30)

    def restart(self, index: int) -> LiveServer:
        """Start a stopped replica again: same port (the proxy's backend), data directory and settings."""
        old = self.replicas[index]
        if old.process is not None and old.process.poll() is None:
            raise RuntimeError(f"replica {index} is still running")
        replica = LiveServer(old.data_dir, database_url=self.database_url, env=self.env, port=old.port)
        self.replicas[index] = replica
        return replica.start()

    def alive(self) -> list[int]:
        return [i for i, r in enumerate(self.replicas) if r.process is not None and r.process.poll() is None]

    # --- clients --------------------------------------------------------------------------------

    def client(self) -> openai.OpenAI:
        """The openai SDK through the proxy; no keep-alive, so consecutive requests go to consecutive replicas."""
        return self._client(self.proxy.base_url)

    def replica_client(self, index: int) -> openai.OpenAI:
        return self._client(self.replicas[index].base_url)

    @staticmethod
    def _client(base_url: str) -> openai.OpenAI:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return openai.OpenAI(base_url=base_url, api_key="test-key", max_retries=0, default_headers=CLOSE_CONNECTION)

    # --- the database's view --------------------------------------------------------------------

    def fetch(self, query: str, *args: object) -> list[tuple[object, ...]]:
        """Rows of a read-only query on the shared database (asyncpg, a connection per call)."""

        async def run() -> list[tuple[object, ...]]:
            import asyncpg  # type: ignore[import-untyped,unused-ignore]

            connection = await asyncpg.connect(_asyncpg_dsn(self.database_url))
            try:
                return [tuple(row.values()) for row in await connection.fetch(query, *args)]
            finally:
                await connection.close()

        return asyncio.run(run())

    def lease_owner(self, run_id: str) -> str | None:
        rows = self.fetch("SELECT lease_owner FROM runs WHERE id = $1", run_id)
        return str(rows[0][0]) if rows and rows[0][0] is not None else None

    def executing_replica(self, run_id: str) -> int | None:
        """The index of the live replica holding the run's lease, if one does."""
        return self.replica_of(self.lease_owner(run_id))

    def ingesting_replica(self, vector_store_id: str, file_id: str) -> int | None:
        """The index of the live replica holding a vector store file's ingestion lease, if one does."""
        rows = self.fetch(
            "SELECT lease_owner FROM vector_store_files WHERE vector_store_id = $1 AND id = $2",
            vector_store_id,
            file_id,
        )
        return self.replica_of(str(rows[0][0]) if rows and rows[0][0] is not None else None)

    def replica_of(self, owner: str | None) -> int | None:
        """The index of the live replica a lease owner (`host:pid:nonce`) names, if one does."""
        if owner is None:
            return None
        parts = owner.split(":")
        if len(parts) < 3 or not parts[-2].isdigit():
            raise RuntimeError(f"unexpected lease owner {owner!r}")
        pid = int(parts[-2])
        for i, replica in enumerate(self.replicas):
            if replica.process is not None and replica.process.pid == pid and replica.process.poll() is None:
                return i
        return None

    def wait_for_executor(self, run_id: str, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while (index := self.executing_replica(run_id)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no live replica holds run {run_id} (lease owner {self.lease_owner(run_id)!r})")
            time.sleep(0.05)
        return index

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
