"""A server that does not run as root: the sandbox runs in a user namespace as the server's own uid.

The test runs a SessionManager in a child process as `nobody` (setpriv), so it needs root to start
and a host that allows unprivileged user namespaces (Debian does; Ubuntu >= 23.10 restricts them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

NOBODY = 65534
SCRIPT = r'''
import asyncio, json, os, sys
from pathlib import Path
from assistd.sandbox.limits import Limits
from assistd.sandbox.manager import SandboxConfig, SessionManager

PROBE = """
import json, os, socket
seen = {"uid": os.getuid(), "root": sorted(os.listdir("/")), "env": sorted(os.environ)}
def attempt(name, fn):
    try:
        fn(); seen[name] = "ok"
    except OSError as e:
        seen[name] = type(e).__name__
attempt("secret", lambda: open(%(secret)r).read())
attempt("other", lambda: open(%(other)r).read())
attempt("net", lambda: socket.create_connection(("127.0.0.1", %(port)d), timeout=2))
def new_user_namespace():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x10000000) != 0:  # CLONE_NEWUSER
        raise OSError(ctypes.get_errno(), "unshare")
attempt("userns", new_user_namespace)
seen["leak"] = False
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        seen["leak"] |= b"s3cret" in open(f"/proc/{pid}/environ", "rb").read()
    except OSError:
        pass
attempt("usr", lambda: open("/usr/x", "w"))
print(json.dumps(seen))
"""

async def main():
    root, python, secret, port = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    manager = SessionManager(SandboxConfig(root=root, python=python, pool_size=0, cell_timeout=20,
                                           limits=Limits(1 << 30, 64, 8 << 20, 600)))
    why = manager.unavailable()
    if why is not None:
        print(json.dumps({"unavailable": why}))
        return
    out = {}
    try:
        out["state"] = [(await manager.execute("t1", c, [])).logs for c in ("x = 41", "x + 1")]
        await manager.execute("t2", "open('/mnt/data/mine.txt', 'w').write('t2')", [])
        other = str(manager._thread_dir("t2") / "mine.txt")
        probe = await manager.execute("t1", PROBE % {"secret": secret, "other": other, "port": port}, [])
        out["probe"] = json.loads(probe.logs) if probe.status == "ok" else {"failed": probe.logs}
        big = await manager.execute("t1", "b = bytearray(1536 * 2**20)", [])
        out["big"] = [big.status, big.logs[-200:], big.notice]
        out["after"] = (await manager.execute("t1", "1 + 1", [])).logs
    finally:
        await manager.aclose()
    print(json.dumps(out))

asyncio.run(main())
'''


@pytest.fixture()
def nobody_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="assistd-userns-", dir="/tmp"))
    os.chown(path, NOBODY, NOBODY)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_non_root_server_sandboxes_in_a_user_namespace(nobody_dir: Path, sandbox_python: Path) -> None:
    if os.geteuid() != 0 or shutil.which("bwrap") is None or shutil.which("setpriv") is None:
        pytest.skip("needs root (to become nobody for the test), bubblewrap and setpriv")
    secret = nobody_dir / "server-secret.txt"
    secret.write_text("s3cret")
    os.chown(secret, NOBODY, NOBODY)  # the server's own file: readable by its uid, not by its sandbox
    listener = __import__("socket").create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(nobody_dir), "SERVER_SECRET": "s3cret"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # this test run's assistd, as nobody
    command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", sys.executable, "-c"]
    try:
        done = subprocess.run(
            [*command, SCRIPT, str(nobody_dir / "sandbox"), str(sandbox_python), str(secret), str(port)],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
        )
    finally:
        listener.close()
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if "unavailable" in out:
        if "user namespaces" in out["unavailable"]:
            pytest.skip(f"this host refuses unprivileged user namespaces: {out['unavailable']}")
        pytest.fail(out["unavailable"])
    assert out["state"] == ["", "42\n"]
    probe = out["probe"]
    assert "failed" not in probe, probe["failed"]
    assert probe["uid"] == NOBODY
    assert set(probe["root"]) <= {
        "bin",
        "dev",
        "etc",
        "home",
        "lib",
        "lib64",
        "mnt",
        "proc",
        "root",
        "sbin",
        "tmp",
        "usr",
    }
    assert "SERVER_SECRET" not in probe["env"]
    assert probe["secret"] == "FileNotFoundError" and probe["other"] == "FileNotFoundError"
    assert probe["net"] == "ConnectionRefusedError"  # the sandbox's own loopback, not the host's
    assert probe["userns"] == "PermissionError"
    assert probe["leak"] is False  # no process in the sandbox (bwrap's pid 1 included) has the server's env
    assert probe["usr"] in ("OSError", "PermissionError")  # EROFS
    # No memory cgroup for an unprivileged server: RLIMIT_AS turns a large allocation into MemoryError.
    status, logs, _notice = out["big"]
    assert (status == "error" and "MemoryError" in logs) or status == "reset", out["big"]
    assert out["after"] == "2\n"
