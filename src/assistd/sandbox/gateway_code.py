"""The Python the gateway backend sends to a kernel for itself: set the session up, copy input files
in, list and read back the files a cell wrote.

A gateway kernel shares no filesystem with the server, so files travel through the kernel as code
(base64 in) and printed output (base64 out). Each snippet is one `exec` call (sent as a user
expression, see KernelChannels.helper) in a namespace of its own (nothing is left in the user's
variables) and prints its results as lines starting with a
per-call token, so text printed by threads the model's code started is ignored. The kernel runs
whatever the model wrote, so what comes back is untrusted: the host checks sizes again.

Inside the kernel the walk mirrors `files.snapshot` / `files.read_regular`: symlinks are never
followed, only regular files are read (O_NOFOLLOW | O_NONBLOCK, then fstat), with the same depth
and entry limits.
"""

from __future__ import annotations

import json

from assistd.sandbox.files import MAX_DEPTH, MAX_ENTRIES

_WALK = f"""
import os, stat, json, base64, sys
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_DIR = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
def out(value):
    sys.stdout.write(TOKEN + json.dumps(value) + "\\n")
    sys.stdout.flush()
def walk(fd, prefix, depth, found):
    for name in sorted(os.listdir(fd)):
        if len(found) >= {MAX_ENTRIES}:
            return
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            continue
        path = prefix + name
        if stat.S_ISREG(st.st_mode):
            found[path] = [st.st_size, st.st_mtime_ns]
        elif stat.S_ISDIR(st.st_mode) and depth < {MAX_DEPTH}:
            try:
                child = os.open(name, _DIR, dir_fd=fd)
            except OSError:
                continue
            try:
                walk(child, path + "/", depth + 1, found)
            finally:
                os.close(child)
def snapshot():
    found = {{}}
    fd = os.open(ROOT, _DIR)
    try:
        walk(fd, "", 0, found)
    finally:
        os.close(fd)
    return found
"""

_PREPARE = """
fresh = getattr(sys, "_assistd_session", None) != MARK
if fresh:
    os.makedirs(ROOT, exist_ok=True)
    os.chdir(ROOT)
    sys._assistd_session = MARK
out({"fresh": fresh, "files": snapshot()})
"""

_PLACE = """
fd = os.open(ROOT, _DIR)
try:
    flags = os.O_WRONLY | os.O_NOFOLLOW | (os.O_CREAT | os.O_EXCL if FIRST else os.O_APPEND)
    f = os.open(TEMP, flags, 0o644, dir_fd=fd)
    try:
        os.write(f, base64.b64decode(DATA))
    finally:
        os.close(f)
    ok = True
    if LAST:
        try:
            os.rename(TEMP, NAME, src_dir_fd=fd, dst_dir_fd=fd)
        except OSError:
            os.unlink(TEMP, dir_fd=fd)
            ok = False
    out({"ok": ok})
finally:
    os.close(fd)
"""

_COLLECT = """
def read(path, limit):
    parts = path.split("/")
    fds = [os.open(ROOT, _DIR)]
    try:
        for part in parts[:-1]:
            fds.append(os.open(part, _DIR, dir_fd=fds[-1]))
        f = os.open(parts[-1], _FILE, dir_fd=fds[-1])
        try:
            st = os.fstat(f)
            if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
                return None
            chunks, total = [], 0
            while True:
                chunk = os.read(f, CHUNK)
                if not chunk:
                    return chunks
                total += len(chunk)
                if total > limit:
                    return None
                chunks.append(chunk)
        finally:
            os.close(f)
    except OSError:
        return None
    finally:
        for fd in fds:
            os.close(fd)
skipped, total = [], 0
for path, signature in snapshot().items():
    if BEFORE.get(path) == signature:
        continue
    if signature[0] > MAX_FILE or total + signature[0] > MAX_TOTAL:
        skipped.append(path)
        continue
    chunks = read(path, MAX_FILE)
    if chunks is None:
        continue
    total += sum(len(c) for c in chunks)
    out({"file": path})
    for chunk in chunks:
        out({"part": base64.b64encode(chunk).decode()})
out({"skipped": skipped})
"""

_REMOVE = """
import shutil
if os.path.isdir(ROOT) and not os.path.islink(ROOT):
    shutil.rmtree(ROOT, ignore_errors=True)
out({"removed": True})
"""

_REMOVE_FILE = """
fds = []
removed = False
try:
    fds.append(os.open(ROOT, _DIR))
    for part in PARTS[:-1]:
        fds.append(os.open(part, _DIR, dir_fd=fds[-1]))
    os.unlink(PARTS[-1], dir_fd=fds[-1])
    removed = True
except OSError:
    pass
finally:
    for fd in fds:
        os.close(fd)
out({"removed": removed})
"""

CHUNK = 1 << 20  # bytes per printed line of a returned file, and per input chunk sent as code


def _wrap(body: str, values: dict[str, object]) -> str:
    """A snippet that runs `body` in a namespace of its own, with `values` bound (as JSON literals)."""
    bindings = "".join(f"{name} = json.loads({json.dumps(json.dumps(value))})\n" for name, value in values.items())
    source = "import json\n" + bindings + _WALK + body
    return f"exec({source!r}, {{'__name__': '__assistd__'}})"


def prepare(token: str, root: str, mark: str) -> str:
    """Make the session's directory and working directory (once per kernel process), then list its files.
    Prints {"fresh": bool, "files": {path: [size, mtime_ns]}}; fresh when the kernel had not been set up
    (new, or restarted by the gateway)."""
    return _wrap(_PREPARE, {"TOKEN": token, "ROOT": root, "MARK": mark})


def snapshot(token: str, root: str) -> str:
    return _wrap('out({"files": snapshot()})\n', {"TOKEN": token, "ROOT": root})


def place(token: str, root: str, temp: str, name: str, data: bytes, *, first: bool, last: bool) -> str:
    """Append one chunk of an input file to a fresh temporary name; the last one renames it over `name`
    (replacing whatever the code left there, never following it). Prints {"ok": bool}."""
    import base64

    values: dict[str, object] = {
        "TOKEN": token,
        "ROOT": root,
        "TEMP": temp,
        "NAME": name,
        "DATA": base64.b64encode(data).decode(),
        "FIRST": first,
        "LAST": last,
    }
    return _wrap(_PLACE, values)


def collect(token: str, root: str, before: dict[str, list[int]], max_file: int, max_total: int) -> str:
    """Files new or changed since `before`: prints {"file": path} then {"part": base64} lines for each,
    and {"skipped": [paths too large]} at the end."""
    values: dict[str, object] = {
        "TOKEN": token,
        "ROOT": root,
        "BEFORE": before,
        "MAX_FILE": max_file,
        "MAX_TOTAL": max_total,
        "CHUNK": CHUNK,
    }
    return _wrap(_COLLECT, values)


def remove(token: str, root: str) -> str:
    return _wrap(_REMOVE, {"TOKEN": token, "ROOT": root})


def remove_file(token: str, root: str, parts: list[str]) -> str:
    """Delete one file (its path's parts, checked by the caller) without following a symlink on the way;
    a symlink at the end is removed itself. Prints {"removed": bool}."""
    return _wrap(_REMOVE_FILE, {"TOKEN": token, "ROOT": root, "PARTS": parts})
