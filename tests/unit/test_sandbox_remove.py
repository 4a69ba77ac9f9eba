"""sandbox/files.remove: deleting a container file from a data directory the sandboxed code controls."""

from __future__ import annotations

import os
from pathlib import Path

from assistd.sandbox.files import remove


def test_removes_a_file_and_a_nested_one(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "b.txt").write_text("b")
    assert remove(str(tmp_path), "a.txt") and not (tmp_path / "a.txt").exists()
    assert remove(str(tmp_path), "out/b.txt") and not (tmp_path / "out" / "b.txt").exists()
    assert not remove(str(tmp_path), "a.txt")  # already gone
    assert not remove(str(tmp_path), "out")  # a directory is not a file
    assert not remove(str(tmp_path / "missing"), "a.txt")


def test_never_follows_a_planted_symlink_out_of_the_directory(tmp_path: Path) -> None:
    root, outside = tmp_path / "data", tmp_path / "host"
    root.mkdir()
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("keep me")
    os.symlink(outside, root / "link")
    os.symlink(victim, root / "file-link")
    assert not remove(str(root), "link/victim.txt")  # a symlinked directory on the way
    assert not remove(str(root), "../host/victim.txt")
    assert remove(str(root), "file-link")  # the link itself goes, never its target
    assert victim.read_text() == "keep me" and not (root / "file-link").is_symlink()
