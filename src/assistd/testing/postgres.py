"""A throwaway PostgreSQL (with pgvector) for tests and benchmarks, via the `pgserver` package."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Any


class TestPostgres:
    """One server per test session; `new_database()` gives each server under test its own database."""

    __test__ = False  # not a pytest class

    def __init__(self, root: Path | None = None) -> None:
        if not os.environ.get("XDG_RUNTIME_DIR"):
            # pgserver asks platformdirs for a runtime dir, which warns when none is set.
            runtime = Path(tempfile.mkdtemp(prefix="assistd-runtime-"))
            runtime.chmod(0o700)
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        import pgserver  # type: ignore[import-untyped,unused-ignore]

        self.root = Path(root or tempfile.mkdtemp(prefix="assistd-pg-"))
        self._server: Any = pgserver.get_server(  # type: ignore[attr-defined,unused-ignore]
            self.root, cleanup_mode="stop"
        )

    def new_database(self) -> str:
        """A fresh database; returns its SQLAlchemy asyncpg URL."""
        name = "assistd_" + uuid.uuid4().hex[:12]
        self._server.psql(f"CREATE DATABASE {name};")
        uri: str = self._server.get_uri()
        base, _, query = uri.partition("?")
        prefix = base.rsplit("/", 1)[0]
        return f"{prefix.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}?{query}"

    def drop_database(self, url: str) -> None:
        """Drop a database `new_database()` made, its open connections cut (a database gone under a server)."""
        name = url.partition("?")[0].rsplit("/", 1)[1]
        self._server.psql(f"DROP DATABASE {name} WITH (FORCE);")

    def close(self) -> None:
        self._server.cleanup()
