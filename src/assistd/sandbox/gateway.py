"""code_interpreter on a Jupyter Kernel Gateway / Enterprise Gateway: kernels on other hosts or pods.

One kernel per session (thread), recorded in the database (stores/sandbox_sessions.py) so that any
replica reaches the same Python state: a replica that has not seen the session looks its kernel up,
connects to its websocket and runs the cell there. A kernel that is gone (the gateway restarted,
culled it, or its pod ended) is replaced and the cell's output says the session was reset; so is a
kernel the gateway restarted after its process died (the backend marks each kernel process it set up,
and checks the mark before every cell).

Files travel through the kernel (gateway_code.py): inputs are written into the session's directory on
the gateway side by code in base64 chunks; after each cell, code lists the directory and prints back
the files that are new or changed, under the same size caps as the local backend. Kernels outlive the
replica that started them (aclose() only disconnects): the gateway's own culling ends idle ones.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import secrets
from dataclasses import dataclass
from typing import Literal

from assistd.db.database import Database
from assistd.sandbox import gateway_code
from assistd.sandbox.base import Execution, InputFile, OutputFile, SandboxUnavailable
from assistd.sandbox.files import safe_name
from assistd.sandbox.gateway_client import (
    GatewayClient,
    GatewayError,
    GatewayOptions,
    HelperFailed,
    KernelChannels,
    KernelGone,
)
from assistd.sandbox.output import execution, kept_status
from assistd.stores import sandbox_sessions as store

log = logging.getLogger("assistd.sandbox.gateway")

GONE = "its kernel on the sandbox gateway had ended (the gateway restarted or culled it)"
RESTARTED = "its kernel on the sandbox gateway restarted"
LOST = "variables from earlier cells are gone, and files written by earlier cells may be gone too"
HELPER_CHARS = 1_000_000  # what a listing or a placement may print


@dataclass(frozen=True)
class GatewayConfig:
    options: GatewayOptions
    data_path: str = "/mnt/data"  # may contain {session}: a directory per session on a shared gateway host
    cell_timeout: float = 60.0
    interrupt_grace: float = 3.0
    max_file_bytes: int = 50 << 20
    max_cell_files_bytes: int = 100 << 20
    max_logs_chars: int = 20_000


class GatewaySandbox:
    def __init__(self, config: GatewayConfig, db: Database) -> None:
        self.config = config
        self.db = db
        self._client: GatewayClient | None = None
        self._channels: dict[str, KernelChannels] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._stops: dict[str, asyncio.Event] = {}

    # --- the Sandbox protocol -----------------------------------------------------------------

    @property
    def data_path(self) -> str:
        path = self.config.data_path
        return "the current working directory" if "{session}" in path else path

    def unavailable(self) -> str | None:
        if not self.config.options.url:
            return "code_interpreter's gateway backend needs ASSISTD_SANDBOX_GATEWAY_URL (the kernel gateway's URL)."
        return None

    async def start(self) -> None:
        reason = self.unavailable()
        if reason is not None:
            log.warning("code_interpreter is unavailable: %s", reason)

    async def aclose(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.aclose()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def interrupt(self, session: str) -> None:
        stop = self._stops.get(session)
        if stop is not None:
            stop.set()

    async def close(self, session: str, *, remove_files: bool) -> None:
        async with self._lock(session):
            channel = self._channels.pop(session, None)
            record = await store.lookup(self.db, session)
            if record is None:
                if channel is not None:
                    await channel.aclose()
                return
            if remove_files and "{session}" in self.config.data_path:
                with contextlib.suppress(GatewayError, KernelGone, HelperFailed):
                    if channel is None or not channel.open or channel.kernel_id != record.kernel_id:
                        if channel is not None:
                            await channel.aclose()
                            channel = None
                        channel = await self._gateway().channels(record.kernel_id)
                    token = _token()
                    await channel.helper(gateway_code.remove(token, self._root(session)), token, 30, HELPER_CHARS)
            if channel is not None:
                await channel.aclose()
            with contextlib.suppress(GatewayError):
                await self._gateway().delete_kernel(record.kernel_id)
            await store.remove(self.db, session, record.kernel_id)
            if remove_files:
                self._locks.pop(session, None)

    async def remove_file(self, session: str, path: str) -> None:
        """Delete one file from the session's directory through its kernel (a container file deleted
        through the API). Nothing to do when the session has no kernel; a gateway error is logged."""
        parts = _clean_path(path).split("/")
        if parts == [""]:
            return
        try:
            async with self._lock(session):
                record = await store.lookup(self.db, session)
                if record is None:
                    return
                channel = self._channels.get(session)
                if channel is None or not channel.open or channel.kernel_id != record.kernel_id:
                    if channel is not None:
                        self._channels.pop(session, None)
                        await channel.aclose()
                    channel = await self._gateway().channels(record.kernel_id)
                    self._channels[session] = channel
                token = _token()
                code = gateway_code.remove_file(token, self._root(session), parts)
                await channel.helper(code, token, 30, HELPER_CHARS)
        except (GatewayError, KernelGone, HelperFailed) as exc:
            log.warning("could not delete %s from gateway session %s: %s", path, session, exc)

    async def execute(self, session: str, code: str, inputs: list[InputFile]) -> Execution:
        reason = self.unavailable()
        if reason is not None:
            raise SandboxUnavailable(reason)
        try:
            async with self._lock(session):
                # from here on an interrupt (the run was cancelled) stops the cell, even one not sent yet
                self._stops[session] = asyncio.Event()
                try:
                    return await self._execute(session, code, inputs)
                finally:
                    self._stops.pop(session, None)
        except GatewayError as exc:
            raise SandboxUnavailable(f"The Python sandbox is unavailable: {exc}.") from exc

    # --- running a cell -----------------------------------------------------------------------

    async def _execute(self, session: str, code: str, inputs: list[InputFile]) -> Execution:
        notices: list[str] = []
        root = self._root(session)
        for attempt in range(3):
            channel, placed, fresh_kernel = await self._session_channel(session, notices)
            try:
                before, placed = await self._prepare(session, channel, root, inputs, placed, fresh_kernel, notices)
                break
            except (KernelGone, HelperFailed) as exc:
                # gone between the lookup and the first helper, or wedged: replace it and start again
                log.warning("sandbox gateway kernel %s unusable (%s); replacing it", channel.kernel_id, exc)
                await self._drop(session, channel, delete=True)
                if attempt == 2:
                    raise SandboxUnavailable(f"The Python sandbox could not set up a session: {exc}.") from exc
                if not any(GONE in n for n in notices):
                    notices.append(f"The Python session was reset because {GONE}: {LOST}.")
        stop = self._stops.setdefault(session, asyncio.Event())
        output, how = await channel.run(
            code, self.config.cell_timeout, self.config.interrupt_grace, self.config.max_logs_chars, stop
        )
        written: list[OutputFile] = []
        skipped: list[str] = []
        status: Literal["ok", "error", "timeout", "stopped", "reset"]
        limit = f"{self.config.cell_timeout:g} s"
        if how in ("dead", "dead_timeout"):
            why = "the cell did not stop when interrupted" if how == "dead_timeout" else "the Python process exited"
            await self._drop(session, channel, delete=True)
            notices.append(f"The Python session was reset because {why}: {LOST}.")
            status = "reset"
        else:
            try:
                written, skipped = await self._collect(channel, root, before)
            except (KernelGone, HelperFailed) as exc:
                log.warning("could not collect files from gateway kernel %s: %s", channel.kernel_id, exc)
                notices.append("Files the cell wrote could not be returned.")
            status = kept_status(how, limit, notices)
        return execution(status, output, written, skipped, notices)

    async def _session_channel(self, session: str, notices: list[str]) -> tuple[KernelChannels, frozenset[str], bool]:
        """The session's kernel connection, the input files already in it, and whether the kernel is new.
        Finds the kernel in the database, or starts one; replaces one that is gone (with a notice)."""
        gateway = self._gateway()
        record = await store.lookup(self.db, session)
        cached = self._channels.get(session)
        if record is not None and cached is not None and cached.kernel_id == record.kernel_id and cached.open:
            return cached, record.placed, False
        if cached is not None:
            self._channels.pop(session, None)
            await cached.aclose()
        if record is not None:
            try:
                channel = await gateway.channels(record.kernel_id)
            except KernelGone:
                notices.append(f"The Python session was reset because {GONE}: {LOST}.")
                new_id = await gateway.start_kernel()
                record = await store.replace(self.db, session, record.kernel_id, new_id)
                if record.kernel_id != new_id:  # another replica replaced it first
                    await gateway.delete_kernel(new_id)
                channel = await gateway.channels(record.kernel_id)
                self._channels[session] = channel
                return channel, record.placed, record.kernel_id == new_id
            self._channels[session] = channel
            return channel, record.placed, False
        new_id = await gateway.start_kernel()
        record = await store.claim(self.db, session, new_id)
        if record.kernel_id != new_id:  # another replica started the session's kernel at the same time
            await gateway.delete_kernel(new_id)
        channel = await gateway.channels(record.kernel_id)
        self._channels[session] = channel
        return channel, record.placed, record.kernel_id == new_id

    async def _prepare(
        self,
        session: str,
        channel: KernelChannels,
        root: str,
        inputs: list[InputFile],
        placed: frozenset[str],
        fresh_kernel: bool,
        notices: list[str],
    ) -> tuple[dict[str, list[int]], frozenset[str]]:
        """Set the kernel up if it is not (a restarted one: notice), copy in missing inputs, and list the
        directory as it is before the cell."""
        options = self.config.options
        token = _token()
        timeout = options.start_timeout if fresh_kernel else max(options.connect_timeout, 30.0)
        state = _one(
            await channel.helper(gateway_code.prepare(token, root, channel.kernel_id), token, timeout, HELPER_CHARS)
        )
        if state.get("fresh") is True and not fresh_kernel:
            # the gateway restarted the kernel's process (it died between cells): same id, nothing in it
            notices.append(f"The Python session was reset because {RESTARTED}: {LOST}.")
            placed = frozenset()
        files = state.get("files")
        added: set[str] = set()
        for item in inputs:
            if item.file_id in placed or item.file_id in added:
                continue
            if await self._place(channel, root, item):
                added.add(item.file_id)
        if added:
            await store.add_placed(self.db, session, channel.kernel_id, added)
            token = _token()
            listing = _one(await channel.helper(gateway_code.snapshot(token, root), token, 30, HELPER_CHARS))
            files = listing.get("files")
        if not isinstance(files, dict):
            raise HelperFailed("the kernel listed its files in an unexpected form")
        return files, placed | added

    async def _place(self, channel: KernelChannels, root: str, item: InputFile) -> bool:
        name = item.name
        if name in ("", ".", "..") or "/" in name or "\x00" in name:
            return False
        temp = f".in-{secrets.token_hex(8)}"
        pending = b""
        first = True

        async def send(data: bytes, last: bool) -> bool:
            token = _token()
            code = gateway_code.place(token, root, temp, name, data, first=first, last=last)
            return _one(await channel.helper(code, token, 60, HELPER_CHARS)).get("ok") is True

        async for chunk in item.read():
            pending += chunk
            while len(pending) > gateway_code.CHUNK:
                await send(pending[: gateway_code.CHUNK], False)
                pending, first = pending[gateway_code.CHUNK :], False
        return await send(pending, True)

    async def _collect(
        self, channel: KernelChannels, root: str, before: dict[str, list[int]]
    ) -> tuple[list[OutputFile], list[str]]:
        """New or changed files, read back through the kernel; checked again here against the caps."""
        token = _token()
        cap = self.config.max_cell_files_bytes
        code = gateway_code.collect(token, root, before, self.config.max_file_bytes, cap)
        values = await channel.helper(code, token, max(60.0, self.config.cell_timeout), cap * 4 // 3 + HELPER_CHARS)
        files: list[OutputFile] = []
        skipped: list[str] = []
        current: tuple[str, list[bytes]] | None = None
        total = 0

        def finish() -> None:
            if current is not None:
                files.append(OutputFile(current[0], b"".join(current[1])))

        for value in values:
            if not isinstance(value, dict):
                continue
            if isinstance(value.get("file"), str):
                finish()
                current = (_clean_path(value["file"]), [])
            elif isinstance(value.get("part"), str) and current is not None:
                try:
                    data = base64.b64decode(value["part"], validate=True)
                except (binascii.Error, ValueError):
                    continue
                total += len(data)
                if total > cap or sum(map(len, current[1])) + len(data) > self.config.max_file_bytes:
                    raise HelperFailed("the kernel returned more than the caps allow")
                current[1].append(data)
            elif isinstance(value.get("skipped"), list):
                skipped = [str(p) for p in value["skipped"]]
        finish()
        return [f for f in files if f.path], skipped

    # --- helpers ------------------------------------------------------------------------------

    def _gateway(self) -> GatewayClient:
        if self._client is None:
            self._client = GatewayClient(self.config.options)
        return self._client

    def _lock(self, session: str) -> asyncio.Lock:
        return self._locks.setdefault(session, asyncio.Lock())

    def _root(self, session: str) -> str:
        return self.config.data_path.replace("{session}", safe_name(session, "invalid"))

    async def _drop(self, session: str, channel: KernelChannels, *, delete: bool) -> None:
        """Forget a kernel that cannot be used: the next cell starts a fresh one (no second notice)."""
        if self._channels.get(session) is channel:
            del self._channels[session]
        await channel.aclose()
        if delete:
            await self._gateway().delete_kernel(channel.kernel_id)
            await store.remove(self.db, session, channel.kernel_id)


def _one(values: list[object]) -> dict[str, object]:
    """The single JSON object a helper printed (the kernel's answer is untrusted)."""
    if len(values) != 1 or not isinstance(values[0], dict):
        raise HelperFailed("the kernel answered in an unexpected form")
    return values[0]


def _token() -> str:
    return f"@@assistd-{secrets.token_hex(8)}@@"


def _clean_path(path: str) -> str:
    """A relative '/'-separated path with no empty, '.' or '..' parts (the kernel's answer is untrusted)."""
    parts = [p for p in path.split("/") if p not in ("", ".", "..") and "\x00" not in p]
    return "/".join(parts)
