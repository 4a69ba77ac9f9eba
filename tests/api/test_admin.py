"""The admin API (/admin/v1) and the console's page: auth, project scoping, pagination, search, bad input."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from apihelpers import BETA, assert_error

from assistd.testing.server import LiveServer

MISSING_KEY = "You didn't provide an API key."


@pytest.fixture(scope="module")
def keyed(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    backend: str,
    start_server: Callable[..., LiveServer],
) -> LiveServer:
    return start_server(
        request, tmp_path_factory, backend, env={"ASSISTD_API_KEYS": "admin-k1", "ASSISTD_KEY_CACHE_SECONDS": "0.2"}
    )


@pytest.fixture(scope="module")
def other_key(keyed: LiveServer) -> str:
    """A stored key of a second project."""
    result = subprocess.run(
        [sys.executable, "-m", "assistd", "keys", "create", "--project", "admin-other"],
        env=keyed.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def client_for(server: LiveServer, key: str | None) -> httpx.Client:
    headers = dict(BETA)
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


@pytest.fixture()
def k1(keyed: LiveServer) -> Iterator[httpx.Client]:
    with client_for(keyed, "admin-k1") as c:
        yield c


def make_threads(c: httpx.Client, n: int, **metadata: str) -> list[str]:
    ids = []
    for i in range(n):
        r = c.post("/v1/threads", json={"metadata": {**metadata, "n": str(i)}})
        assert r.status_code == 200, r.text
        ids.append(r.json()["id"])
    return ids


def listed(c: httpx.Client, **params: Any) -> dict[str, Any]:
    r = c.get("/admin/v1/threads", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"object", "data", "first_id", "last_id", "has_more"}
    assert body["object"] == "list"
    return body  # type: ignore[no-any-return]


def ids_of(body: dict[str, Any]) -> list[str]:
    return [t["id"] for t in body["data"]]


# --- auth and scoping ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/v1/threads", "/admin/v1/models", "/admin/v1/nope"])
def test_admin_needs_a_key_when_keys_exist(keyed: LiveServer, path: str) -> None:
    with client_for(keyed, None) as c:
        assert_error(c.get(path), 401, contains=MISSING_KEY, param=None, code=None)
    with client_for(keyed, "wrong-key") as c:
        assert_error(c.get(path), 401, code="invalid_api_key")


def test_threads_are_scoped_to_the_keys_project(keyed: LiveServer, k1: httpx.Client, other_key: str) -> None:
    tag = uuid.uuid4().hex
    mine = make_threads(k1, 2, suite=tag)
    with client_for(keyed, other_key) as other:
        theirs = make_threads(other, 1, suite=tag)
        assert ids_of(listed(other, q=tag)) == theirs
        assert set(mine).isdisjoint(ids_of(listed(other, limit=100)))
        # Another project's thread is not even a cursor that leaks: the page is still only theirs.
        assert ids_of(listed(other, q=tag, after=mine[-1], order="asc")) == [t for t in theirs if t > mine[-1]]
    assert ids_of(listed(k1, q=tag)) == mine[::-1]


def test_open_server_lists_without_a_key(server: LiveServer) -> None:
    with client_for(server, None) as c:
        made = make_threads(c, 1, suite=uuid.uuid4().hex)
        assert ids_of(listed(c, limit=1)) == made  # newest first


# --- pagination and search -----------------------------------------------------------------------


def test_pagination_follows_the_list_conventions(http: httpx.Client) -> None:
    tag = uuid.uuid4().hex
    made = make_threads(http, 5, suite=tag)
    newest_first = made[::-1]

    first = listed(http, q=tag, limit=2)
    assert ids_of(first) == newest_first[:2] and first["has_more"] is True
    assert (first["first_id"], first["last_id"]) == (newest_first[0], newest_first[1])
    second = listed(http, q=tag, limit=2, after=first["last_id"])
    assert ids_of(second) == newest_first[2:4] and second["has_more"] is True
    third = listed(http, q=tag, limit=2, after=second["last_id"])
    assert ids_of(third) == newest_first[4:] and third["has_more"] is False
    back = listed(http, q=tag, limit=2, before=third["first_id"])
    assert ids_of(back) == newest_first[2:4]

    assert ids_of(listed(http, q=tag, order="asc")) == made
    assert ids_of(listed(http, q=tag, order="asc", after=made[1], limit=2)) == made[2:4]
    empty = listed(http, q=tag, after=made[0])
    assert empty == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


def test_conversations_are_threads_and_page_with_them(http: httpx.Client) -> None:
    """A conversation made through /v1/conversations is listed, and its conv_ id is a cursor like any."""
    tag = uuid.uuid4().hex
    made = make_threads(http, 2, suite=tag)
    conv = http.post("/v1/conversations", json={"metadata": {"suite": tag}}).json()["id"]
    for order in ("asc", "desc"):
        walked: list[str] = []
        after: str | None = None
        while True:
            page = listed(http, q=tag, limit=1, order=order, **({"after": after} if after else {}))
            walked += ids_of(page)
            if not page["has_more"]:
                break
            after = page["last_id"]
        assert sorted(walked) == sorted([*made, conv]), order


def test_threads_carry_the_thread_shape(http: httpx.Client) -> None:
    (made,) = make_threads(http, 1, suite=uuid.uuid4().hex)
    (row,) = listed(http, q=made)["data"]
    assert row == http.get(f"/v1/threads/{made}").json()


def test_search_matches_ids_and_metadata_values(http: httpx.Client) -> None:
    tag = uuid.uuid4().hex
    (plain,) = make_threads(http, 1, suite=tag)
    r = http.post("/v1/threads", json={"metadata": {"customer": f"ACME-{tag}-Corp", "odd%_key": "x"}})
    assert r.status_code == 200
    special = r.json()["id"]

    assert ids_of(listed(http, q=tag)) == [special, plain]
    assert ids_of(listed(http, q=f"acme-{tag}-corp".upper())) == [special]  # values, any case
    assert ids_of(listed(http, q=f"cme-{tag}")) == [special]  # substrings
    assert ids_of(listed(http, q=plain[-12:])) == [plain]  # the id
    assert ids_of(listed(http, q=plain.upper())) == [plain]
    # Keys are not searched, and LIKE wildcards are plain characters.
    assert ids_of(listed(http, q="odd%_key")) == []
    assert ids_of(listed(http, q=f"ACME%{tag}")) == []
    assert ids_of(listed(http, q=f"ACME_{tag}")) == []
    assert ids_of(listed(http, q="thread_" + "z" * 40)) == []
    assert listed(http, q="")["data"]  # an empty q means no filter


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"limit": 0}, "limit", "below_min_value"),
        ({"limit": 101}, "limit", "above_max_value"),
        ({"limit": "ten"}, "limit", None),
        ({"order": "sideways"}, "order", "invalid_value"),
        ({"after": "msg_123"}, "after", "invalid_value"),
        ({"before": "anything"}, "before", "invalid_value"),
        ({"q": "x" * 257}, "q", "string_above_max_length"),
        ({"q": "a\x00b"}, "q", "invalid_value"),
    ],
)
def test_bad_input_is_a_clear_400(http: httpx.Client, params: dict[str, Any], param: str, code: str | None) -> None:
    assert_error(http.get("/admin/v1/threads", params=params), 400, param=param, code=code if code else Any)


def test_unknown_admin_paths_and_methods(http: httpx.Client) -> None:
    assert_error(http.get("/admin/v1/nope"), 404, "Invalid URL (GET /admin/v1/nope)")
    assert_error(http.post("/admin/v1/threads", json={}), 405)


def test_models_lists_the_routing_table(http: httpx.Client) -> None:
    body = http.get("/admin/v1/models").json()
    # The test servers route every name to the fake upstream (ASSISTD_UPSTREAM_BASE_URL), no table.
    assert body == {"object": "list", "data": [], "default": {"backend": "upstream", "upstream_model": None}}


def test_admin_endpoints_are_in_openapi(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    assert set(paths["/admin/v1/threads"]) == {"get"}
    names = {p["name"] for p in paths["/admin/v1/threads"]["get"]["parameters"]}
    assert {"limit", "order", "after", "before", "q"} <= names
    assert set(paths["/admin/v1/models"]) == {"get"}


# --- the console's page --------------------------------------------------------------------------


def test_console_page_and_assets_need_no_key(keyed: LiveServer) -> None:
    with client_for(keyed, None) as c:
        page = c.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assets = re.findall(r'(?:src|href)="(/console/[^"]+)"', page.text)
        assert "/console/console.css?v=" in page.text and "/console/js/app.js?v=" in page.text
        assert len(assets) >= 2, assets
        for asset in assets:
            r = c.get(asset)
            assert r.status_code == 200, asset
            assert "{{" not in asset
        js = c.get("/console/js/app.js")
        assert js.headers["content-type"].split(";")[0] in ("text/javascript", "application/javascript")
        assert_error(c.get("/console/js/nope.js"), 404)
        # The page holds no data: everything it shows comes from the API, which still wants a key.
        assert_error(c.get("/v1/assistants"), 401)


def test_console_can_be_turned_off(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    start_server: Callable[..., LiveServer],
) -> None:
    # A setting of the app, not of the database: one SQLite server is enough.
    server = start_server(request, tmp_path_factory, "sqlite", env={"ASSISTD_CONSOLE_ENABLED": "false"})
    with client_for(server, None) as c:
        assert_error(c.get("/"), 404)
        assert_error(c.get("/console/js/app.js"), 404)
        assert c.get("/admin/v1/threads").status_code == 200
