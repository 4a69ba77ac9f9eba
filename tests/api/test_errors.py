"""Raw HTTP against a live server: every rejected request gets OpenAI's exact error envelope and
changes nothing; nullable fields accept null; unknown routes and methods answer in the envelope."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from apihelpers import assert_error

from assistd.testing.server import LiveServer

NOPE = {
    "assistant": "asst_nope0000000000000000000",
    "thread": "thread_nope000000000000000000",
    "message": "msg_nope000000000000000000000",
    "file": "file-nope000000000000000000000",
}


def create_assistant(http: httpx.Client, **body: Any) -> dict[str, Any]:
    r = http.post("/v1/assistants", json={"model": "gpt-4o", **body})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def create_thread(http: httpx.Client, **body: Any) -> dict[str, Any]:
    r = http.post("/v1/threads", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def create_message(http: httpx.Client, thread_id: str, **body: Any) -> dict[str, Any]:
    r = http.post(f"/v1/threads/{thread_id}/messages", json={"role": "user", "content": "hi", **body})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def upload(http: httpx.Client, data: bytes = b"hello", purpose: str = "user_data") -> dict[str, Any]:
    r = http.post("/v1/files", files={"file": ("a.txt", data)}, data={"purpose": purpose})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def all_assistants(http: httpx.Client) -> list[dict[str, Any]]:
    r = http.get("/v1/assistants", params={"limit": 100})
    assert r.status_code == 200
    return r.json()["data"]  # type: ignore[no-any-return]


@pytest.fixture()
def objects(http: httpx.Client) -> Iterator[dict[str, str]]:
    asst = create_assistant(http, name="fixture", metadata={"k": "v"})
    thread = create_thread(http, metadata={"k": "v"})
    msg = create_message(http, thread["id"], metadata={"k": "v"})
    file = upload(http)
    yield {"assistant": asst["id"], "thread": thread["id"], "message": msg["id"], "file": file["id"]}
    http.delete(f"/v1/assistants/{asst['id']}")
    http.delete(f"/v1/threads/{thread['id']}")
    http.delete(f"/v1/files/{file['id']}")


def state(http: httpx.Client, ids: dict[str, str]) -> dict[str, Any]:
    """Everything a rejected request could have touched."""
    t = ids["thread"]
    return {
        "assistants": http.get("/v1/assistants", params={"limit": 100}).json(),
        "assistant": http.get(f"/v1/assistants/{ids['assistant']}").json(),
        "thread": http.get(f"/v1/threads/{t}").json(),
        "messages": http.get(f"/v1/threads/{t}/messages", params={"limit": 100}).json(),
        "files": http.get("/v1/files").json(),
    }


# --- unknown ids ---------------------------------------------------------------------------------


def unknown_id_cases(ids: dict[str, str]) -> list[tuple[str, str, dict[str, Any] | None, str, str]]:
    """(method, path, json body, kind, id) where the id named in the message is unknown."""
    a, t, m, f = NOPE["assistant"], NOPE["thread"], NOPE["message"], NOPE["file"]
    real_t = ids["thread"]
    return [
        ("GET", f"/v1/assistants/{a}", None, "assistant", a),
        ("POST", f"/v1/assistants/{a}", {"name": "x"}, "assistant", a),
        ("POST", f"/v1/assistants/{a}", {}, "assistant", a),
        ("DELETE", f"/v1/assistants/{a}", None, "assistant", a),
        ("GET", f"/v1/threads/{t}", None, "thread", t),
        ("POST", f"/v1/threads/{t}", {"metadata": {"a": "b"}}, "thread", t),
        ("DELETE", f"/v1/threads/{t}", None, "thread", t),
        ("POST", f"/v1/threads/{t}/messages", {"role": "user", "content": "x"}, "thread", t),
        ("GET", f"/v1/threads/{t}/messages", None, "thread", t),
        ("GET", f"/v1/threads/{t}/messages/{m}", None, "thread", t),
        ("POST", f"/v1/threads/{t}/messages/{m}", {"metadata": {}}, "thread", t),
        ("DELETE", f"/v1/threads/{t}/messages/{m}", None, "thread", t),
        ("GET", f"/v1/threads/{real_t}/messages/{m}", None, "message", m),
        ("POST", f"/v1/threads/{real_t}/messages/{m}", {"metadata": {"a": "b"}}, "message", m),
        ("DELETE", f"/v1/threads/{real_t}/messages/{m}", None, "message", m),
        ("GET", f"/v1/files/{f}", None, "file", f),
        ("DELETE", f"/v1/files/{f}", None, "file", f),
        ("GET", f"/v1/files/{f}/content", None, "file", f),
        # ids of the wrong kind, and ids that look like nothing at all
        ("GET", f"/v1/assistants/{ids['thread']}", None, "assistant", ids["thread"]),
        ("GET", f"/v1/files/{ids['assistant']}", None, "file", ids["assistant"]),
        ("GET", "/v1/assistants/x", None, "assistant", "x"),
        ("GET", "/v1/threads/%27%3B%20drop%20table%20threads", None, "thread", "'; drop table threads"),
    ]


def test_unknown_ids_answer_404_naming_the_id(http: httpx.Client, objects: dict[str, str]) -> None:
    before = state(http, objects)
    for method, path, body, kind, object_id in unknown_id_cases(objects):
        r = http.request(method, path, json=body) if body is not None else http.request(method, path)
        assert_error(r, 404, f"No {kind} found with id '{object_id}'.", param=None, code=None)
    assert state(http, objects) == before


def test_message_of_another_thread_is_not_found(http: httpx.Client, objects: dict[str, str]) -> None:
    other = create_thread(http)
    m = objects["message"]
    for method in ("GET", "POST", "DELETE"):
        r = http.request(
            method,
            f"/v1/threads/{other['id']}/messages/{m}",
            json={"metadata": {"x": "y"}} if method == "POST" else None,
        )
        assert_error(r, 404, f"No message found with id '{m}'.", param=None, code=None)
    r = http.get(f"/v1/threads/{objects['thread']}/messages/{m}")
    assert r.status_code == 200 and r.json()["metadata"] == {"k": "v"}


def test_deleted_objects_are_unknown(http: httpx.Client) -> None:
    asst = create_assistant(http)
    thread = create_thread(http)
    msg = create_message(http, thread["id"])
    file = upload(http)
    assert http.delete(f"/v1/threads/{thread['id']}/messages/{msg['id']}").json() == {
        "id": msg["id"],
        "object": "thread.message.deleted",
        "deleted": True,
    }
    assert_error(
        http.get(f"/v1/threads/{thread['id']}/messages/{msg['id']}"), 404, f"No message found with id '{msg['id']}'."
    )
    assert_error(
        http.delete(f"/v1/threads/{thread['id']}/messages/{msg['id']}"), 404, f"No message found with id '{msg['id']}'."
    )
    for kind, path, obj, deleted in [
        ("assistant", "/v1/assistants/", asst, "assistant.deleted"),
        ("thread", "/v1/threads/", thread, "thread.deleted"),
        ("file", "/v1/files/", file, "file"),
    ]:
        assert http.delete(path + obj["id"]).json() == {"id": obj["id"], "object": deleted, "deleted": True}
        assert_error(http.get(path + obj["id"]), 404, f"No {kind} found with id '{obj['id']}'.")
        assert_error(http.delete(path + obj["id"]), 404, f"No {kind} found with id '{obj['id']}'.")
    assert_error(http.get(f"/v1/threads/{thread['id']}/messages"), 404, f"No thread found with id '{thread['id']}'.")


# --- bodies that are not JSON objects ------------------------------------------------------------

BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)


def json_endpoints(ids: dict[str, str]) -> list[str]:
    t = ids["thread"]
    return [
        "/v1/assistants",
        f"/v1/assistants/{ids['assistant']}",
        "/v1/threads",
        f"/v1/threads/{t}",
        f"/v1/threads/{t}/messages",
        f"/v1/threads/{t}/messages/{ids['message']}",
    ]


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"{'model': 'gpt-4o'}",
        b'{"model": "gpt-4o",}',
        b"model=gpt-4o",
        b"\xff\xfe\x00",
        b'{"model": "gpt-4o"} trailing',
    ],
)
def test_bad_json_is_400(http: httpx.Client, objects: dict[str, str], raw: bytes) -> None:
    before = state(http, objects)
    for path in json_endpoints(objects):
        r = http.post(path, content=raw, headers={"content-type": "application/json"})
        assert_error(r, 400, BAD_JSON, param=None, code=None)
    assert state(http, objects) == before


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"[]", "an array"),
        (b'[{"model": "gpt-4o"}]', "an array"),
        (b'"gpt-4o"', "a string"),
        (b"1", "an integer"),
        (b"null", "null"),
        (b"true", "a boolean"),
    ],
)
def test_non_object_body_is_400(http: httpx.Client, objects: dict[str, str], raw: bytes, kind: str) -> None:
    before = state(http, objects)
    for path in json_endpoints(objects):
        r = http.post(path, content=raw, headers={"content-type": "application/json"})
        assert_error(
            r,
            400,
            f"Invalid type for request body: expected an object, but got {kind} instead.",
            param=None,
            code="invalid_type",
        )
    assert state(http, objects) == before


def test_empty_body_means_no_fields(http: httpx.Client, objects: dict[str, str]) -> None:
    assert_error(
        http.post("/v1/assistants", content=b""),
        400,
        "Missing required parameter: 'model'.",
        param="model",
        code="missing_required_parameter",
    )
    r = http.post("/v1/threads", content=b"")
    assert r.status_code == 200 and r.json()["object"] == "thread"
    r = http.post(f"/v1/assistants/{objects['assistant']}", content=b"")
    assert r.status_code == 200 and r.json()["name"] == "fixture"


# --- field validation ----------------------------------------------------------------------------

FN = {"type": "function", "function": {"name": "ok"}}

ASSISTANT_REJECTS: list[tuple[dict[str, Any], str, str, str | None]] = [
    # (body fields, param, code, exact message or None)
    ({"model": 5}, "model", "invalid_type", "Invalid type for 'model': expected a string, but got an integer instead."),
    ({"model": ["gpt-4o"]}, "model", "invalid_type", None),
    ({"name": 1}, "name", "invalid_type", "Invalid type for 'name': expected a string, but got an integer instead."),
    ({"description": {}}, "description", "invalid_type", None),
    ({"instructions": True}, "instructions", "invalid_type", None),
    (
        {"metadata": "k=v"},
        "metadata",
        "invalid_type",
        "Invalid type for 'metadata': expected an object, but got a string instead.",
    ),
    ({"metadata": {"k": 1}}, "metadata.k", "invalid_type", None),
    ({"tools": {"type": "code_interpreter"}}, "tools", "invalid_type", None),
    (
        {"temperature": "1"},
        "temperature",
        "invalid_type",
        "Invalid type for 'temperature': expected a decimal, but got a string instead.",
    ),
    ({"top_p": False}, "top_p", "invalid_type", None),
    ({"tool_resources": []}, "tool_resources", "invalid_type", None),
    (
        {"name": "n" * 257},
        "name",
        "string_above_max_length",
        "Invalid 'name': string too long. Expected a string with maximum length 256, but got a string with length "
        "257 instead.",
    ),
    (
        {"description": "d" * 513},
        "description",
        "string_above_max_length",
        "Invalid 'description': string too long. Expected a string with maximum length 512, but got a string with "
        "length 513 instead.",
    ),
    (
        {"instructions": "i" * 256_001},
        "instructions",
        "string_above_max_length",
        "Invalid 'instructions': string too long. Expected a string with maximum length 256000, but got a string "
        "with length 256001 instead.",
    ),
    (
        {"metadata": {f"k{i}": "v" for i in range(17)}},
        "metadata",
        "object_above_max_properties",
        "Invalid 'metadata': too many properties. Expected an object with at most 16 properties, but got an "
        "object with 17 properties instead.",
    ),
    ({"metadata": {"k" * 65: "v"}}, "metadata", "string_above_max_length", None),
    ({"metadata": {"k": "v" * 513}}, "metadata", "string_above_max_length", None),
    (
        {"tools": [{"type": "code_interpreter"}] * 129},
        "tools",
        "array_above_max_length",
        "Invalid 'tools': array too long. Expected an array with maximum length 128, but got an array with length "
        "129 instead.",
    ),
    (
        {"tools": [FN, {"type": "function", "function": {"name": "get weather"}}]},
        "tools[1].function.name",
        "invalid_value",
        "Invalid 'tools[1].function.name': string does not match pattern. Expected a string that "
        "matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.",
    ),
    (
        {"tools": [{"type": "function", "function": {"name": "x" * 65}}]},
        "tools[0].function.name",
        "invalid_value",
        None,
    ),
    (
        {"tools": [{"type": "function", "function": {"name": "file_search"}}]},
        "tools[0].function.name",
        "invalid_value",
        None,
    ),
    (
        {"tools": [{"type": "function"}]},
        "tools[0].function",
        "missing_required_parameter",
        "Missing required parameter: 'tools[0].function'.",
    ),
    ({"tools": [{"type": "browser"}]}, "tools[0]", "invalid_value", None),
    (
        {"tools": [{"type": "file_search", "file_search": {"max_num_results": 0}}]},
        "tools[0].file_search.max_num_results",
        "below_min_value",
        None,
    ),
    (
        {"temperature": 3},
        "temperature",
        "above_max_value",
        "Invalid 'temperature': number too large. Expected a value <= 2.0, but got 3 instead.",
    ),
    ({"temperature": -1}, "temperature", "below_min_value", None),
    (
        {"top_p": 2},
        "top_p",
        "above_max_value",
        "Invalid 'top_p': number too large. Expected a value <= 1.0, but got 2 instead.",
    ),
    ({"response_format": "json"}, "response_format", "invalid_value", None),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema", "missing_required_parameter", None),
    ({"reasoning_effort": "extreme"}, "reasoning_effort", "invalid_value", None),
    (
        {"tool_resources": {"code_interpreter": {"file_ids": [f"file-{i}" for i in range(21)]}}},
        "tool_resources.code_interpreter.file_ids",
        "array_above_max_length",
        None,
    ),
    (
        {"tool_resources": {"code_interpreter": {"file_ids": ["file-nope"]}}},
        "tool_resources.code_interpreter.file_ids",
        "invalid_value",
        "Invalid 'tool_resources.code_interpreter.file_ids': no file found with id 'file-nope'.",
    ),
    ({"foo": "bar"}, "foo", "unknown_parameter", "Unrecognized request argument supplied: foo"),
    (
        {"tools": [{"type": "function", "function": {"name": "f", "foo": 1}}]},
        "tools[0].function.foo",
        "unknown_parameter",
        "Unknown parameter: 'tools[0].function.foo'.",
    ),
]


@pytest.mark.parametrize(
    ("fields", "param", "code", "message"), ASSISTANT_REJECTS, ids=[f"{r[1]}-{r[2]}" for r in ASSISTANT_REJECTS]
)
def test_assistant_create_and_modify_reject(
    http: httpx.Client, objects: dict[str, str], fields: dict[str, Any], param: str, code: str, message: str | None
) -> None:
    before = state(http, objects)
    create_body = {"model": "gpt-4o", **fields}
    assert_error(http.post("/v1/assistants", json=create_body), 400, message, param=param, code=code)
    assert_error(http.post(f"/v1/assistants/{objects['assistant']}", json=fields), 400, message, param=param, code=code)
    assert state(http, objects) == before


def test_limits_are_inclusive(http: httpx.Client) -> None:
    asst = create_assistant(
        http,
        name="n" * 256,
        description="d" * 512,
        instructions="i" * 256_000,
        metadata={f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)},
        tools=[{"type": "function", "function": {"name": f"f{i}"}} for i in range(128)],
        temperature=2,
        top_p=0,
    )
    assert (len(asst["name"]), len(asst["description"]), len(asst["instructions"])) == (256, 512, 256_000)
    assert len(asst["metadata"]) == 16 and len(asst["tools"]) == 128
    assert (asst["temperature"], asst["top_p"]) == (2, 0)
    assert http.get(f"/v1/assistants/{asst['id']}").json() == asst
    http.delete(f"/v1/assistants/{asst['id']}")


THREAD_REJECTS: list[tuple[str, dict[str, Any], str, str]] = [
    # (which endpoint, body, param, code)
    ("thread", {"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "object_above_max_properties"),
    ("thread", {"metadata": {"k": "v" * 513}}, "metadata", "string_above_max_length"),
    (
        "thread",
        {"tool_resources": {"file_search": {"vector_store_ids": ["vs_a", "vs_b"]}}},
        "tool_resources.file_search.vector_store_ids",
        "array_above_max_length",
    ),
    ("thread", {"foo": 1}, "foo", "unknown_parameter"),
    (
        "thread_create",
        {"messages": [{"role": "user", "content": "ok"}, {"role": "system", "content": "x"}]},
        "messages[1].role",
        "invalid_value",
    ),
    ("thread_create", {"messages": [{"role": "user"}]}, "messages[0].content", "missing_required_parameter"),
    ("thread_create", {"messages": {"role": "user", "content": "x"}}, "messages", "invalid_type"),
    ("thread_modify", {"messages": []}, "messages", "unknown_parameter"),
    ("message_create", {"role": "user", "content": 5}, "content", "invalid_value"),
    ("message_create", {"role": "user", "content": []}, "content", "empty_array"),
    ("message_create", {"role": "user", "content": [{"type": "video"}]}, "content[0]", "invalid_value"),
    (
        "message_create",
        {
            "role": "user",
            "content": "x",
            "attachments": [{"file_id": "file-nope", "tools": [{"type": "code_interpreter"}]}],
        },
        "attachments",
        "invalid_value",
    ),
    (
        "message_create",
        {"role": "user", "content": "x", "metadata": {"k" * 65: "v"}},
        "metadata",
        "string_above_max_length",
    ),
    ("message_create", {"role": "tool", "content": "x"}, "role", "invalid_value"),
    ("message_create", {"content": "x"}, "role", "missing_required_parameter"),
    ("message_create", {"role": "user", "content": "x", "foo": 1}, "foo", "unknown_parameter"),
    ("message_modify", {"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "object_above_max_properties"),
    ("message_modify", {"content": "new"}, "content", "unknown_parameter"),
    ("message_modify", {"metadata": "x"}, "metadata", "invalid_type"),
]


@pytest.mark.parametrize(
    ("where", "body", "param", "code"), THREAD_REJECTS, ids=[f"{r[0]}-{r[2]}-{r[3]}" for r in THREAD_REJECTS]
)
def test_thread_and_message_reject(
    http: httpx.Client, objects: dict[str, str], where: str, body: dict[str, Any], param: str, code: str
) -> None:
    t, m = objects["thread"], objects["message"]
    paths = {
        "thread": ["/v1/threads", f"/v1/threads/{t}"],
        "thread_create": ["/v1/threads"],
        "thread_modify": [f"/v1/threads/{t}"],
        "message_create": [f"/v1/threads/{t}/messages"],
        "message_modify": [f"/v1/threads/{t}/messages/{m}"],
    }[where]
    before = state(http, objects)
    for path in paths:
        assert_error(http.post(path, json=body), 400, param=param, code=code)
    assert state(http, objects) == before


@pytest.mark.parametrize(
    ("query", "param", "code"),
    [
        ({"limit": 0}, "limit", "below_min_value"),
        ({"limit": 101}, "limit", "above_max_value"),
        ({"limit": "ten"}, "limit", None),
        ({"order": "sideways"}, "order", "invalid_value"),
    ],
)
def test_list_params_rejected(
    http: httpx.Client, objects: dict[str, str], query: dict[str, Any], param: str, code: str | None
) -> None:
    for path in ("/v1/assistants", f"/v1/threads/{objects['thread']}/messages"):
        assert_error(http.get(path, params=query), 400, param=param, code=code if code else Any)


def test_files_list_limit_goes_to_10000(http: httpx.Client) -> None:
    assert http.get("/v1/files", params={"limit": 10_000}).status_code == 200
    assert_error(http.get("/v1/files", params={"limit": 10_001}), 400, param="limit", code="above_max_value")


# --- nulls ---------------------------------------------------------------------------------------

NULLABLE = ["name", "description", "instructions", "metadata", "tool_resources", "response_format"]


def test_nulls_accepted_on_assistant_create(http: httpx.Client) -> None:
    asst = create_assistant(http, **{k: None for k in NULLABLE}, temperature=None, top_p=None, tools=None)
    assert asst["name"] is None and asst["description"] is None and asst["instructions"] is None
    assert asst["metadata"] == {} and asst["tool_resources"] == {} and asst["tools"] == []
    assert asst["response_format"] == "auto"
    assert (asst["temperature"], asst["top_p"]) == (1.0, 1.0)
    assert http.get(f"/v1/assistants/{asst['id']}").json() == asst


@pytest.mark.parametrize("field", NULLABLE)
def test_null_accepted_on_assistant_create_one_at_a_time(http: httpx.Client, field: str) -> None:
    asst = create_assistant(http, **{field: None})
    assert asst[field] in (None, {}, "auto")


def test_nulls_accepted_on_assistant_modify(http: httpx.Client) -> None:
    asst = create_assistant(
        http,
        name="n",
        description="d",
        instructions="i",
        metadata={"a": "b"},
        response_format={"type": "json_object"},
        tool_resources={"code_interpreter": {"file_ids": []}},
    )
    assert asst["response_format"] == {"type": "json_object"}
    r = http.post(f"/v1/assistants/{asst['id']}", json={k: None for k in NULLABLE})
    assert r.status_code == 200, r.text
    after = r.json()
    # Nullable strings are cleared; response_format and tool_resources fall back to their defaults.
    assert after["name"] is None and after["description"] is None and after["instructions"] is None
    assert after["response_format"] == "auto"
    assert after["tool_resources"] == {}
    assert isinstance(after["metadata"], dict)
    assert after["model"] == "gpt-4o" and after["id"] == asst["id"]
    assert http.get(f"/v1/assistants/{asst['id']}").json() == after


def test_nulls_accepted_on_threads_and_messages(http: httpx.Client) -> None:
    thread = create_thread(http, metadata=None, tool_resources=None, messages=None)
    assert thread["metadata"] == {} and thread["tool_resources"] == {}
    r = http.post(f"/v1/threads/{thread['id']}", json={"metadata": None, "tool_resources": None})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == thread["id"]
    msg = create_message(http, thread["id"], metadata=None, attachments=None)
    assert msg["metadata"] == {}
    r = http.post(f"/v1/threads/{thread['id']}/messages/{msg['id']}", json={"metadata": None})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == msg["id"]


# --- routes, methods, headers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/v1/nope", "/v1/assistant", "/v1/assistants/a/b", "/nope", "/v1", "/v1/threads/t/runs/r/steps/s/extra"]
)
def test_unknown_route_is_404_envelope(http: httpx.Client, path: str) -> None:
    for method in ("GET", "POST", "DELETE"):
        r = http.request(method, path)
        assert_error(r, 404, f"Invalid URL ({method} {path})", param=None, code=None)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/assistants"),
        ("DELETE", "/v1/assistants"),
        ("PATCH", "/v1/assistants/asst_x"),
        ("PUT", "/v1/threads/thread_x"),
        ("GET", "/v1/threads"),
        ("DELETE", "/v1/threads/t/messages"),
        ("PATCH", "/v1/threads/t/messages/m"),
        ("DELETE", "/v1/files"),
        ("POST", "/v1/files/file-x"),
        ("POST", "/v1/files/file-x/content"),
        ("DELETE", "/v1/files/file-x/content"),
    ],
)
def test_wrong_method_is_405_envelope(http: httpx.Client, method: str, path: str) -> None:
    r = http.request(method, path)
    assert_error(r, 405, f"Invalid method for URL ({method} {path})", param=None, code=None)


def test_beta_header_accepted_not_required(http: httpx.Client) -> None:
    no_beta = {k: v for k, v in http.headers.items() if k.lower() != "openai-beta"}
    with httpx.Client(base_url=http.base_url, headers=no_beta) as bare:
        assert "openai-beta" not in {k.lower() for k in bare.headers}
        r = bare.post("/v1/assistants", json={"model": "gpt-4o"})
        assert r.status_code == 200, r.text
        assert bare.get(f"/v1/assistants/{r.json()['id']}").status_code == 200
        assert bare.post("/v1/threads", json={}).status_code == 200
        assert bare.get("/v1/files").status_code == 200
    # With it, files routes too (the SDK does not send it there, but other clients may).
    assert http.get("/v1/files").status_code == 200
    assert http.get("/v1/assistants", headers={"OpenAI-Beta": "assistants=v1"}).status_code == 200


def test_success_is_200_json_and_lists_have_the_envelope(http: httpx.Client, objects: dict[str, str]) -> None:
    for path in ("/v1/assistants", f"/v1/threads/{objects['thread']}/messages", "/v1/files"):
        r = http.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        body = r.json()
        assert set(body) == {"object", "data", "first_id", "last_id", "has_more"}
        assert body["object"] == "list"


def test_error_bodies_are_json_parseable_with_odd_ids(http: httpx.Client) -> None:
    odd = 'a"b\\c\u00e9'
    r = http.get("/v1/assistants/" + httpx.URL("/" + odd).raw_path.decode()[1:])
    error = assert_error(r, 404)
    assert error["message"] == f"No assistant found with id '{odd}'."
    json.dumps(error)


# --- NUL characters (PostgreSQL text cannot hold them: once a 500 there) -------------------------

NUL_BODIES: list[tuple[str, bytes, str]] = [
    ("/v1/assistants", b'{"model": "gpt\\u0000"}', "model"),
    ("/v1/assistants", b'{"model": "gpt-4o", "description": "a\\u0000b"}', "description"),
    ("/v1/assistants", b'{"model": "gpt-4o", "metadata": {"k": "\\u0000"}}', "metadata.k"),
    ("/v1/assistants", b'{"model": "gpt-4o", "metadata": {"k\\u0000": "v"}}', "metadata"),
    (
        "/v1/assistants",
        b'{"model": "gpt-4o", "tools": [{"type": "function", "function": {"name": "f", "description": "\\u0000"}}]}',
        "tools[0].function.description",
    ),
    ("/v1/threads", b'{"messages": [{"role": "user", "content": "hi\\u0000"}]}', "messages[0].content"),
]


@pytest.mark.parametrize(("path", "raw", "param"), NUL_BODIES, ids=[b[2] for b in NUL_BODIES])
def test_nul_in_json_strings_is_400(
    http: httpx.Client, objects: dict[str, str], path: str, raw: bytes, param: str
) -> None:
    before = state(http, objects)
    r = http.post(path, content=raw, headers={"content-type": "application/json"})
    assert_error(r, 400, param=param, code="invalid_value", contains="NUL")
    assert state(http, objects) == before
    # An escaped backslash followed by "u0000" is ordinary text, not a NUL.
    r = http.post(
        "/v1/assistants",
        content=b'{"model": "gpt-4o", "name": "\\\\u0000"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200 and r.json()["name"] == "\\u0000"
    http.delete(f"/v1/assistants/{r.json()['id']}")


def test_nul_in_path_and_query_is_400(http: httpx.Client, objects: dict[str, str]) -> None:
    t = objects["thread"]
    for path, param in [
        ("/v1/assistants/a%00b", "assistant_id"),
        ("/v1/threads/a%00b", "thread_id"),
        (f"/v1/threads/{t}/messages/m%00", "message_id"),
        ("/v1/files/file-%00", "file_id"),
        ("/v1/assistants?after=a%00b", "after"),
        ("/v1/assistants?before=%00", "before"),
        ("/v1/files?purpose=user_data%00", "purpose"),
        ("/v1/files?after=%00", "after"),
        (f"/v1/threads/{t}/messages?run_id=r%00", "run_id"),
    ]:
        assert_error(http.get(path), 400, param=param, code="invalid_value", contains="NUL")


def test_nul_in_upload_filename_is_400(http: httpx.Client, server: LiveServer) -> None:
    from apihelpers import blob_files

    before = (http.get("/v1/files").json(), blob_files(server.data_dir))
    boundary = "nulboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a\x00b.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
    ).encode()
    r = http.post("/v1/files", content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert_error(r, 400, param="file", contains="NUL")
    assert (http.get("/v1/files").json(), blob_files(server.data_dir)) == before
