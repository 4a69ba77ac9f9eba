"""Endpoints are declared once, with their models; Starlette routes and OpenAPI both come from that."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # relative to the router's prefix (/v1, /admin/v1), with {placeholders}
    handler: Handler
    summary: str
    response: Any  # a pydantic model type, or "binary"
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    multipart: dict[str, Any] | None = None  # OpenAPI schema of a multipart body
    tag: str = ""
    stream: bool = False


@dataclass
class Router:
    prefix: str = "/v1"
    endpoints: list[Endpoint] = field(default_factory=list)

    def add(self, endpoint: Endpoint) -> None:
        self.endpoints.append(endpoint)

    def routes(self) -> list[Route]:
        """One Starlette route per path, dispatching on method (so 405s come from one place)."""
        by_path: dict[str, dict[str, Handler]] = {}
        for ep in self.endpoints:
            by_path.setdefault(ep.path, {})[ep.method] = ep.handler
        # Literal segments win over placeholders: /threads/runs must not match /threads/{thread_id}.
        ordered = sorted(by_path, key=lambda p: [(seg.startswith("{"), seg) for seg in p.split("/")])
        return [Route(self.prefix + path, _dispatch(by_path[path]), methods=list(by_path[path])) for path in ordered]


def _dispatch(methods: dict[str, Handler]) -> Handler:
    if len(methods) == 1:
        return next(iter(methods.values()))

    async def dispatch(request: Request) -> Response:
        return await methods[request.method](request)

    return dispatch
