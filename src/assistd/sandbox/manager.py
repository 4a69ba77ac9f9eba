"""Sessions: one stateful kernel per thread, started on first use, ended when idle or too old.

The manager owns every kernel of this process: it launches them (bwrap, or an explicitly unsafe
local mode), keeps a small warm pool so a new thread's first cell does not wait for a cold start,
bounds how many cells run at once, and reaps idle sessions. A session's files outlive its kernel:
they stay in the thread's data directory until the thread is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from assistd.sandbox import files as sandbox_files
from assistd.sandbox.base import MOUNT_POINT, Execution, InputFile, SandboxUnavailable
from assistd.sandbox.environment import runtime as load_runtime
from assistd.sandbox.kernel import Kernel, KernelDied, connection_info, write_connection_file
from assistd.sandbox.launch import HOST_PATH, Launch, Runtime, bwrap_argv, kernel_argv, wrap_limits
from assistd.sandbox.limits import Cgroups, CgroupSet, Limits
from assistd.sandbox.output import execution, kept_status
from assistd.sandbox.seccomp import write_filter

log = logging.getLogger("assistd.sandbox")

Mode = Literal["bwrap", "unsafe-local"]
HOST_ENV = {"PATH": HOST_PATH}
KEPT = "variables from earlier cells are gone; files in /mnt/data were kept"


@dataclass(frozen=True)
class SandboxConfig:
    root: Path  # sessions' data, sockets and logs
    python: Path  # the sandbox Python environment (environment.build)
    mode: Mode = "bwrap"
    bwrap: str = "bwrap"
    limits: Limits = field(default_factory=lambda: Limits(1 << 30, 256, 100 << 20, 3600))
    tmp_bytes: int = 256 << 20
    cell_timeout: float = 60.0
    interrupt_grace: float = 3.0
    start_timeout: float = 30.0
    idle_seconds: float = 1800.0
    max_lifetime_seconds: float = 3600.0
    max_sessions: int = 32
    pool_size: int = 1
    max_running: int = 2
    uid_base: int = 200_000
    max_file_bytes: int = 50 << 20
    max_cell_files_bytes: int = 100 << 20
    max_logs_chars: int = 20_000
    reap_interval: float = 30.0


@dataclass
class _Kernel:
    kernel: Kernel
    data_dir: Path
    ipc_dir: Path
    uid: int | None


@dataclass
class _Session:
    slot: _Kernel
    last_used: float = field(default_factory=time.monotonic)


class SessionManager:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._sessions: dict[str, _Session] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._ended: dict[str, str] = {}  # session → why its kernel went (told on the next cell)
        self._placed: dict[str, set[str]] = {}
        self._pool: list[_Kernel] = []
        self._uids: set[int] = set()
        self._running = asyncio.Semaphore(config.max_running)
        self._tasks: set[asyncio.Task[None]] = set()
        self._filling = False
        self._reaper: asyncio.Task[None] | None = None
        self._runtime: Runtime | None = None
        self._seccomp: Path | None = None
        self._cgroups: Cgroups | None = None
        self._why_not: str | None = None
        self._checked = False
        self._disable_userns = True

    def live_sessions(self) -> int:
        """Sessions with a kernel in this process (the warm pool's idle kernels not counted): for /metrics."""
        return len(self._sessions)

    # --- availability -------------------------------------------------------------------------

    @property
    def data_path(self) -> str:
        return MOUNT_POINT if self.config.mode == "bwrap" else "the current working directory"

    def unavailable(self) -> str | None:
        if not self._checked or self._why_not is not None:  # retried: the operator may have fixed it
            self._why_not = self._check()
            self._checked = True
        return self._why_not

    def _check(self) -> str | None:
        try:
            self._runtime = load_runtime(self.config.python)
        except (FileNotFoundError, ValueError, KeyError) as exc:
            return str(exc)
        if self.config.mode == "unsafe-local":
            log.warning("code_interpreter runs model code WITHOUT a sandbox (ASSISTD_SANDBOX=unsafe-local)")
            return None
        hint = "or set ASSISTD_SANDBOX=unsafe-local to run code without isolation (unsafe)."
        if shutil.which(self.config.bwrap) is None:
            return f"code_interpreter needs bubblewrap (`apt-get install bubblewrap`), {hint}"
        if os.geteuid() != 0:
            probe = self._userns_probe()
            if probe is not None:
                return (
                    "code_interpreter's sandbox needs the server to run as root (each session then gets its own "
                    f"uid) or unprivileged user namespaces, which this host refuses ({probe}); {hint}"
                )
        if shutil.which("setpriv") is None or shutil.which("prlimit") is None:
            return f"code_interpreter needs setpriv and prlimit (util-linux), {hint}"
        try:
            self._seccomp = write_filter(self.config.root / "seccomp.bpf")
        except RuntimeError as exc:
            return f"code_interpreter needs seccomp: {exc}; {hint}"
        self._cgroups = Cgroups()
        if self._cgroups.usable:
            self._cgroups.sweep()
        else:
            log.warning("no usable cgroups: sandbox memory and process limits fall back to rlimits")
        return None

    def _userns_probe(self) -> str | None:
        """Whether bwrap can make a user namespace here (Debian allows it; Ubuntu >= 23.10 restricts it)."""
        bwrap = shutil.which(self.config.bwrap) or self.config.bwrap
        try:
            helped = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10, env=HOST_ENV)
            self._disable_userns = "--disable-userns" in helped.stdout
            done = subprocess.run(
                [bwrap, "--unshare-user", "--ro-bind", "/", "/", "true"],
                capture_output=True,
                text=True,
                timeout=10,
                env=HOST_ENV,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        return None if done.returncode == 0 else (done.stderr.strip() or f"exit status {done.returncode}")

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        reason = self.unavailable()
        if reason is not None:
            log.warning("code_interpreter is unavailable: %s", reason)
            return
        self._boot()

    def _boot(self) -> None:
        if self._reaper is not None:
            return
        for sub in ("threads", "slots", "run", "logs"):
            (self.config.root / sub).mkdir(parents=True, exist_ok=True)
            (self.config.root / sub).chmod(0o711 if sub in ("threads", "run") else 0o700)
        self._reaper = asyncio.create_task(self._reap_loop())
        self._fill_pool()

    async def aclose(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for key in list(self._sessions):
            await self._end(key, self._sessions[key], "the server stopped")
        pool, self._pool = self._pool, []
        for slot in pool:
            await self._discard(slot)
        if self._cgroups is not None and self._cgroups.usable:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self._cgroups.sweep)

    async def interrupt(self, session: str) -> None:
        """Interrupt the session's running cell, if any (without waiting for the session's lock)."""
        current = self._sessions.get(session)
        if current is not None:
            current.slot.kernel.stop()

    async def close(self, session: str, *, remove_files: bool) -> None:
        async with self._lock(session):
            current = self._sessions.get(session)
            if current is not None:
                await self._end(session, current, None)
            self._ended.pop(session, None)
            if remove_files:
                self._placed.pop(session, None)
                self._locks.pop(session, None)
                await asyncio.to_thread(shutil.rmtree, self._thread_dir(session), True)

    async def remove_file(self, session: str, path: str) -> None:
        """Delete one file from the session's data directory (a container's file deleted through the API)."""
        async with self._lock(session):
            await asyncio.to_thread(sandbox_files.remove, str(self._thread_dir(session)), path)

    # --- running code -------------------------------------------------------------------------

    async def execute(self, session: str, code: str, inputs: list[InputFile]) -> Execution:
        reason = self.unavailable()
        if reason is not None:
            raise SandboxUnavailable(reason)
        self._boot()
        async with self._lock(session):
            notices: list[str] = []
            current = self._sessions.get(session)
            if current is not None and not current.slot.kernel.alive:
                await self._end(session, current, current.slot.kernel.death_reason())
                current = None
            if current is None:
                if session in self._ended:
                    notices.append(f"The Python session was reset because {self._ended.pop(session)}: {KEPT}.")
                current = await self._open(session)
            slot = current.slot
            await self._place(session, slot, inputs)
            async with self._running:
                before = await asyncio.to_thread(sandbox_files.snapshot, str(slot.data_dir))
                output, how = await slot.kernel.run(
                    code, self.config.cell_timeout, self.config.interrupt_grace, self.config.max_logs_chars
                )
                current.last_used = time.monotonic()
            written, skipped = await asyncio.to_thread(
                sandbox_files.changed_files,
                str(slot.data_dir),
                before,
                self.config.max_file_bytes,
                self.config.max_cell_files_bytes,
            )
        status: Literal["ok", "error", "timeout", "stopped", "reset"]
        limit = f"{self.config.cell_timeout:g} s"
        if how in ("dead", "dead_timeout"):
            why = "the cell did not stop when interrupted" if how == "dead_timeout" else slot.kernel.death_reason()
            async with self._lock(session):
                if self._sessions.get(session) is current:
                    await self._end(session, current, None)
            notices.append(f"The Python session was reset because {why}: {KEPT}.")
            status = "reset"
        else:
            status = kept_status(how, limit, notices)
        return execution(status, output, written, skipped, notices)

    # --- sessions -----------------------------------------------------------------------------

    def _lock(self, session: str) -> asyncio.Lock:
        return self._locks.setdefault(session, asyncio.Lock())

    def _thread_dir(self, session: str) -> Path:
        return self.config.root / "threads" / sandbox_files.safe_name(session, "invalid")

    async def _open(self, session: str) -> _Session:
        while len(self._sessions) >= self.config.max_sessions:
            oldest = min(self._sessions, key=lambda k: self._sessions[k].last_used)
            async with contextlib.AsyncExitStack() as stack:
                if oldest != session:
                    await stack.enter_async_context(self._lock(oldest))
                if oldest in self._sessions:
                    await self._end(oldest, self._sessions[oldest], "too many sessions were open on the server")
        target = self._thread_dir(session)
        slot = None
        while self._pool and slot is None:
            candidate = self._pool.pop(0)
            if candidate.kernel.alive:
                slot = candidate
            else:
                await self._discard(candidate)
        if slot is not None:
            await asyncio.to_thread(self._adopt, slot, target)
        else:
            target.mkdir(parents=True, exist_ok=True)
            slot = await self._launch(target)
        self._fill_pool()
        opened = _Session(slot)
        self._sessions[session] = opened
        return opened

    @staticmethod
    def _adopt(slot: _Kernel, target: Path) -> None:
        """Hand a pooled kernel's empty data dir to a thread. The kernel's bind mount follows the
        directory itself, so the thread's kept files move into it and it takes the thread's name."""
        if target.exists():
            for entry in os.listdir(target):
                os.rename(target / entry, slot.data_dir / entry)
            target.rmdir()
        os.rename(slot.data_dir, target)
        slot.data_dir = target
        if slot.uid is not None:
            sandbox_files.chown_tree(str(target), slot.uid)

    async def _place(self, session: str, slot: _Kernel, inputs: list[InputFile]) -> None:
        placed = self._placed.setdefault(session, set())
        for item in inputs:
            if item.file_id in placed:
                continue
            if await sandbox_files.place(str(slot.data_dir), item.name, item.read(), slot.uid):
                placed.add(item.file_id)

    async def _end(self, session: str, current: _Session, reason: str | None) -> None:
        if self._sessions.get(session) is current:
            del self._sessions[session]
        if reason is not None:
            self._ended[session] = reason
        await self._discard(current.slot, keep_data=True)

    async def _discard(self, slot: _Kernel, *, keep_data: bool = False) -> None:
        await slot.kernel.kill()
        await asyncio.to_thread(shutil.rmtree, slot.ipc_dir, True)
        if not keep_data:
            await asyncio.to_thread(shutil.rmtree, slot.data_dir, True)
        if slot.uid is not None:
            self._uids.discard(slot.uid)

    # --- kernels ------------------------------------------------------------------------------

    def _fill_pool(self) -> None:
        if self._filling or len(self._pool) >= self.config.pool_size:
            return
        self._filling = True

        async def fill() -> None:
            try:
                while len(self._pool) < self.config.pool_size:
                    slot_dir = self.config.root / "slots" / secrets.token_hex(8)
                    slot_dir.mkdir(parents=True)
                    try:
                        self._pool.append(await self._launch(slot_dir))
                    except Exception:
                        log.exception("could not start a pooled sandbox kernel")
                        shutil.rmtree(slot_dir, True)
                        return
                    except BaseException:  # cancelled by aclose()
                        shutil.rmtree(slot_dir, True)
                        raise
            finally:
                self._filling = False

        self._spawn(fill())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _new_uid(self) -> int | None:
        if os.geteuid() != 0 or self.config.mode == "unsafe-local":
            return None
        while True:
            uid = self.config.uid_base + secrets.randbelow(1 << 16)
            if uid not in self._uids and not _uid_running(uid):  # e.g. another server on this host
                self._uids.add(uid)
                return uid

    async def _launch(self, data_dir: Path) -> _Kernel:
        uid = self._new_uid()
        name = secrets.token_hex(6)
        ipc_dir = self.config.root / "run" / name
        ipc_dir.mkdir(mode=0o700)
        cgroups: CgroupSet | None = None
        try:
            if uid is not None:
                os.chown(ipc_dir, uid, uid)
                await asyncio.to_thread(sandbox_files.chown_tree, str(data_dir), uid)
            info = connection_info(str(ipc_dir))
            conn_file = str(ipc_dir / "kernel.json")
            write_connection_file(conn_file, info, uid)
            if self._cgroups is not None and self._cgroups.usable:
                cgroups = self._cgroups.create(name, self.config.limits)
            launch = self._command(data_dir, ipc_dir, conn_file, uid, cgroups)
            log_path = self.config.root / "logs" / f"{name}.log"
            with open(log_path, "ab") as err:
                try:
                    process = await asyncio.create_subprocess_exec(
                        *launch.argv,
                        env=launch.env,
                        cwd=launch.cwd,
                        pass_fds=launch.pass_fds,
                        start_new_session=True,
                        stdin=asyncio.subprocess.DEVNULL,
                        stdout=asyncio.subprocess.DEVNULL,
                        stderr=err,
                    )
                finally:
                    for fd in launch.pass_fds:
                        os.close(fd)
            kernel = Kernel(process, info, cgroups, uid)
        except BaseException:
            if cgroups is not None:
                cgroups.kill_all()
            shutil.rmtree(ipc_dir, True)
            if uid is not None:
                self._uids.discard(uid)
            raise
        slot = _Kernel(kernel, data_dir, ipc_dir, uid)
        try:
            await kernel.wait_ready(self.config.start_timeout)
        except (KernelDied, TimeoutError) as exc:
            tail = log_path.read_bytes()[-2000:].decode(errors="replace")
            await self._discard(slot, keep_data=True)
            log.error("sandbox kernel failed to start: %s\n%s", exc, tail)
            raise SandboxUnavailable(f"The Python sandbox failed to start: {exc}.") from exc
        except BaseException:  # cancelled while starting (aclose, a cancelled run): do not leak the kernel
            await self._discard(slot, keep_data=True)
            raise
        if uid is not None:
            # Every socket is bound now: take the directory back, so the code cannot swap a socket for a
            # symlink to some host socket that the client (root) would reconnect to.
            os.chown(ipc_dir, 0, 0)
            ipc_dir.chmod(0o755)
        return slot

    def _command(
        self, data_dir: Path, ipc_dir: Path, conn_file: str, uid: int | None, cgroups: CgroupSet | None
    ) -> Launch:
        assert self._runtime is not None
        procs = cgroups.procs_files if cgroups is not None else []
        kernel = kernel_argv(self._runtime, conn_file)
        if self.config.mode == "unsafe-local":
            # As the server's own user, with rlimits and an empty environment: no isolation at all.
            env = {"PATH": f"{self._runtime.venv}/bin:{HOST_PATH}", "HOME": str(ipc_dir)}
            return Launch(wrap_limits(kernel, self.config.limits, procs, "prlimit"), env, str(data_dir), ())
        assert self._seccomp is not None
        seccomp_fd = os.open(self._seccomp, os.O_RDONLY)
        argv = bwrap_argv(
            bwrap=shutil.which(self.config.bwrap) or self.config.bwrap,
            runtime=self._runtime,
            data_dir=str(data_dir),
            ipc_dir=str(ipc_dir),
            uid=uid,
            seccomp_fd=seccomp_fd,
            tmp_bytes=self.config.tmp_bytes,
            disable_userns=self._disable_userns,
        )
        command = wrap_limits([*argv, *kernel], self.config.limits, procs, "prlimit")
        return Launch(command, {"PATH": HOST_PATH}, None, (seccomp_fd,))

    # --- expiry -------------------------------------------------------------------------------

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.reap_interval)
            try:
                await self.reap()
            except Exception:
                log.exception("sandbox reaper failed")

    async def reap(self) -> None:
        """End sessions idle too long, past their lifetime, or whose kernel died."""
        now = time.monotonic()
        for key, current in list(self._sessions.items()):
            lock = self._lock(key)
            if lock.locked():
                continue  # a cell is running
            kernel = current.slot.kernel
            if not kernel.alive:
                reason = kernel.death_reason()
            elif now - current.last_used > self.config.idle_seconds:
                reason = f"it was idle for more than {self.config.idle_seconds / 60:g} minutes"
            elif now - kernel.started_at > self.config.max_lifetime_seconds:
                reason = f"sessions last at most {self.config.max_lifetime_seconds / 60:g} minutes"
            else:
                continue
            async with lock:
                if self._sessions.get(key) is current:
                    await self._end(key, current, reason)


def _uid_running(uid: int) -> bool:
    """Whether any process on the host runs as `uid` (a /proc directory is owned by its process's uid)."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    return True
    return False
