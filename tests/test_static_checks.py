"""What reviewers check, checked by CI (the README's test command runs this): lint, formatting, types, layers.

Each tool runs as a subprocess from the test environment (pinned in the `test` extra) on the whole
tree; a finding fails the test with the tool's output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECKS = {
    "ruff check": [sys.executable, "-m", "ruff", "check", "--no-cache", "src", "tests"],
    "ruff format": [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "src", "tests"],
    # mypy's settings (strict, the files: src/assistd) are in pyproject.toml.
    "mypy --strict": [sys.executable, "-m", "mypy"],
    # The import-layer contracts (layers, no package cycles, ...) are in pyproject.toml [tool.importlinter].
    # It reads the package from sys.path: the tree under test's src/ comes first (see ENV).
    "lint-imports": [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--no-logo"],
}

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}


@pytest.mark.parametrize("name", list(CHECKS))
def test_static_check(name: str) -> None:
    result = subprocess.run(CHECKS[name], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"`{name}` found problems:\n{result.stdout}\n{result.stderr}"
