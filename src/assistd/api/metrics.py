"""GET /metrics: the Prometheus exposition of services/metrics.py (docs/deployment.md#metrics).

Outside /v1, so API keys do not apply: a scraper sends none. ASSISTD_METRICS=false removes the route
(404); ASSISTD_METRICS_TOKEN makes it answer only scrapes that send `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from assistd.api.deps import services
from assistd.errors import AuthenticationFailed
from assistd.settings import Settings

PATH = "/metrics"


def metrics_routes(settings: Settings) -> list[Route]:
    if not settings.metrics:
        return []
    secret = settings.metrics_token.get_secret_value() if settings.metrics_token is not None else ""
    token = secret.encode() if secret else None  # empty (compose's `${ASSISTD_METRICS_TOKEN:-}`): none

    async def metrics(request: Request) -> Response:
        if token is not None and not _bearer_matches(request.headers.get("authorization"), token):
            raise AuthenticationFailed(
                "This server's /metrics needs its scrape token (ASSISTD_METRICS_TOKEN) as "
                "'Authorization: Bearer <token>'.",
                code="invalid_metrics_token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        collector = services(request).metrics
        assert collector is not None  # the route exists only with metrics on
        body, content_type = await collector.render(request.headers.get("accept", ""))
        return Response(body, headers={"content-type": content_type})

    return [Route(PATH, metrics, methods=["GET"])]


def _bearer_matches(header: str | None, token: bytes) -> bool:
    scheme, _, value = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token)
