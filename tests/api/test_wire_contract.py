"""Wire details (issue 12, item 11): empty list pages, tool resources of built-in tools without files, and
the served OpenAPI saying the limits the server enforces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from apihelpers import assert_error

from assistd.api.deps import MAX_JSON_BODY
from assistd.api.multipart import MAX_FIELD_BYTES
from assistd.protocol.common import METADATA_KEY_MAX, METADATA_MAX_KEYS, METADATA_VALUE_MAX
from assistd.protocol.tools import CODE_INTERPRETER_MAX_FILES, RESERVED_FUNCTION_NAMES
from assistd.protocol.vector_stores import ATTRIBUTES_KEY_MAX, ATTRIBUTES_MAX_KEYS, ATTRIBUTES_STRING_MAX
from assistd.testing.server import LiveServer

EMPTY = {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
NO_TOOL_RESOURCES = {"code_interpreter": {"file_ids": []}, "file_search": {"vector_store_ids": []}}


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


# --- (a) empty pages -----------------------------------------------------------------------------


def test_every_empty_list_has_null_first_and_last_ids(http: httpx.Client) -> None:
    """OpenAI sends null for both on an empty page (its spec says string; the SDKs read neither)."""
    assistant = ok(http.post("/v1/assistants", json={"model": "gpt-4o"}))
    thread = ok(http.post("/v1/threads", json={}))
    store = ok(http.post("/v1/vector_stores", json={"name": "empty"}))
    file = ok(http.post("/v1/files", files={"file": ("f.txt", b"x")}, data={"purpose": "assistants"}))
    pages = {
        "/v1/assistants": {"order": "asc", "after": assistant["id"]},
        f"/v1/threads/{thread['id']}/messages": {},
        f"/v1/threads/{thread['id']}/runs": {},
        "/v1/files": {"order": "asc", "after": file["id"]},
        "/v1/vector_stores": {"order": "asc", "after": store["id"]},
        f"/v1/vector_stores/{store['id']}/files": {},
        "/admin/v1/threads": {"q": "no-such-thread-anywhere"},
    }
    for path, params in pages.items():
        assert ok(http.get(path, params=params)) == EMPTY, path


def test_list_pages_in_openapi_require_every_key_and_allow_null_ids(http: httpx.Client) -> None:
    schemas = http.get("/openapi.json").json()["components"]["schemas"]
    pages = [name for name in schemas if name.startswith("ListPage")]
    assert len(pages) >= 8, pages
    for name in pages:
        page = schemas[name]
        assert set(page["required"]) == {"object", "data", "first_id", "last_id", "has_more"}, name
        for key in ("first_id", "last_id"):
            assert {branch["type"] for branch in page["properties"][key]["anyOf"]} == {"string", "null"}, name


# --- (b) tool resources --------------------------------------------------------------------------


def test_built_in_tools_without_files_have_empty_tool_resources(http: httpx.Client) -> None:
    tools = [{"type": "code_interpreter"}, {"type": "file_search"}]
    created = ok(http.post("/v1/assistants", json={"model": "gpt-4o", "tools": tools}))
    assert created["tool_resources"] == NO_TOOL_RESOURCES
    assert ok(http.get(f"/v1/assistants/{created['id']}"))["tool_resources"] == NO_TOOL_RESOURCES
    listed = ok(http.get("/v1/assistants", params={"limit": 100}))
    assert next(a for a in listed["data"] if a["id"] == created["id"])["tool_resources"] == NO_TOOL_RESOURCES

    # Only the tools the assistant has; given resources are kept as they are.
    plain = ok(http.post("/v1/assistants", json={"model": "gpt-4o"}))
    assert plain["tool_resources"] == {}
    changed = ok(http.post(f"/v1/assistants/{plain['id']}", json={"tools": [{"type": "code_interpreter"}]}))
    assert changed["tool_resources"] == {"code_interpreter": {"file_ids": []}}
    assert ok(http.get(f"/v1/assistants/{plain['id']}"))["tool_resources"] == {"code_interpreter": {"file_ids": []}}
    store = ok(http.post("/v1/vector_stores", json={}))
    both = ok(
        http.post(
            "/v1/assistants",
            json={
                "model": "gpt-4o",
                "tools": tools,
                "tool_resources": {"file_search": {"vector_store_ids": [store["id"]]}},
            },
        )
    )
    assert both["tool_resources"] == {
        "code_interpreter": {"file_ids": []},
        "file_search": {"vector_store_ids": [store["id"]]},
    }


def test_threads_echo_empty_tool_resources_they_were_given(http: httpx.Client) -> None:
    resources = {"code_interpreter": {}, "file_search": {}}
    thread = ok(http.post("/v1/threads", json={"tool_resources": resources}))
    assert thread["tool_resources"] == NO_TOOL_RESOURCES
    assert ok(http.get(f"/v1/threads/{thread['id']}"))["tool_resources"] == NO_TOOL_RESOURCES
    # A thread has no tools of its own: with nothing given, nothing is shown (as on OpenAI).
    assert ok(http.post("/v1/threads", json={}))["tool_resources"] == {}


# --- (c) limits in the served OpenAPI ------------------------------------------------------------


def _unwrap(schema: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of an optional field."""
    for branch in schema.get("anyOf", []):
        if branch.get("type") != "null":
            return branch
    return schema


def test_openapi_states_the_enforced_limits(http: httpx.Client) -> None:
    doc = http.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    create = schemas["AssistantCreate"]["properties"]
    assert _unwrap(create["name"])["maxLength"] == 256
    assert _unwrap(create["description"])["maxLength"] == 512
    assert _unwrap(create["instructions"])["maxLength"] == 256_000
    assert _unwrap(create["tools"])["maxItems"] == 128
    assert (create["model"]["minLength"], create["model"]["maxLength"]) == (1, 256)
    metadata = _unwrap(create["metadata"])
    assert metadata["maxProperties"] == METADATA_MAX_KEYS
    assert metadata["propertyNames"]["maxLength"] == METADATA_KEY_MAX
    assert metadata["additionalProperties"]["maxLength"] == METADATA_VALUE_MAX
    for model in ("ThreadCreate", "MessageCreate", "RunCreate", "VectorStoreCreate", "AssistantUpdate"):
        assert _unwrap(schemas[model]["properties"]["metadata"])["maxProperties"] == METADATA_MAX_KEYS, model

    attributes = _unwrap(schemas["VectorStoreFileCreate"]["properties"]["attributes"])
    assert attributes["maxProperties"] == ATTRIBUTES_MAX_KEYS
    assert attributes["propertyNames"]["maxLength"] == ATTRIBUTES_KEY_MAX
    assert {"type": "string", "maxLength": ATTRIBUTES_STRING_MAX} in attributes["additionalProperties"]["anyOf"]

    files = schemas["CodeInterpreterResources"]["properties"]["file_ids"]
    assert files["maxItems"] == CODE_INTERPRETER_MAX_FILES
    name = schemas["FunctionDefinition"]["properties"]["name"]
    assert sorted(name["not"]["enum"]) == sorted(RESERVED_FUNCTION_NAMES)
    # On modify the inline `vector_stores` helper is refused, so it is not offered either.
    update_search = _unwrap(schemas["ToolResourcesUpdate"]["properties"]["file_search"])
    assert set(update_search["properties"]) == {"vector_store_ids"}
    assert update_search["additionalProperties"] is False

    limit = next(p for p in doc["paths"]["/v1/assistants"]["get"]["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 100)
    body = doc["paths"]["/v1/assistants"]["post"]["requestBody"]
    assert body["x-max-bytes"] == MAX_JSON_BODY
    upload = doc["paths"]["/v1/files"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload["properties"]["file"]["x-max-bytes"] == 512 * 1024 * 1024  # the default setting

    # Response objects are described field by field (not as an opaque object), every key required.
    for model in ("FileObject", "VectorStore", "Assistant", "Run"):
        assert "id" in schemas[model]["properties"] and "id" in schemas[model]["required"], model
    assert "expires_at" not in schemas["FileObject"]["required"]  # omitted when unset
    assert "reasoning_effort" in schemas["Assistant"]["required"]


def test_the_stated_limits_are_the_enforced_ones(http: httpx.Client) -> None:
    """At each stated limit the request passes, one past it fails naming the parameter."""
    at_limit = {f"k{i}": "v" * METADATA_VALUE_MAX for i in range(METADATA_MAX_KEYS)}
    at_limit["k" * METADATA_KEY_MAX] = at_limit.pop("k0")
    ok(http.post("/v1/assistants", json={"model": "gpt-4o", "name": "n" * 256, "metadata": at_limit}))

    too_many = {**at_limit, "extra": "v"}
    assert_error(http.post("/v1/threads", json={"metadata": too_many}), 400, param="metadata")
    long_key = {"k" * (METADATA_KEY_MAX + 1): "v"}
    assert_error(http.post("/v1/threads", json={"metadata": long_key}), 400, param="metadata")
    long_value = {"k": "v" * (METADATA_VALUE_MAX + 1)}
    assert_error(http.post("/v1/threads", json={"metadata": long_value}), 400, param="metadata")
    assert_error(http.post("/v1/assistants", json={"model": "gpt-4o", "name": "n" * 257}), 400, param="name")
    assert_error(http.get("/v1/assistants", params={"limit": 101}), 400, param="limit")
    reserved = {"type": "function", "function": {"name": sorted(RESERVED_FUNCTION_NAMES)[0]}}
    response = http.post("/v1/assistants", json={"model": "gpt-4o", "tools": [reserved]})
    assert_error(response, 400, param="tools[0].function.name")


@pytest.fixture(scope="module")
def small_uploads(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Callable[..., LiveServer]
) -> LiveServer:
    return launch(request, tmp_path_factory, "sqlite", env={"ASSISTD_MAX_UPLOAD_BYTES": "4096"})


def test_openapi_upload_size_is_the_configured_one(small_uploads: LiveServer) -> None:
    with httpx.Client(base_url=small_uploads.url, headers={"Authorization": "Bearer k"}, timeout=30) as c:
        doc = c.get("/openapi.json").json()
        form = doc["paths"]["/v1/files"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert form["properties"]["file"]["x-max-bytes"] == 4096
        assert form["properties"]["purpose"].get("enum")  # enums need no length
        too_big = c.post("/v1/files", files={"file": ("f.txt", b"x" * 5000)}, data={"purpose": "assistants"})
        assert too_big.status_code == 413
        fits = c.post("/v1/files", files={"file": ("f.txt", b"x" * 4096)}, data={"purpose": "assistants"})
        assert fits.status_code == 200, fits.text
    assert MAX_FIELD_BYTES == 64 * 1024
