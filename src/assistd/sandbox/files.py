"""Host-side access to a session's data directory, which sandboxed code controls.

Everything in it is hostile: a name may be a symlink to /etc/shadow, a FIFO that blocks a reader,
a directory symlinked to elsewhere, or a huge file. So files are opened relative to a directory
descriptor with O_NOFOLLOW | O_NONBLOCK, kept only when fstat says regular, read up to a cap, and
directories are entered the same way (never through a symlink). Writes go to a fresh temporary
name and are renamed over the target, which replaces a planted symlink instead of following it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import AsyncIterator, Iterator

from assistd.sandbox.base import OutputFile

MAX_DEPTH = 4
MAX_ENTRIES = 1000

Snapshot = dict[str, tuple[int, int]]  # relative path → (size, mtime_ns)

_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_OPEN_DIR = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC


def safe_name(name: str, fallback: str) -> str:
    """A file name usable as one path component, or `fallback`."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base or base in {".", ".."} or "\x00" in base or len(base.encode()) > 200 or base.startswith("."):
        return fallback
    return base


def _walk(dir_fd: int, prefix: str, depth: int, out: Snapshot) -> None:
    for name in sorted(os.listdir(dir_fd)):
        if len(out) >= MAX_ENTRIES:
            return
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            continue
        path = f"{prefix}{name}"
        if stat.S_ISREG(st.st_mode):
            out[path] = (st.st_size, st.st_mtime_ns)
        elif stat.S_ISDIR(st.st_mode) and depth < MAX_DEPTH:
            try:
                child = os.open(name, _OPEN_DIR, dir_fd=dir_fd)
            except OSError:
                continue
            try:
                _walk(child, f"{path}/", depth + 1, out)
            finally:
                os.close(child)


@contextlib.contextmanager
def _open_dir(root: str) -> Iterator[int]:
    fd = os.open(root, _OPEN_DIR)
    try:
        yield fd
    finally:
        os.close(fd)


def snapshot(root: str) -> Snapshot:
    """Regular files under `root` (symlinks, FIFOs, devices and sockets are not listed)."""
    found: Snapshot = {}
    with _open_dir(root) as fd:
        _walk(fd, "", 0, found)
    return found


def read_regular(root: str, path: str, limit: int) -> bytes | None:
    """The file's bytes if it is a regular file of at most `limit` bytes reached without symlinks."""
    parts = path.split("/")
    with _open_dir(root) as root_fd:
        fd = root_fd
        opened: list[int] = []
        try:
            for part in parts[:-1]:
                fd = os.open(part, _OPEN_DIR, dir_fd=fd)
                opened.append(fd)
            try:
                file_fd = os.open(parts[-1], _OPEN_FILE, dir_fd=fd)
            except OSError:  # a symlink (ELOOP), gone, or unreadable
                return None
            try:
                st = os.fstat(file_fd)
                if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
                    return None
                chunks, total = [], 0
                while chunk := os.read(file_fd, 1 << 20):
                    total += len(chunk)
                    if total > limit:  # grew while being read
                        return None
                    chunks.append(chunk)
                return b"".join(chunks)
            finally:
                os.close(file_fd)
        except OSError:
            return None
        finally:
            for extra in opened:
                os.close(extra)


def changed_files(root: str, before: Snapshot, max_file: int, max_total: int) -> tuple[list[OutputFile], list[str]]:
    """Files new or changed since `before`, read safely; and the paths skipped for their size."""
    files: list[OutputFile] = []
    skipped: list[str] = []
    total = 0
    for path, signature in snapshot(root).items():
        if before.get(path) == signature:
            continue
        if signature[0] > max_file or total + signature[0] > max_total:
            skipped.append(path)
            continue
        data = read_regular(root, path, max_file)
        if data is None:
            continue
        total += len(data)
        files.append(OutputFile(path, data))
    return files, skipped


async def place(root: str, name: str, chunks: AsyncIterator[bytes], uid: int | None) -> bool:
    """Write a file into the data directory without following anything the sandbox planted.
    False when the name is taken by a directory or is not a single path component."""
    if name in ("", ".", "..") or "/" in name or "\x00" in name:  # '../x', or 'sub/x' through a planted symlink
        return False
    with _open_dir(root) as fd:
        temp = f".in-{secrets.token_hex(8)}"
        out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=fd)
        try:
            async for chunk in chunks:
                os.write(out, chunk)
            if uid is not None:
                os.fchown(out, uid, uid)
        finally:
            os.close(out)
        try:
            os.rename(temp, name, src_dir_fd=fd, dst_dir_fd=fd)  # replaces a symlink, never follows it
        except OSError:
            os.unlink(temp, dir_fd=fd)
            return False
        return True


def remove(root: str, path: str) -> bool:
    """Delete the file at `path` (relative, '/'-separated) under `root`; directories on the way are entered
    without following symlinks, and a symlink at the end is removed itself. False when it is not there."""
    parts = [p for p in path.split("/") if p]
    if not parts or any(p in (".", "..") or "\x00" in p for p in parts):
        return False
    try:
        root_fd = os.open(root, _OPEN_DIR)
    except OSError:
        return False
    opened = [root_fd]
    try:
        for part in parts[:-1]:
            opened.append(os.open(part, _OPEN_DIR, dir_fd=opened[-1]))
        os.unlink(parts[-1], dir_fd=opened[-1])
        return True
    except OSError:  # gone, a directory, or a symlinked directory on the way
        return False
    finally:
        for fd in opened:
            os.close(fd)


def chown_tree(root: str, uid: int) -> None:
    """Give a data directory to a session's uid; symlinks are changed themselves, never followed."""
    os.chown(root, uid, uid, follow_symlinks=False)
    for _dirpath, dirnames, filenames, dir_fd in os.fwalk(root, follow_symlinks=False):
        for name in dirnames + filenames:
            with contextlib.suppress(OSError):
                os.chown(name, uid, uid, dir_fd=dir_fd, follow_symlinks=False)


def is_image(data: bytes) -> bool:
    """PNG or JPEG by magic number: kernel output is stored as opaque bytes, never decoded here."""
    return data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith(b"\xff\xd8\xff")
