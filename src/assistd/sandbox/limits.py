"""Resource limits for one session: cgroups where this process may create them, rlimits always.

Every process of a session must be born inside its cgroups (on cgroup v1, moving a process later
does not move its children), so the launch command starts with a tiny shell that writes its own
pid into each cgroup's `cgroup.procs` and then execs `prlimit … -- bwrap …`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("assistd.sandbox")

CGROUP_ROOT = Path("/sys/fs/cgroup")
JOIN_SCRIPT = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 97; shift; n=$((n-1)); done; exec "$@"'


@dataclass(frozen=True)
class Limits:
    memory_bytes: int
    pids: int
    file_bytes: int
    cpu_seconds: int  # lifetime CPU of the kernel: a backstop; cells are bounded by wall clock
    cpus: float = 1.0  # CPU share while busy (a cpu-cgroup quota), so one session cannot take every core
    open_files: int = 1024
    cpu_period_us: int = 100_000


def _own_cgroup(controller: str) -> str | None:
    """This process's path in a v1 controller's hierarchy ("0::/path" on v2 when controller is '')."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                return path
    return None


class CgroupSet:
    """The memory and pids cgroups of one session (either v1 directories or one v2 directory)."""

    def __init__(self, dirs: list[Path], version: int) -> None:
        self.dirs = dirs
        self.version = version

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def oom_killed(self) -> bool:
        for d in self.dirs:
            source = d / ("memory.oom_control" if self.version == 1 else "memory.events")
            with contextlib.suppress(OSError):
                for line in source.read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value or 0) > 0:
                        return True
        return False

    def kill_all(self) -> None:
        """SIGKILL everything left in the session's cgroups, then remove them."""
        deadline = time.monotonic() + 5
        for d in self.dirs:
            while time.monotonic() < deadline:
                try:
                    pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
                except OSError:
                    break
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.01)
            with contextlib.suppress(OSError):
                d.rmdir()


class Cgroups:
    """Creates per-session cgroups under this process's own, if the host lets it (v1 or v2)."""

    def __init__(self, root: Path = CGROUP_ROOT) -> None:
        self.root = root
        self.version = 0
        self.bases: dict[str, Path] = {}
        v1 = {c: _own_cgroup(c) for c in ("memory", "pids")}
        if all(v1.values()) and all((root / c).is_dir() for c in v1):
            self.version = 1
            self.bases = {c: root / c / str(path).lstrip("/") for c, path in v1.items()}
            cpu = _own_cgroup("cpu")
            if cpu is not None and (root / "cpu").is_dir():  # optional: fairness, not safety
                self.bases["cpu"] = root / "cpu" / cpu.lstrip("/")
        elif (root / "cgroup.controllers").exists():
            own = _own_cgroup("")
            if own is not None:
                self.version = 2
                self.bases = {"unified": root / own.lstrip("/")}
        self.usable = self.version != 0 and self._probe()

    def _probe(self) -> bool:
        try:
            test = self.create("probe", Limits(64 << 20, 16, 1 << 20, 1))
        except OSError as exc:
            log.warning("cgroups are not usable here (%s); sessions get rlimits only", exc)
            return False
        test.kill_all()
        return True

    def create(self, name: str, limits: Limits) -> CgroupSet:
        dirs: list[Path] = []
        try:
            if self.version == 1:
                memory = self.bases["memory"] / f"assistd-{os.getpid()}-{name}"
                pids = self.bases["pids"] / f"assistd-{os.getpid()}-{name}"
                for d in (memory, pids):
                    d.mkdir(exist_ok=True)
                    dirs.append(d)
                (memory / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
                with contextlib.suppress(OSError):  # only where swap accounting is on
                    (memory / "memory.memsw.limit_in_bytes").write_text(str(limits.memory_bytes))
                (pids / "pids.max").write_text(str(limits.pids))
                if "cpu" in self.bases:
                    with contextlib.suppress(OSError):
                        cpu = self.bases["cpu"] / f"assistd-{os.getpid()}-{name}"
                        cpu.mkdir(exist_ok=True)
                        dirs.append(cpu)
                        (cpu / "cpu.cfs_period_us").write_text(str(limits.cpu_period_us))
                        (cpu / "cpu.cfs_quota_us").write_text(str(int(limits.cpus * limits.cpu_period_us)))
            else:
                d = self.bases["unified"] / f"assistd-{os.getpid()}-{name}"
                d.mkdir(exist_ok=True)
                dirs.append(d)
                (d / "memory.max").write_text(str(limits.memory_bytes))
                with contextlib.suppress(OSError):
                    (d / "memory.swap.max").write_text("0")
                (d / "pids.max").write_text(str(limits.pids))
                with contextlib.suppress(OSError):  # only where the cpu controller is delegated
                    (d / "cpu.max").write_text(f"{int(limits.cpus * limits.cpu_period_us)} {limits.cpu_period_us}")
        except OSError:
            CgroupSet(dirs, self.version).kill_all()
            raise
        return CgroupSet(dirs, self.version)

    def sweep(self) -> None:
        """Remove cgroups left by a server process that died (their kernels with them). Names carry
        the owner's pid (`assistd-<pid>-<session>`), so live servers on the same host keep theirs."""
        for base in self.bases.values():
            with contextlib.suppress(OSError):
                for d in base.iterdir():
                    owner = d.name.split("-")[1] if d.name.startswith("assistd-") else ""
                    if d.is_dir() and owner.isdigit() and not _alive(int(owner)):
                        CgroupSet([d], self.version).kill_all()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prlimit_args(limits: Limits, *, with_memory: bool) -> list[str]:
    """`prlimit` options; RLIMIT_AS stands in for the memory cgroup when there is none."""
    args = [
        f"--nofile={limits.open_files}",
        f"--nproc={limits.pids}",
        f"--fsize={limits.file_bytes}",
        "--core=0",
        f"--cpu={limits.cpu_seconds}",
    ]
    if with_memory:
        args.append(f"--as={limits.memory_bytes}")
    return args
