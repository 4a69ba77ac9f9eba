"""A local stand-in for the Hugging Face hub, for offline tests of `assistd models pull` (HF_ENDPOINT=its URL).

It serves the parts of the hub's URL layout that `huggingface_hub` uses to list and download files:

- `GET /api/models/{owner}/{name}` and `.../revision/{revision}`: the repo's info, `siblings` the files;
- `HEAD|GET /{owner}/{name}/resolve/{revision}/{file}`: the file, with `ETag` (its sha256, as the hub
  gives for LFS files), `X-Repo-Commit`, `Content-Length`, and `Range` support for resumed downloads.

Unknown repos answer 404 with `X-Error-Code: RepoNotFound`, unknown files `EntryNotFound`, as the hub does.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

_RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")
_INFO = re.compile(r"^/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?$")


@dataclass
class FakeHub:
    repos: dict[str, dict[str, Path]] = field(default_factory=dict)  # repo → file name → local file
    requests: list[str] = field(default_factory=list)  # "METHOD path" of every request
    url: str = ""

    def commit(self, repo: str) -> str:
        return hashlib.sha1(repo.encode()).hexdigest()


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

        def _error(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"error": message}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _serve(self) -> None:
            path = unquote(urlparse(self.path).path)
            hub.requests.append(f"{self.command} {path}")
            if match := _INFO.match(path):
                repo = match.group(1)
                if repo not in hub.repos:
                    self._error(404, "RepoNotFound", "Repository not found")
                    return
                info = {
                    "id": repo,
                    "sha": hub.commit(repo),
                    "siblings": [{"rfilename": name} for name in sorted(hub.repos[repo])],
                }
                body = json.dumps(info).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if match := _RESOLVE.match(path):
                repo, _revision, name = match.groups()
                if repo not in hub.repos:
                    self._error(404, "RepoNotFound", "Repository not found")
                    return
                if name not in hub.repos[repo]:
                    self._error(404, "EntryNotFound", "Entry not found")
                    return
                data = hub.repos[repo][name].read_bytes()
                start = 0
                status = 200
                if (wanted := self.headers.get("Range")) and (m := re.match(r"bytes=(\d+)-$", wanted)):
                    start, status = int(m.group(1)), 206
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("X-Repo-Commit", hub.commit(repo))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(data) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(data[start:])
                return
            self._error(404, "NotFound", "Not found")

        do_GET = _serve
        do_HEAD = _serve

    return Handler


@contextmanager
def running(hub: FakeHub) -> Iterator[FakeHub]:
    """Serve `hub` on a free loopback port for the duration of the block; `hub.url` is its endpoint."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
