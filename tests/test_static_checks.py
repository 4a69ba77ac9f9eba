"""What reviewers check, checked by CI (the README's test command runs this): lint, formatting, types.

Each tool runs as a subprocess from the test environment (pinned in the `test` extra) on the whole
tree; a finding fails the test with the tool's output.
"""

from __future__ import annotations

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
    # Import-layer contracts go here (`lint-imports`, import-linter) once the layers are written down.
}


@pytest.mark.parametrize("name", list(CHECKS))
def test_static_check(name: str) -> None:
    result = subprocess.run(CHECKS[name], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"`{name}` found problems:\n{result.stdout}\n{result.stderr}"
