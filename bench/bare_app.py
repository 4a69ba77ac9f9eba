"""The floor assistd is measured against: a bare Starlette app that answers with captured bytes.

`python bench/bare_app.py --port N --bodies FILE` where FILE is JSON
`{"get": "<response body>", "post": "<response body>"}` captured from a real assistd. Every GET
returns the GET body; every POST reads its request body and returns the POST body. It is served by
uvicorn with the settings `assistd serve` uses (cli.py): default loop and http implementation
(uvloop / httptools when installed), one process, no access log, no log config, lifespan on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def create_app(get_body: bytes, post_body: bytes) -> Starlette:
    async def handle(request: Request) -> Response:
        if request.method == "POST":
            await request.body()
            return Response(post_body, media_type="application/json")
        return Response(get_body, media_type="application/json")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/{path:path}", handle, methods=["GET", "POST"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bodies", type=Path, required=True)
    args = parser.parse_args()
    bodies = json.loads(args.bodies.read_text())
    app = create_app(bodies["get"].encode(), bodies["post"].encode())
    # Mirrors assistd.cli.serve's uvicorn.Config (minus the graceful-shutdown timeout, irrelevant here).
    config = uvicorn.Config(app, host=args.host, port=args.port, log_config=None, access_log=False, lifespan="on")
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
