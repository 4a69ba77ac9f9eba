"""Talking to a Jupyter Kernel Gateway (or Enterprise Gateway): kernels over REST, cells over the
kernel's websocket with the Jupyter messaging protocol (JSON text frames, one `channel` per message).

REST: POST /api/kernels starts a kernel, GET/DELETE /api/kernels/{id}, POST .../interrupt.
Websocket: /api/kernels/{id}/channels. The gateway's token goes in `Authorization: token ...` on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from assistd.sandbox.output import CellOutput

INTERRUPT_AGAIN_SECONDS = 0.5
MAX_MESSAGES = 10_000
MAX_FRAME_BYTES = 16 * 1024 * 1024  # one message from the kernel (a returned file comes in 1 MiB lines)

_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only

Ending = Literal["ok", "error", "timeout", "stopped", "dead", "dead_timeout"]


class GatewayError(Exception):
    """The gateway could not be reached or refused a request (not the kernel's fault)."""


class KernelGone(Exception):
    """The kernel is no longer on the gateway (culled, deleted, or the gateway restarted)."""


class HelperFailed(Exception):
    """Code the backend sent for itself raised or did not finish in time."""


@dataclass(frozen=True)
class GatewayOptions:
    url: str
    token: str | None = None
    kernel_name: str = ""
    connect_timeout: float = 10.0
    start_timeout: float = 60.0


class GatewayClient:
    def __init__(self, options: GatewayOptions) -> None:
        self.options = options
        base = options.url.rstrip("/")
        self._base = base
        self._ws_base = "ws" + base[len("http") :] if base.startswith("http") else base
        self._headers = {"Authorization": f"token {options.token}"} if options.token else {}
        self._http = httpx.AsyncClient(
            headers=self._headers, timeout=httpx.Timeout(options.connect_timeout, read=options.start_timeout)
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            response = await self._http.request(method, f"{self._base}{path}", json=body)
        except httpx.HTTPError as exc:
            raise GatewayError(f"the kernel gateway at {self._base} could not be reached ({exc!r})") from exc
        if response.status_code in (401, 403):
            raise GatewayError(f"the kernel gateway at {self._base} refused the token (HTTP {response.status_code})")
        return response

    async def start_kernel(self) -> str:
        body: dict[str, Any] = {"name": self.options.kernel_name} if self.options.kernel_name else {}
        response = await self._request("POST", "/api/kernels", body)
        if response.status_code not in (200, 201):
            raise GatewayError(
                f"the kernel gateway at {self._base} did not start a kernel "
                f"(HTTP {response.status_code}: {response.text[:300]})"
            )
        kernel_id = response.json().get("id")
        if not isinstance(kernel_id, str) or not kernel_id:
            raise GatewayError(f"the kernel gateway at {self._base} answered without a kernel id")
        return kernel_id

    async def exists(self, kernel_id: str) -> bool:
        response = await self._request("GET", f"/api/kernels/{quote(kernel_id, safe='')}")
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            raise GatewayError(f"the kernel gateway answered HTTP {response.status_code} for a kernel")
        return True

    async def delete_kernel(self, kernel_id: str) -> None:
        with contextlib.suppress(GatewayError):
            await self._request("DELETE", f"/api/kernels/{quote(kernel_id, safe='')}")

    async def interrupt(self, kernel_id: str) -> None:
        with contextlib.suppress(GatewayError):
            await self._request("POST", f"/api/kernels/{quote(kernel_id, safe='')}/interrupt")

    async def channels(self, kernel_id: str) -> KernelChannels:
        if not await self.exists(kernel_id):  # a plain 404 (a refused websocket handshake costs more)
            raise KernelGone(kernel_id)
        url = f"{self._ws_base}/api/kernels/{quote(kernel_id, safe='')}/channels"
        try:
            ws = await connect(
                url,
                additional_headers=self._headers,
                max_size=MAX_FRAME_BYTES,
                open_timeout=self.options.connect_timeout,
                compression=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status == 404:
                raise KernelGone(kernel_id) from exc
            if status in (401, 403):
                raise GatewayError(f"the kernel gateway at {self._base} refused the token (HTTP {status})") from exc
            raise GatewayError(f"the kernel gateway refused the kernel's websocket (HTTP {status})") from exc
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise GatewayError(f"the kernel gateway at {self._base} could not be reached ({exc!r})") from exc
        return KernelChannels(self, kernel_id, ws)


class KernelChannels:
    """One kernel's websocket. Not shared between concurrent cells: the backend holds a session lock."""

    def __init__(self, client: GatewayClient, kernel_id: str, ws: ClientConnection) -> None:
        self.client = client
        self.kernel_id = kernel_id
        self.ws = ws
        self.session = uuid.uuid4().hex
        self._socket = ws.transport.get_extra_info("socket") if ws.transport is not None else None

    def _quickack(self) -> None:
        """Acknowledge the gateway's packets at once. Jupyter gateways do not set TCP_NODELAY on their
        websockets, so each message after the first of a reply waits for our ACK, which Linux delays by
        ~40 ms: measured 45 ms per cell without this, 4 ms with it. Quick-ack mode does not stick, so
        it is set again before each read."""
        if self._socket is not None and _QUICKACK is not None:
            with contextlib.suppress(OSError):
                self._socket.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)

    @property
    def open(self) -> bool:
        return self.ws.state.name == "OPEN"

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 2)
        transport = self.ws.transport
        if transport is not None and not transport.is_closing():
            transport.abort()  # the closing handshake did not finish: drop the socket anyway

    async def _send_execute(self, code: str, *, silent: bool, expression: str | None = None) -> str:
        msg_id = uuid.uuid4().hex
        message = {
            "header": {
                "msg_id": msg_id,
                "username": "assistd",
                "session": self.session,
                "msg_type": "execute_request",
                "version": "5.3",
                "date": "",
            },
            "parent_header": {},
            "metadata": {},
            "content": {
                "code": code,
                "silent": silent,
                "store_history": not silent,
                "user_expressions": {"r": expression} if expression is not None else {},
                "allow_stdin": False,
                "stop_on_error": False,
            },
            "channel": "shell",
            "buffers": [],
        }
        try:
            await self.ws.send(json.dumps(message))
        except ConnectionClosed as exc:
            raise KernelGone(self.kernel_id) from exc
        return msg_id

    async def _next(self, timeout: float) -> dict[str, Any] | None:
        """The next message, None when `timeout` passed first; KernelGone when the socket closed."""
        self._quickack()
        try:
            frame = await asyncio.wait_for(self.ws.recv(), max(0.001, timeout))
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            raise KernelGone(self.kernel_id) from exc
        if not isinstance(frame, str):
            return {}  # a binary-protocol frame: not asked for, ignored
        try:
            message = json.loads(frame)
        except ValueError:
            return {}
        return message if isinstance(message, dict) else {}

    async def helper(self, code: str, token: str, timeout: float, max_chars: int) -> list[Any]:
        """Run the backend's own code and return the JSON values it printed after `token`. HelperFailed
        if it raised, printed too much or took too long.

        The code goes as a user expression of an empty silent cell (no history, no execution count):
        expressions are evaluated as they are, while a cell's source first goes through IPython's input
        transformers, which take ~0.5 s per MiB (an input file's chunk). So `code` must be one
        expression (gateway_code's snippets are one `exec(...)` call)."""
        msg_id = await self._send_execute("", silent=True, expression=code.strip())
        deadline = time.monotonic() + timeout
        buffer: list[str] = []
        size = 0
        failure: str | None = None
        replied = idle = False
        while not (replied and idle):
            message = await self._next(deadline - time.monotonic())
            if message is None:
                raise HelperFailed("the kernel did not answer in time")
            if _parent(message) != msg_id:
                continue
            kind, content = _kind(message)
            if kind == "status" and content.get("execution_state") == "idle":
                idle = True
            elif kind == "execute_reply":
                replied = True
                result = (content.get("user_expressions") or {}).get("r")
                if not isinstance(result, dict) or result.get("status") != "ok":
                    error = result if isinstance(result, dict) else content
                    failure = f"{error.get('ename')}: {error.get('evalue')}"
            elif kind == "stream" and content.get("name") == "stdout":
                text = str(content.get("text", ""))
                size += len(text)
                if size > max_chars:
                    raise HelperFailed("the kernel printed more than expected")
                buffer.append(text)
        if failure is not None:
            raise HelperFailed(failure)
        values = []
        for line in "".join(buffer).splitlines():
            if line.startswith(token):
                values.append(json.loads(line[len(token) :]))
        return values

    async def run(
        self, code: str, timeout: float, grace: float, logs_cap: int, stop: asyncio.Event
    ) -> tuple[CellOutput, Ending]:
        """Run one cell, as the local kernel does: its output and how it ended. A cell past its time
        (or stopped) is interrupted through the gateway; one that ignores that for `grace` seconds is
        'dead_timeout'; the kernel dying or restarting under it is 'dead'."""
        out = CellOutput()
        if stop.is_set():  # stopped before the cell was sent (while its inputs were placed): never run it
            return out, "stopped"
        msg_id = await self._send_execute(code, silent=False)
        deadline = time.monotonic() + timeout
        interrupted: Literal["timeout", "stopped"] | None = None
        interrupted_at = 0.0
        seen = 0
        while True:
            now = time.monotonic()
            if interrupted is None and (now >= deadline or stop.is_set()):
                interrupted = "stopped" if stop.is_set() else "timeout"
                await self.client.interrupt(self.kernel_id)
                interrupted_at = now
                deadline = time.monotonic() + grace
            elif interrupted is not None and now >= deadline:
                return out, "dead_timeout"
            elif interrupted is not None and now - interrupted_at >= INTERRUPT_AGAIN_SECONDS:
                # A SIGINT that reaches the kernel before it starts the cell is lost: ask again.
                await self.client.interrupt(self.kernel_id)
                interrupted_at = now
            try:
                message = await self._next(min(0.25, max(0.01, deadline - now)))
            except KernelGone:
                return out, "dead"
            if message is None:
                continue
            seen += 1
            if seen > MAX_MESSAGES:
                out.truncated = True
                continue
            kind, content = _kind(message)
            if kind == "status" and content.get("execution_state") in ("restarting", "dead"):
                return out, "dead"  # the gateway restarts a kernel whose process died: its state is gone
            if _parent(message) != msg_id:
                continue
            if kind == "status" and content.get("execution_state") == "idle":
                return out, interrupted or ("error" if out.error else "ok")
            out.add_message(kind, content, logs_cap)


def _parent(message: dict[str, Any]) -> object:
    parent = message.get("parent_header")
    return parent.get("msg_id") if isinstance(parent, dict) else None


def _kind(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    header = message.get("header")
    kind = header.get("msg_type") if isinstance(header, dict) else None
    content = message.get("content")
    return (kind if isinstance(kind, str) else ""), (content if isinstance(content, dict) else {})
