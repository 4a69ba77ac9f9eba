"""The web console: one static page and its scripts, served by `assistd serve` at `/`.

No build step and nothing at run time but these files: the page talks to the same /v1 and
/admin/v1 endpoints as any client, with the key the user types (kept in sessionStorage).
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from assistd import __version__

PACKAGE = "assistd.console"

# The page loads only its own scripts and styles; images come from files fetched with the key (blob:).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def _index_html() -> str:
    page = resources.files(PACKAGE).joinpath("static", "index.html").read_text(encoding="utf-8")
    # Asset URLs carry the version, so an upgraded server never mixes old scripts with a new page.
    return page.replace("{{version}}", __version__)


def console_routes() -> list[BaseRoute]:
    page = _index_html()

    async def index(request: Request) -> Response:
        return Response(
            page,
            media_type="text/html",
            headers={
                "cache-control": "no-cache",
                "content-security-policy": CONTENT_SECURITY_POLICY,
                "x-content-type-options": "nosniff",
                "referrer-policy": "no-referrer",
            },
        )

    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Mount("/console", app=StaticFiles(packages=[(PACKAGE, "static")]), name="console"),
    ]
