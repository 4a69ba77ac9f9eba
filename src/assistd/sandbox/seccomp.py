"""The seccomp deny-list given to bubblewrap (`--seccomp FD`): a compiled BPF program.

Default allow; EPERM for what a Python data-science kernel never needs and a sandbox escape often
does (mounts, namespaces, ptrace, bpf, keyrings, kernel modules, io_uring, ...). clone3 answers
ENOSYS so glibc falls back to clone, whose CLONE_NEWUSER flag is refused. Measured in
../shared/notes/sandbox.md §4.4: fork, threads, subprocess, numpy, pandas and matplotlib all work.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

DENIED = (
    "mount", "umount2", "pivot_root", "setns", "unshare", "keyctl", "add_key", "request_key", "ptrace",
    "bpf", "perf_event_open", "userfaultfd", "init_module", "finit_module", "delete_module", "kexec_load",
    "open_by_handle_at", "name_to_handle_at", "fsopen", "fsmount", "fsconfig", "fspick", "move_mount",
    "open_tree", "process_vm_readv", "process_vm_writev", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "acct", "swapon", "swapoff", "reboot", "settimeofday", "clock_settime",
    "syslog", "personality", "quotactl", "lookup_dcookie", "vhangup",
)  # fmt: skip
CLONE_NEWUSER = 0x10000000
TIOCSTI = 0x5412


def write_filter(path: Path) -> Path:
    """Compile the filter to `path` (0600). Raises RuntimeError when libseccomp is missing."""
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError) as exc:  # the binding loads libseccomp.so.2 with ctypes
        raise RuntimeError(f"seccomp is unavailable: {exc}") from exc
    deny = seccomp.ERRNO(errno.EPERM)
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED:
        try:
            f.add_rule(deny, name)
        except (RuntimeError, ValueError):  # unknown on this architecture or libseccomp version
            continue
    f.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))
    f.add_rule(deny, "ioctl", seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF, TIOCSTI))
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        f.export_bpf(out)
    return path
