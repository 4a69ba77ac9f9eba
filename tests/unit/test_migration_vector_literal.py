"""Migration 0005 writes pgvector literals without numpy (migrations run at every start, numpy is only in
the `retrieval` extra): its literal must equal the one ingestion writes (retrieval/search.py, numpy)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np

import assistd
from assistd.retrieval.search import vector_literal

MIGRATION = Path(assistd.__file__).parent / "db" / "migrations" / "versions" / "0005_pgvector_embeddings.py"


def load_migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("migration_0005", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_literal_matches_ingestion() -> None:
    rng = np.random.default_rng(5)
    migration = load_migration()
    for vector in (rng.standard_normal(384).astype("<f4"), np.array([0.0, -0.0, 1e-38, 3.4e38], dtype="<f4")):
        embedding = vector.tobytes()
        assert migration._vector_literal(embedding) == vector_literal(embedding)
