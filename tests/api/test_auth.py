"""API keys and projects, the loopback guard, and what every response carries."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apihelpers import BETA, assert_error, poll

from assistd.testing.server import LiveServer, free_port


@pytest.fixture(scope="module")
def keyed(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    backend: str,
    start_server: Callable[..., LiveServer],
) -> LiveServer:
    return start_server(
        request, tmp_path_factory, backend, env={"ASSISTD_API_KEYS": "k1,k2", "ASSISTD_KEY_CACHE_SECONDS": "0.2"}
    )


def client_for(server: LiveServer, key: str | None) -> httpx.Client:
    headers = dict(BETA)
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


@pytest.fixture()
def k1(keyed: LiveServer) -> Iterator[httpx.Client]:
    with client_for(keyed, "k1") as c:
        yield c


def cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m assistd ...` against the same data dir and database as the server."""
    result = subprocess.run(
        [sys.executable, "-m", "assistd", *args], env=server.env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result


def create_key(server: LiveServer, project: str) -> tuple[str, str]:
    """(secret, key id)"""
    result = cli(server, "keys", "create", "--project", project)
    secret = result.stdout.strip()
    assert secret and "\n" not in secret
    match = re.search(r"created (key_\w+) for project '([^']+)'", result.stderr)
    assert match, result.stderr
    assert match.group(2) == project
    return secret, match.group(1)


def works(server: LiveServer, key: str) -> bool:
    with client_for(server, key) as c:
        return c.get("/v1/assistants").status_code == 200


# --- env keys ------------------------------------------------------------------------------------

MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Basic azE6"}, {"Authorization": "k1"}],
)
def test_missing_key_is_401(keyed: LiveServer, headers: dict[str, str]) -> None:
    with client_for(keyed, None) as c:
        for method, path in [
            ("GET", "/v1/assistants"),
            ("POST", "/v1/threads"),
            ("GET", "/v1/files"),
            ("GET", "/v1/nope"),
            ("GET", "/v1/files/file-x/content"),
        ]:
            r = c.request(method, path, headers=headers)
            assert_error(r, 401, MISSING_KEY, param=None, code=None)
            assert r.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize("key", ["k3", "k1x", "K1", "k1,k2", "sk-" + "x" * 40])
def test_wrong_key_is_401_invalid_api_key(keyed: LiveServer, key: str) -> None:
    with client_for(keyed, None) as c:
        r = c.get("/v1/assistants", headers={"Authorization": f"Bearer {key}"})
        error = assert_error(r, 401, param=None, code="invalid_api_key")
        assert error["message"].startswith("Incorrect API key provided")
        assert "x" * 20 not in error["message"]  # never echoes a whole secret


def test_env_keys_work(keyed: LiveServer) -> None:
    for key in ("k1", "k2"):
        with client_for(keyed, key) as c:
            r = c.post("/v1/assistants", json={"model": "gpt-4o"})
            assert r.status_code == 200, r.text
            assert c.get(f"/v1/assistants/{r.json()['id']}").status_code == 200
    # k1 and k2 are the same (default) project.
    with client_for(keyed, "k1") as a, client_for(keyed, "k2") as b:
        created = a.post("/v1/assistants", json={"model": "gpt-4o"}).json()
        assert b.get(f"/v1/assistants/{created['id']}").json() == created


def test_rejected_key_changes_nothing(keyed: LiveServer, k1: httpx.Client) -> None:
    before = k1.get("/v1/assistants", params={"limit": 100}).json()
    with client_for(keyed, "wrong") as c:
        assert c.post("/v1/assistants", json={"model": "gpt-4o"}).status_code == 401
    with client_for(keyed, None) as c:
        assert c.post("/v1/assistants", json={"model": "gpt-4o"}).status_code == 401
    assert k1.get("/v1/assistants", params={"limit": 100}).json() == before


def test_healthz_and_openapi_need_no_key(keyed: LiveServer) -> None:
    with client_for(keyed, None) as c:
        r = c.get("/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        assert r.headers["x-request-id"].startswith("req_")
        r = c.get("/openapi.json")
        assert r.status_code == 200
        doc = r.json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path, methods in {
        "/v1/assistants": {"get", "post"},
        "/v1/assistants/{assistant_id}": {"get", "post", "delete"},
        "/v1/threads": {"post"},
        "/v1/threads/{thread_id}": {"get", "post", "delete"},
        "/v1/threads/{thread_id}/messages": {"get", "post"},
        "/v1/threads/{thread_id}/messages/{message_id}": {"get", "post", "delete"},
        "/v1/files": {"get", "post"},
        "/v1/files/{file_id}": {"get", "delete"},
        "/v1/files/{file_id}/content": {"get"},
    }.items():
        assert path in paths, sorted(paths)
        assert methods <= set(paths[path]), (path, sorted(paths[path]))
    assert "multipart/form-data" in paths["/v1/files"]["post"]["requestBody"]["content"]
    assert "ErrorResponse" in doc["components"]["schemas"]


def test_every_response_has_a_request_id(keyed: LiveServer, k1: httpx.Client) -> None:
    asst = k1.post("/v1/assistants", json={"model": "gpt-4o"}).json()
    uploaded = k1.post("/v1/files", files={"file": ("a.txt", b"abc")}, data={"purpose": "user_data"}).json()
    responses = [
        k1.get("/healthz"),
        k1.get("/openapi.json"),
        k1.get("/v1/assistants"),
        k1.get(f"/v1/assistants/{asst['id']}"),
        k1.get("/v1/assistants/asst_nope"),  # 404
        k1.post("/v1/assistants", content=b"{"),  # 400
        k1.put("/v1/assistants"),  # 405
        k1.get("/v1/nope"),  # unknown route
        k1.post("/v1/files", content=b"x", headers={"content-type": "text/plain"}),  # 415
        k1.get(f"/v1/files/{uploaded['id']}/content"),  # streamed bytes
        k1.delete(f"/v1/files/{uploaded['id']}"),
        k1.get("/v1/assistants", headers={"Authorization": "Bearer nope"}),  # 401 from the middleware
        k1.get("/v1/assistants", headers={"Authorization": ""}),
    ]
    ids = [r.headers.get("x-request-id") for r in responses]
    assert all(i and re.fullmatch(r"req_[0-9a-f]{32}", i) for i in ids), ids
    assert len(set(ids)) == len(ids)


# --- stored keys and projects --------------------------------------------------------------------


@pytest.fixture(scope="module")
def other_key(keyed: LiveServer) -> tuple[str, str]:
    secret, key_id = create_key(keyed, "other")
    # The server rereads its key table every ASSISTD_KEY_CACHE_SECONDS (0.2 s here).
    poll(lambda: works(keyed, secret), timeout=10)
    return secret, key_id


def test_created_key_works(keyed: LiveServer, other_key: tuple[str, str]) -> None:
    assert works(keyed, other_key[0])
    listed = cli(keyed, "keys", "list").stdout
    line = next(ln for ln in listed.splitlines() if ln.startswith(other_key[1]))
    assert line.split("\t")[1:] != [] and "\tother\t" in line and line.endswith("\tactive")
    assert other_key[0] not in listed  # secrets are never listed


def test_projects_are_isolated(keyed: LiveServer, k1: httpx.Client, other_key: tuple[str, str]) -> None:
    with client_for(keyed, other_key[0]) as other:
        asst = other.post("/v1/assistants", json={"model": "gpt-4o", "name": "theirs"}).json()
        thread = other.post("/v1/threads", json={"messages": [{"role": "user", "content": "secret"}]}).json()
        msg = other.get(f"/v1/threads/{thread['id']}/messages").json()["data"][0]
        file = other.post("/v1/files", files={"file": ("s.txt", b"secret")}, data={"purpose": "user_data"}).json()
        owner_view = {
            "assistant": other.get(f"/v1/assistants/{asst['id']}").json(),
            "thread": other.get(f"/v1/threads/{thread['id']}").json(),
            "message": other.get(f"/v1/threads/{thread['id']}/messages/{msg['id']}").json(),
            "file": other.get(f"/v1/files/{file['id']}").json(),
        }

        a, t, m, f = asst["id"], thread["id"], msg["id"], file["id"]
        not_mine: list[tuple[str, str, dict[str, Any] | None, str]] = [
            ("GET", f"/v1/assistants/{a}", None, f"No assistant found with id '{a}'."),
            ("POST", f"/v1/assistants/{a}", {"name": "mine now"}, f"No assistant found with id '{a}'."),
            ("DELETE", f"/v1/assistants/{a}", None, f"No assistant found with id '{a}'."),
            ("GET", f"/v1/threads/{t}", None, f"No thread found with id '{t}'."),
            ("POST", f"/v1/threads/{t}", {"metadata": {"x": "y"}}, f"No thread found with id '{t}'."),
            ("DELETE", f"/v1/threads/{t}", None, f"No thread found with id '{t}'."),
            ("GET", f"/v1/threads/{t}/messages", None, f"No thread found with id '{t}'."),
            ("POST", f"/v1/threads/{t}/messages", {"role": "user", "content": "x"}, f"No thread found with id '{t}'."),
            ("GET", f"/v1/threads/{t}/messages/{m}", None, f"No thread found with id '{t}'."),
            ("POST", f"/v1/threads/{t}/messages/{m}", {"metadata": {}}, f"No thread found with id '{t}'."),
            ("DELETE", f"/v1/threads/{t}/messages/{m}", None, f"No thread found with id '{t}'."),
            ("GET", f"/v1/files/{f}", None, f"No file found with id '{f}'."),
            ("GET", f"/v1/files/{f}/content", None, f"No file found with id '{f}'."),
            ("DELETE", f"/v1/files/{f}", None, f"No file found with id '{f}'."),
        ]
        for method, path, body, message in not_mine:
            r = k1.request(method, path, json=body) if body is not None else k1.request(method, path)
            assert_error(r, 404, message, param=None, code=None)
            # ... exactly what an id that never existed gets
            unknown = path.replace(a, "asst_nope").replace(t, "thread_nope").replace(f, "file-nope")
            r2 = k1.request(method, unknown, json=body) if body is not None else k1.request(method, unknown)
            assert r2.status_code == 404
            assert r2.json()["error"]["message"] == message.replace(a, "asst_nope").replace(t, "thread_nope").replace(
                f, "file-nope"
            )

        # Other project's objects are not usable as references either.
        resources = {"code_interpreter": {"file_ids": [f]}}
        r = k1.post("/v1/assistants", json={"model": "gpt-4o", "tool_resources": resources})
        assert_error(r, 400, param="tool_resources.code_interpreter.file_ids")

        # Lists do not show them.
        for path, object_id in [("/v1/assistants", a), ("/v1/files", f)]:
            listed = k1.get(path, params={"limit": 100}).json()["data"]
            assert object_id not in {o["id"] for o in listed}
            assert object_id in {o["id"] for o in other.get(path, params={"limit": 100}).json()["data"]}
        assert f not in {o["id"] for o in k1.get("/v1/files", params={"purpose": "user_data"}).json()["data"]}

        # Nothing the first project tried changed anything.
        assert other.get(f"/v1/assistants/{a}").json() == owner_view["assistant"]
        assert other.get(f"/v1/threads/{t}").json() == owner_view["thread"]
        assert other.get(f"/v1/threads/{t}/messages/{m}").json() == owner_view["message"]
        assert other.get(f"/v1/files/{f}").json() == owner_view["file"]
        assert other.get(f"/v1/files/{f}/content").content == b"secret"

        # And the other way round.
        mine = k1.post("/v1/assistants", json={"model": "gpt-4o"}).json()
        assert_error(other.get(f"/v1/assistants/{mine['id']}"), 404, f"No assistant found with id '{mine['id']}'.")
        assert mine["id"] not in {o["id"] for o in other.get("/v1/assistants", params={"limit": 100}).json()["data"]}


def test_revoked_key_stops_working(keyed: LiveServer, k1: httpx.Client) -> None:
    secret, key_id = create_key(keyed, "short-lived")
    poll(lambda: works(keyed, secret), timeout=10)
    cli(keyed, "keys", "revoke", key_id)
    poll(lambda: not works(keyed, secret), timeout=10)
    with client_for(keyed, secret) as c:
        assert_error(c.get("/v1/assistants"), 401, code="invalid_api_key")
    assert works(keyed, "k1")
    listed = cli(keyed, "keys", "list").stdout
    assert any(ln.startswith(key_id) and ln.endswith("\trevoked") for ln in listed.splitlines())
    # Revoking twice is an error from the CLI.
    again = subprocess.run(
        [sys.executable, "-m", "assistd", "keys", "revoke", key_id],
        env=keyed.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode != 0


# --- the loopback guard --------------------------------------------------------------------------


@pytest.fixture()
def bare_env(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> dict[str, str]:
    """A fresh data dir (and database) with no keys anywhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")}
    env["ASSISTD_DATA_DIR"] = str(tmp_path / "data")
    if backend == "postgres":
        env["ASSISTD_DATABASE_URL"] = request.getfixturevalue("postgres").new_database()
    return env


def test_refuses_non_loopback_without_keys(bare_env: dict[str, str]) -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "assistd", "serve", "--host", "0.0.0.0", "--port", str(port)],
        env=bare_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "refusing to listen on 0.0.0.0 with no API keys" in result.stderr
    assert "--allow-insecure" in result.stderr


def test_allow_insecure_starts_on_non_loopback(bare_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "assistd", "serve", "--host", "0.0.0.0", "--port", str(port), "--allow-insecure"],
            env=bare_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def healthy() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        poll(healthy, timeout=60)
        # Open server: any bearer token works.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": "Bearer anything"}) as c:
            assert c.post("/v1/assistants", json={"model": "gpt-4o"}).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # uvicorn re-raises the signal it shut down on
    assert proc.returncode in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete" in log.read_text()


def test_loopback_without_keys_is_allowed(bare_env: dict[str, str]) -> None:
    """The guard is only for non-loopback hosts (LiveServer itself relies on this)."""
    server = LiveServer(Path(bare_env["ASSISTD_DATA_DIR"]), env=bare_env)
    with server:
        assert server.process is not None and server.process.poll() is None
