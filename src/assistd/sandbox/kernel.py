"""One running kernel: started from a launch command, spoken to over ZeroMQ `ipc://` sockets.

The connection file and sockets live in a per-session directory bind-mounted into the sandbox at
the same path, so the kernel needs no network at all. Everything the kernel sends is untrusted:
output is capped, images are kept only after a magic-number check, and a cell ends when the kernel
goes idle, the wall-clock deadline passes (interrupt, then kill) or the process dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import secrets
import signal
import time
from typing import Any

import zmq
from jupyter_client.asynchronous.client import AsyncKernelClient

from assistd.sandbox.limits import CgroupSet
from assistd.sandbox.output import CellOutput

MAX_MESSAGES = 10_000
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # ZMQ drops a larger message from the kernel instead of buffering it


class KernelDied(Exception):
    """The kernel process ended (memory limit, exit(), a crash)."""


def connection_info(ipc_dir: str) -> dict[str, Any]:
    return {
        "transport": "ipc",
        "ip": os.path.join(ipc_dir, "k"),
        "shell_port": 1,
        "iopub_port": 2,
        "stdin_port": 3,
        "control_port": 4,
        "hb_port": 5,
        "key": secrets.token_hex(32),
        "signature_scheme": "hmac-sha256",
        "kernel_name": "",
    }


def write_connection_file(path: str, info: dict[str, Any], uid: int | None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(info, out)
    if uid is not None:
        os.chown(path, uid, uid)


class Kernel:
    def __init__(
        self, process: asyncio.subprocess.Process, info: dict[str, Any], cgroups: CgroupSet | None, uid: int | None
    ) -> None:
        self.process = process
        self.cgroups = cgroups
        self.uid = uid
        self.client = AsyncKernelClient()
        self.client.context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)  # for the sockets made below
        self.client.load_connection_info(info)  # type: ignore[arg-type]
        self.client.start_channels()
        self.started_at = time.monotonic()
        self.stop_requested = asyncio.Event()  # set by stop(): interrupt the running cell

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def death_reason(self) -> str:
        if self.cgroups is not None and self.cgroups.oom_killed():
            return "it ran out of memory"
        return "the Python process exited"

    async def wait_ready(self, timeout: float) -> None:
        """Ask for kernel_info until it answers (the sockets bind a moment after launch)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive:
                raise KernelDied(f"the kernel exited during start (status {self.process.returncode})")
            msg_id = self.client.kernel_info()
            try:
                while True:
                    reply = await self.client.get_shell_msg(timeout=0.25)
                    if reply["parent_header"].get("msg_id") == msg_id:
                        break
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise TimeoutError("the kernel did not answer in time") from None
                continue
            # The shell answering does not mean IOPub is subscribed yet: until it is, the kernel drops
            # what it publishes, and the first cell's output and idle status would be lost (a spurious
            # timeout, then a reset). A message on it (ipykernel's iopub_welcome, or the status around
            # kernel_info) proves it is; without one, ask again, as jupyter_client's wait_for_ready does.
            try:
                await self.client.get_iopub_msg(timeout=0.25)
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise TimeoutError("the kernel's output channel did not connect in time") from None
                continue
            # drain the iopub greeting so the first cell starts from a clean queue
            with contextlib.suppress(queue.Empty):
                while True:
                    await self.client.get_iopub_msg(timeout=0.05)
            return

    async def run(self, code: str, timeout: float, grace: float, logs_cap: int) -> tuple[CellOutput, str]:
        """Run one cell. Returns its output and how it ended: 'ok', 'error', 'timeout', 'stopped' (by
        `stop()`), or 'dead' / 'dead_timeout' (it would not stop when interrupted)."""
        out = CellOutput()
        self.stop_requested.clear()
        msg_id = self.client.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
        deadline = time.monotonic() + timeout
        interrupted: str | None = None  # why: "timeout" or "stopped"
        seen = 0
        while True:
            if not self.alive:
                return out, "dead"
            now = time.monotonic()
            if interrupted is None and (now >= deadline or self.stop_requested.is_set()):
                interrupted = "stopped" if self.stop_requested.is_set() else "timeout"
                self._interrupt()
                deadline = now + grace
            elif interrupted is not None and now >= deadline:
                return out, "dead_timeout"
            try:
                msg = await self.client.get_iopub_msg(timeout=min(0.25, max(0.01, deadline - now)))
            except queue.Empty:
                continue
            seen += 1
            if seen > MAX_MESSAGES:
                out.truncated = True
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["header"]["msg_type"], msg.get("content") or {}
            if kind == "status" and content.get("execution_state") == "idle":
                return out, interrupted or ("error" if out.error else "ok")
            out.add_message(kind, content, logs_cap)

    def stop(self) -> None:
        """Interrupt the running cell (as its timeout would), e.g. because its run was cancelled."""
        self.stop_requested.set()

    def _interrupt(self) -> None:
        """Message-mode interrupt: a signal to bwrap would not reach the kernel inside."""
        msg = self.client.session.msg("interrupt_request", {})
        self.client.control_channel.send(msg)

    async def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.client.stop_channels()
        if self.alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.cgroups is not None:
            await asyncio.to_thread(self.cgroups.kill_all)
        with contextlib.suppress(ProcessLookupError, TimeoutError):
            await asyncio.wait_for(self.process.wait(), 5)
