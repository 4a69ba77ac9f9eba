"""What code inside the sandbox can see and do (../shared/notes/sandbox.md §4.5, §5), and what the
host side does with what the code leaves in /mnt/data. Each test runs the attack for real and
asserts on what the sandboxed code observed (via `probe`) or on the host afterwards."""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from assistd.sandbox.manager import SessionManager

from .conftest import (
    SECRET_ENV,
    SECRET_VALUE,
    Server,
    execute,
    input_file,
    probe,
    process_count,
    requires_sandbox,
    uid_processes,
)

pytestmark = requires_sandbox

Run = Callable[[Coroutine[Any, Any, Any]], Any]
Keys = Callable[[SessionManager], str]


def host_file(work_dir: Path, content: str) -> Path:
    """A host file outside every data directory, with known content, readable by anyone on the host."""
    path = work_dir / f"host-{secrets.token_hex(4)}.txt"
    path.write_text(content)
    path.chmod(0o644)
    return path


# --- network ------------------------------------------------------------------------------------


def test_no_network(run: Run, manager: SessionManager, keys: Keys) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        seen = probe(
            run,
            manager,
            keys(manager),
            f"""
import socket
def connect(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        return _try(s.connect, addr)
    finally:
        s.close()
def udp(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        return _try(s.sendto, b"x", addr)
    finally:
        s.close()
_report({{
    "host_server": connect(("127.0.0.1", {port})),
    "internet": connect(("1.1.1.1", 80)),
    "udp_dns": udp(("8.8.8.8", 53)),
    "dns": _try(socket.getaddrinfo, "pypi.org", 443),
    "interfaces": [name for _, name in socket.if_nameindex()],
}})
""",
        )
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing from the sandbox reached the host's loopback
    finally:
        listener.close()
    assert seen["host_server"][:2] == ["error", "ECONNREFUSED"]  # its own, empty loopback
    assert seen["internet"][:2] == ["error", "ENETUNREACH"]
    assert seen["udp_dns"][:2] == ["error", "ENETUNREACH"]
    assert seen["dns"][0] == "error"
    assert seen["interfaces"] == ["lo"]


# --- files --------------------------------------------------------------------------------------


def test_server_files_are_not_visible(run: Run, manager: SessionManager, keys: Keys, server: Server) -> None:
    targets = {
        "database": str(server.database),
        "config": str(server.config),
        "threads": str(server.root / "threads"),
        "seccomp": str(server.root / "seccomp.bpf"),
        "logs": str(server.root / "logs"),
        "project": str(Path(__file__).resolve().parents[2] / "pyproject.toml"),
        "shadow": "/etc/shadow",
        "passwd": "/etc/passwd",
        "root_profile": "/root/.profile",
        "root_bashrc": "/root/.bashrc",
    }
    assert server.database.is_file() and server.config.is_file()
    seen = probe(
        run,
        manager,
        keys(manager),
        f"""
import os
targets = {targets!r}
_report({{
    "read": {{name: _try(lambda p: open(p).read(), path) for name, path in targets.items()}},
    "data_dir": _try(os.listdir, {str(server.data_dir)!r}),
    "root": sorted(os.listdir("/")),
    "etc": sorted(os.listdir("/etc")),
    "root_home": _try(os.listdir, "/root"),
    "proc": sorted(p for p in os.listdir("/proc") if p.isdigit()),
    "pid1_root": _try(os.listdir, "/proc/1/root"),
    "sys": _try(os.listdir, "/sys"),
    "assistd": _try(__import__, "assistd"),
}})
""",
    )
    for name, outcome in seen["read"].items():
        assert outcome[:2] == ["error", "ENOENT"], (name, outcome)
    # the server's data directory exists only as an empty mount point parent
    assert seen["data_dir"] == ["ok", ["sandbox"]]
    assert set(seen["root"]) <= {
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
    assert set(seen["etc"]) <= {"fonts", "localtime"}
    # root's home holds only the directories leading to the sandbox Python (bind-mounted read-only)
    runtime = manager._runtime
    assert runtime is not None
    allowed = {
        p.relative_to("/root").parts[0] for p in (runtime.venv, runtime.base_prefix) if p.is_relative_to("/root")
    }
    assert seen["root_home"][0] == "ok" and set(seen["root_home"][1]) <= allowed, seen["root_home"]
    assert len(seen["proc"]) <= 3, seen["proc"]  # bwrap's pid 1 and the kernel (own pid namespace)
    assert seen["pid1_root"][:2] == ["error", "EACCES"]
    assert seen["sys"][:2] == ["error", "ENOENT"]
    assert seen["assistd"][:2] == ["error", "ModuleNotFoundError"]  # the server's packages are hidden


def test_host_site_packages_are_hidden(run: Run, manager: SessionManager, keys: Keys) -> None:
    runtime = manager._runtime
    assert runtime is not None
    hidden = runtime.site_packages_to_hide
    if not hidden:
        pytest.skip("the sandbox Python's base interpreter has no separate site-packages")
    assert any(Path(hidden[0]).iterdir())  # on the host it has packages (this server's, at least)
    seen = probe(run, manager, keys(manager), f"import os\n_report(_try(os.listdir, {hidden[0]!r}))")
    assert seen == ["ok", []]


def test_environment_secrets_do_not_leak(run: Run, manager: SessionManager, keys: Keys) -> None:
    assert os.environ.get(SECRET_ENV) == SECRET_VALUE  # set for the server before kernels started
    seen = probe(
        run,
        manager,
        keys(manager),
        f"""
import os
leaks = []
readable = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        outcome = _try(lambda p: open(f"/proc/{{p}}/environ", "rb").read().decode(errors="replace"), pid)
        if outcome[0] == "ok":
            readable.append(pid)
            if {SECRET_VALUE!r} in outcome[1] or {SECRET_ENV!r} in outcome[1]:
                leaks.append(pid)
_report({{
    "env_keys": sorted(os.environ),
    "secret_in_env": {SECRET_VALUE!r} in repr(dict(os.environ)),
    "pid1": _try(lambda: open("/proc/1/environ", "rb").read().decode()),
    "leaks": leaks,
    "readable": readable,
    "self": str(os.getpid()),
}})
""",
    )
    assert SECRET_ENV not in seen["env_keys"] and not seen["secret_in_env"]
    assert seen["pid1"][:2] == ["error", "EACCES"]
    assert seen["leaks"] == []
    assert seen["self"] in seen["readable"]  # the scan did read something
    assert "PATH" in seen["env_keys"] and "HOME" in seen["env_keys"]


def test_other_sessions_files_and_processes(run: Run, manager: SessionManager, keys: Keys) -> None:
    a, b = keys(manager), keys(manager)
    token = f"session-a-{secrets.token_hex(8)}"
    execute(run, manager, a, f"open('/mnt/data/secret.txt', 'w').write({token!r})\nimport time")
    a_dir = manager._sessions[a].slot.data_dir
    assert (a_dir / "secret.txt").read_text() == token
    seen = probe(
        run,
        manager,
        b,
        f"""
import os
found = []
skip = {[str(p) for p in (manager._runtime.venv, manager._runtime.base_prefix)]!r}
for top in ("/mnt", "/tmp", "/home", "/etc", "/dev", "/root", {str(manager.config.root)!r}):
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skip]
        found += [os.path.join(dirpath, f) for f in filenames if f == "secret.txt"]
_report({{
    "found": found,
    "mnt": _try(os.listdir, "/mnt/data"),
    "host_path": _try(lambda: open({str(a_dir / "secret.txt")!r}).read()),
    "uid": os.getuid(),
    "gid": os.getgid(),
    "groups": os.getgroups(),
    "setuid0": _try(os.setuid, 0),
}})
""",
    )
    assert seen["found"] == []
    assert seen["mnt"] == ["ok", []]
    assert seen["host_path"][:2] == ["error", "ENOENT"]
    # each live session has its own uid, never root
    a_uid = probe(run, manager, a, "import os\n_report(os.getuid())")
    assert seen["uid"] != 0 and a_uid != 0 and seen["uid"] != a_uid
    assert seen["gid"] == seen["uid"] and seen["groups"] == []
    assert seen["setuid0"][:2] == ["error", "EPERM"]
    # A's processes are invisible to B (own pid namespace), and A's kernel is alive
    assert manager._sessions[a].slot.kernel.alive and manager._sessions[b].slot.kernel.alive


def test_usr_and_sandbox_python_are_read_only(run: Run, manager: SessionManager, keys: Keys) -> None:
    runtime = manager._runtime
    assert runtime is not None
    targets = {
        "usr": "/usr/lib/assistd-test-write",
        "usr_bin": "/usr/bin/python3-x",
        "venv": str(runtime.venv / "lib" / "assistd-test-write"),
        "venv_python": runtime.python,
        "base_prefix": str(runtime.base_prefix / "assistd-test-write"),
    }
    seen = probe(
        run,
        manager,
        keys(manager),
        f"""
import os
targets = {targets!r}
def write(path):
    with open(path, "ab") as f:
        f.write(b"x")
_report({{
    "write": {{name: _try(write, path) for name, path in targets.items()}},
    "mkdir": _try(os.mkdir, {str(runtime.venv / "evil")!r}),
    "tmp": _try(lambda: open("/tmp/ok", "w").write("ok")),
    "home": _try(lambda: open(os.path.expanduser("~/ok"), "w").write("ok")),
    "data": _try(lambda: open("/mnt/data/ok", "w").write("ok")),
}})
""",
    )
    for name, outcome in seen["write"].items():
        # creating a file: EROFS; an existing root-owned file: the permission check comes first
        expected = ["EROFS", "EACCES"] if name == "venv_python" else ["EROFS"]
        assert outcome[0] == "error" and outcome[1] in expected, (name, outcome)
    assert seen["mkdir"][:2] == ["error", "EROFS"]
    assert seen["tmp"] == seen["home"] == seen["data"] == ["ok", 2]
    assert not (runtime.venv / "evil").exists()


def test_no_user_namespaces_or_mounts(run: Run, manager: SessionManager, keys: Keys) -> None:
    seen = probe(
        run,
        manager,
        keys(manager),
        """
import ctypes, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
def call(fn, *args):
    rc = fn(*args)
    return ["ok", rc] if rc == 0 else ["error", _errno.errorcode.get(ctypes.get_errno(), "?")]
def cmd(*argv):
    p = subprocess.run(argv, capture_output=True, text=True)
    return [p.returncode, (p.stdout + p.stderr).strip()]
os.makedirs("/tmp/m", exist_ok=True)
_report({
    "unshare_user": call(libc.unshare, 0x10000000),
    "unshare_mount": call(libc.unshare, 0x00020000),
    "unshare_net": call(libc.unshare, 0x40000000),
    "mount": call(libc.mount, b"none", b"/tmp/m", b"tmpfs", 0, None),
    "unshare_cmd": cmd("unshare", "-U", "-r", "id"),
    "mount_cmd": cmd("mount", "-t", "tmpfs", "none", "/tmp/m"),
    "fork_works": cmd("true"),
    "nnp": [l for l in open("/proc/self/status") if l.startswith(("NoNewPrivs", "CapEff", "CapBnd", "Seccomp:"))],
})
""",
    )
    assert seen["unshare_user"] == ["error", "EPERM"]
    assert seen["unshare_mount"] == ["error", "EPERM"]
    assert seen["unshare_net"] == ["error", "EPERM"]
    assert seen["mount"] == ["error", "EPERM"]
    assert seen["unshare_cmd"][0] != 0 and "uid=0" not in seen["unshare_cmd"][1]
    assert seen["mount_cmd"][0] != 0
    assert seen["fork_works"] == [0, ""]
    status = dict(line.split(":", 1) for line in seen["nnp"])
    assert status["NoNewPrivs"].strip() == "1"
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0
    assert status["Seccomp"].strip() == "2"  # filter mode


def test_fork_bomb_is_contained(run: Run, short: SessionManager, keys: Keys) -> None:
    key = keys(short)
    setup = execute(run, short, key, "x = 1")
    assert setup.status == "ok", (setup.status, setup.notice)
    uid = short._sessions[key].slot.uid
    cgroups = short._sessions[key].slot.kernel.cgroups
    assert uid is not None and cgroups is not None
    before = process_count()
    started = time.monotonic()
    result = execute(
        run, short, key, "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    )
    elapsed = time.monotonic() - started
    # cell_timeout 2 s + interrupt grace 3 s, then the kernel and all its forks are killed
    assert elapsed < 2 + 3 + 3, elapsed
    assert result.status in ("timeout", "reset"), (result.status, result.notice)
    if result.status == "reset":
        assert result.notice is not None and "reset" in result.notice
        assert uid_processes(uid) == []
        assert not any(d.exists() for d in cgroups.dirs)
    else:  # the kernel survived: no forks may be left running behind it
        assert len(uid_processes(uid)) == 1
    assert process_count() < before + 20  # the bomb had 64; other work on the host may start a few
    after = execute(run, short, key, "import os\nprint(len([p for p in os.listdir('/proc') if p.isdigit()]))")
    assert after.status in ("ok", "error")
    assert execute(run, short, key, "2 + 2").logs.strip() == "4"


def test_collector_ignores_symlinks_and_fifos(run: Run, manager: SessionManager, keys: Keys, work_dir: Path) -> None:
    token = f"host-file-{secrets.token_hex(8)}"
    target = host_file(work_dir, token)
    key = keys(manager)
    started = time.monotonic()
    result = execute(
        run,
        manager,
        key,
        f"""
import os
os.symlink("/etc/shadow", "/mnt/data/report.csv")
os.symlink({str(target)!r}, "/mnt/data/leak.txt")
os.mkfifo("/mnt/data/plot.png")
os.makedirs("/mnt/data/sub", exist_ok=True)
os.mkfifo("/mnt/data/sub/pipe.csv")
open("/mnt/data/real.txt", "w").write("real")
""",
    )
    elapsed = time.monotonic() - started
    assert result.status == "ok", result.logs
    assert elapsed < 5, elapsed  # no FIFO was opened for reading
    assert [(f.path, f.data) for f in result.files] == [("real.txt", b"real")]
    # a later cell (with those entries still there) is not blocked either, and nothing leaks
    again = execute(run, manager, key, "open('/mnt/data/real.txt', 'a').write('!')")
    assert [(f.path, f.data) for f in again.files] == [("real.txt", b"real!")]
    assert target.read_text() == token


def test_collector_does_not_follow_symlinked_directories(
    run: Run, manager: SessionManager, keys: Keys, work_dir: Path
) -> None:
    token = f"host-dir-{secrets.token_hex(8)}"
    outside = work_dir / f"outside-{secrets.token_hex(4)}"
    outside.mkdir()
    outside.chmod(0o755)
    (outside / "loot.csv").write_text(token)
    result = execute(
        run,
        manager,
        keys(manager),
        f"""
import os
os.symlink({str(outside)!r}, "/mnt/data/host")   # a host path: dangling inside, real on the host
os.makedirs("/tmp/elsewhere", exist_ok=True)
os.symlink("/tmp/elsewhere", "/mnt/data/sub")     # the sandbox's /tmp is the host's /tmp outside
open("/mnt/data/sub/out.csv", "w").write("written through the link")
os.makedirs("/mnt/data/real", exist_ok=True)
open("/mnt/data/real/ok.csv", "w").write("ok")
""",
    )
    assert result.status == "ok", result.logs
    assert [(f.path, f.data) for f in result.files] == [("real/ok.csv", b"ok")]
    assert not any(token.encode() in f.data for f in result.files)


def test_huge_file_is_skipped_with_notice(run: Run, manager: SessionManager, keys: Keys) -> None:
    result = execute(
        run, manager, keys(manager), "import os\nopen('/mnt/data/huge.bin', 'wb').write(os.urandom(3 * 2**20))"
    )
    assert result.status == "ok", result.logs
    assert result.files == []
    assert result.notice is not None and "too large" in result.notice and "huge.bin" in result.notice


def test_file_size_limit_applies_inside(run: Run, manager: SessionManager, keys: Keys) -> None:
    limit = manager.config.limits.file_bytes
    seen = probe(
        run,
        manager,
        keys(manager),
        f"""
import os, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
def write():
    with open("/tmp/fill", "wb") as f:
        f.write(b"0" * ({limit} + 4096))
_report([_try(write), os.path.getsize("/tmp/fill")])
""",
    )
    assert seen[0][:2] == ["error", "EFBIG"]
    assert seen[1] <= limit


def test_input_replaces_a_planted_symlink(run: Run, manager: SessionManager, keys: Keys, work_dir: Path) -> None:
    original = f"host-original-{secrets.token_hex(8)}"
    target = host_file(work_dir, original)
    key = keys(manager)
    execute(
        run,
        manager,
        key,
        f"import os\nos.symlink({str(target)!r}, '/mnt/data/in.csv')\nos.symlink('/tmp/x', '/mnt/data/in2.csv')",
    )
    inputs = [input_file("in.csv", b"a,b\n1,2\n"), input_file("in2.csv", b"c\n3\n")]
    result = execute(
        run,
        manager,
        key,
        "import os, json\n"
        "seen = {n: [os.path.islink('/mnt/data/' + n), open('/mnt/data/' + n).read()] for n in ('in.csv', 'in2.csv')}\n"
        "print(json.dumps(seen), os.path.exists('/tmp/x'))",
        inputs,
    )
    assert result.status == "ok", result.logs
    assert result.logs.strip() == '{"in.csv": [false, "a,b\\n1,2\\n"], "in2.csv": [false, "c\\n3\\n"]} False'
    assert target.read_text() == original  # the host file behind the link is untouched
    data_dir = manager._sessions[key].slot.data_dir
    assert not (data_dir / "in.csv").is_symlink()
    assert os.stat(data_dir / "in.csv").st_uid == manager._sessions[key].slot.uid


def test_input_names_cannot_leave_the_data_dir(run: Run, manager: SessionManager, keys: Keys, work_dir: Path) -> None:
    outside = work_dir / f"target-{secrets.token_hex(4)}"
    outside.mkdir()
    key = keys(manager)
    execute(run, manager, key, f"import os\nos.symlink({str(outside)!r}, '/mnt/data/sub')")
    data_dir = manager._sessions[key].slot.data_dir
    inputs = [input_file("sub/in.csv", b"through the link"), input_file("../escape.txt", b"up")]
    result = execute(run, manager, key, "print(sorted(os.listdir('/mnt/data')))", inputs)
    assert result.status == "ok", result.logs
    assert result.logs.strip() == "['sub']"  # neither was placed
    assert list(outside.iterdir()) == []
    assert not (data_dir.parent / "escape.txt").exists()
    assert sorted(p.name for p in data_dir.iterdir()) == ["sub"]  # no temporary file left behind


def test_close_does_not_follow_symlinks_out_of_the_data_dir(
    run: Run, manager: SessionManager, keys: Keys, work_dir: Path
) -> None:
    outside = work_dir / f"keep-{secrets.token_hex(4)}"
    outside.mkdir()
    (outside / "precious.txt").write_text("precious")
    key = keys(manager)
    execute(
        run,
        manager,
        key,
        f"import os\nos.symlink({str(outside)!r}, '/mnt/data/dir')\n"
        f"os.symlink({str(outside / 'precious.txt')!r}, '/mnt/data/file')",
    )
    data_dir = manager._sessions[key].slot.data_dir
    run(manager.close(key, remove_files=True))
    assert not data_dir.exists()
    assert (outside / "precious.txt").read_text() == "precious"


def test_kernel_sockets_cannot_be_swapped(run: Run, manager: SessionManager, keys: Keys) -> None:
    """Once the kernel is up its socket directory is root's: the code cannot replace a socket with a
    symlink to a host socket that the server's client would reconnect to."""
    seen = probe(
        run,
        manager,
        keys(manager),
        """
import os, sys
ipc = os.path.dirname(sys.argv[sys.argv.index("-f") + 1])
sock = os.path.join(ipc, "k-2")
_report({
    "exists": os.path.exists(sock),
    "unlink": _try(os.unlink, sock),
    "rename": _try(os.rename, sock, os.path.join(ipc, "moved")),
    "symlink": _try(os.symlink, "/run/host.sock", os.path.join(ipc, "k-9")),
})
""",
    )
    assert seen["exists"] is True
    for action in ("unlink", "rename", "symlink"):
        assert seen[action][:2] == ["error", "EACCES"], (action, seen[action])
