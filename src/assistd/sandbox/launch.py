"""The command that starts one sandboxed kernel, built as a list (never through a shell).

Priv mode (the server runs as root): bubblewrap sets up the namespaces and mounts as root, then
`setpriv` drops to the session's own uid with no capabilities and no_new_privs before Python
starts. User-namespace mode (any other user, where unprivileged user namespaces are allowed): the
same, inside a new user namespace, as the server's own uid (bwrap sets no_new_privs there). The
layout follows ../shared/notes/sandbox.md §4.3, including its pitfalls: every parent directory is
made 0755 explicitly, tmpfs mounts come before binds nested in them, and bwrap itself gets an empty
environment so its pid 1 cannot leak the server's.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from assistd.sandbox.base import MOUNT_POINT
from assistd.sandbox.limits import JOIN_SCRIPT, Limits, prlimit_args

HOME = "/home/sandbox"
TMP = "/tmp"
HOST_PATH = "/usr/bin:/bin"


@dataclass(frozen=True)
class Runtime:
    """The sandbox Python: a venv (read-only inside) and the prefix of the interpreter it was made from."""

    venv: Path
    base_prefix: Path

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    @property
    def site_packages_to_hide(self) -> list[str]:
        """The base interpreter's own site-packages (the host's packages, the server's included)."""
        if self.base_prefix in (Path("/usr"), Path("/")):
            return []
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        hidden = self.base_prefix / "lib" / version / "site-packages"
        return [str(hidden)] if hidden.is_dir() else []


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    pass_fds: tuple[int, ...]


def kernel_argv(runtime: Runtime, connection_file: str) -> list[str]:
    return [
        runtime.python,
        "-m",
        "ipykernel_launcher",
        "-f",
        connection_file,
        "--HistoryManager.enabled=False",
        "--IPKernelApp.parent_handle=0",
    ]


def _parents(paths: list[str]) -> list[str]:
    """Every ancestor of the given absolute paths, shallowest first, without '/'."""
    found: set[str] = set()
    for path in paths:
        for parent in PurePosixPath(path).parents:
            if str(parent) != "/":
                found.add(str(parent))
    return sorted(found, key=lambda p: (p.count("/"), p))


def bwrap_argv(
    *,
    bwrap: str,
    runtime: Runtime,
    data_dir: str,
    ipc_dir: str,
    uid: int | None,
    seccomp_fd: int,
    tmp_bytes: int,
    disable_userns: bool = True,
) -> list[str]:
    """`uid`: the session's own uid (priv mode), or None for user-namespace mode."""
    binds = [str(runtime.venv), str(runtime.base_prefix), ipc_dir]
    argv = [
        bwrap,
        "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
        *(["--unshare-user", *(["--disable-userns"] if disable_userns else [])] if uid is None else []),
        "--hostname", "sandbox",
        "--die-with-parent", "--new-session", "--clearenv",
        "--seccomp", str(seccomp_fd),
    ]  # fmt: skip
    for parent in ("/etc", "/mnt", "/home"):
        argv += ["--perms", "0755", "--dir", parent]
    argv += [
        "--ro-bind", "/usr", "/usr",
        "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
        "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin",
        "--ro-bind-try", "/etc/localtime", "/etc/localtime",
        "--ro-bind-try", "/etc/fonts", "/etc/fonts",
        "--proc", "/proc", "--dev", "/dev",
        "--size", str(tmp_bytes), "--perms", "01777", "--tmpfs", TMP,
        "--perms", "01777", "--dir", HOME,
    ]  # fmt: skip
    # After the tmpfs: a parent made before it (e.g. under /tmp) would be hidden, then re-made 0700.
    fixed = {"/usr", "/etc", "/mnt", "/home", HOME, TMP, MOUNT_POINT}
    for parent in _parents(binds):
        if parent not in fixed:
            argv += ["--perms", "0755", "--dir", parent]
    argv += [
        "--bind", data_dir, MOUNT_POINT,
        "--ro-bind", str(runtime.venv), str(runtime.venv),
    ]  # fmt: skip
    if runtime.base_prefix != Path("/usr"):
        argv += ["--ro-bind", str(runtime.base_prefix), str(runtime.base_prefix)]
    for hidden in runtime.site_packages_to_hide:
        argv += ["--perms", "0755", "--tmpfs", hidden]
    argv += [
        "--bind", ipc_dir, ipc_dir,
        "--chdir", MOUNT_POINT,
        "--setenv", "HOME", HOME,
        "--setenv", "PATH", f"{runtime.venv}/bin:/usr/bin:/bin",
        "--setenv", "LANG", "C.UTF-8",
        "--setenv", "OPENBLAS_NUM_THREADS", "1",
        "--setenv", "OMP_NUM_THREADS", "1",
        "--setenv", "MKL_NUM_THREADS", "1",
        "--setenv", "MALLOC_ARENA_MAX", "2",  # fewer 64 MiB arenas: matters where RLIMIT_AS is the memory limit
        "--setenv", "MPLCONFIGDIR", f"{TMP}/matplotlib",
        "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
    ]  # fmt: skip
    if uid is not None:
        argv += [
            "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
            "--inh-caps=-all", "--bounding-set=-all", "--",
        ]  # fmt: skip
    return argv


def wrap_limits(argv: list[str], limits: Limits, cgroup_procs: list[str], prlimit: str) -> list[str]:
    """Join the session's cgroups before exec, then apply rlimits: every descendant is born limited."""
    head = ["/bin/sh", "-c", JOIN_SCRIPT, "sh", str(len(cgroup_procs)), *cgroup_procs]
    return [*head, prlimit, *prlimit_args(limits, with_memory=not cgroup_procs), "--", *argv]
