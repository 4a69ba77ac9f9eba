"""The README's two commands stay what they say: the test command is exactly what CI runs (.ci/run)
and what docs/development.md shows; the first command does the newcomer's setup (issue 12 item 14)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_readme_has_two_commands() -> None:
    assert len(readme_commands()) == 2


def test_the_first_command_sets_up_a_fresh_debian_machine() -> None:
    serve = readme_commands()[0]
    for part in ("apt-get install", "build-essential", "cmake", "bubblewrap", "python3 -m venv", "assistd serve"):
        assert part in serve, part


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert f"\n{test_command} || status=$?\n" in ci
    assert f"```sh\n{test_command}\n```" in (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
