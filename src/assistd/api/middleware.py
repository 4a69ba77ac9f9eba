"""Pure ASGI middleware: request ids, structured access logs and authentication.

Written against raw ASGI (not BaseHTTPMiddleware) so streaming bodies pass through untouched and
the per-request cost stays small.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistd.errors import APIError
from assistd.services.keys import KeyRing

access_log = logging.getLogger("assistd.access")

# Paths that answer without a key. Outside these prefixes (the console's page and assets) nothing needs one.
PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json"})
AUTHENTICATED_PREFIXES = ("/v1", "/admin/")


async def send_error(send: Send, error: APIError, request_id: str) -> None:
    body = orjson.dumps(error.body())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestMiddleware:
    def __init__(self, app: ASGIApp, log_requests: bool) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = "req_" + os.urandom(16).hex()  # 128 random bits, as uuid4 less its object
        rid_header = (b"x-request-id", request_id.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        scope["assistd.request_id"] = request_id
        path: str = scope["path"]
        project = None
        try:
            if path.startswith(AUTHENTICATED_PREFIXES) and path not in PUBLIC_PATHS:
                keyring: KeyRing = scope["app"].state.keyring  # set by the app's lifespan
                try:
                    project = await keyring.authenticate(_header(scope, b"authorization"))
                except APIError as exc:
                    status = exc.status
                    await send_error(send, exc, request_id)
                    return
                scope["assistd.project"] = project
            await self.app(scope, receive, send_with_id)
        finally:
            if self.log_requests:
                access_log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope.get("method"),
                        "path": path,
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "project": project,
                    },
                )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def request_id_of(scope: dict[str, Any]) -> str:
    return str(scope.get("assistd.request_id", ""))
