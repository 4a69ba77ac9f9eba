"""Numbers past 64 bits in free-form JSON are stored and sent on faithfully; numbers that cannot be kept
(NaN, Infinity, 1e400, integers too long to print) are a 400 naming the parameter. Never a 500 (issue 12,
item 7)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from apihelpers import assert_error

from assistd.testing.fake_upstream import FakeUpstream, Reply

BIG = 2**70 + 1  # not a power of two: a float cannot hold it
SMALL = -(2**70) - 3
SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer", "minimum": SMALL, "maximum": BIG, "default": 2**64}},
    "x-big": [BIG, SMALL, 2**64, -(2**63) - 1, 10**40],
}
TOOL = {"type": "function", "function": {"name": "count", "parameters": SCHEMA}}
FORMAT = {"type": "json_schema", "json_schema": {"name": "counted", "schema": SCHEMA}}


def post(http: httpx.Client, path: str, body: Any) -> httpx.Response:
    # Python's json writes any integer exactly, as the SDKs do.
    return http.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_assistant_keeps_big_integers_in_tools_and_response_format(http: httpx.Client) -> None:
    created = ok(post(http, "/v1/assistants", {"model": "gpt-4o", "tools": [TOOL], "response_format": FORMAT}))
    assert created["tools"][0]["function"]["parameters"] == SCHEMA
    assert created["response_format"]["json_schema"]["schema"] == SCHEMA

    again = ok(http.get(f"/v1/assistants/{created['id']}"))
    assert again["tools"][0]["function"]["parameters"] == SCHEMA
    assert again["response_format"]["json_schema"]["schema"] == SCHEMA
    listed = ok(http.get("/v1/assistants", params={"limit": 100}))
    (mine,) = [a for a in listed["data"] if a["id"] == created["id"]]
    assert mine["tools"][0]["function"]["parameters"]["x-big"] == SCHEMA["x-big"]

    changed = {**SCHEMA, "x-more": [2**100]}
    tool = {"type": "function", "function": {"name": "count", "parameters": changed}}
    updated = ok(post(http, f"/v1/assistants/{created['id']}", {"tools": [tool]}))
    assert updated["tools"][0]["function"]["parameters"] == changed
    assert ok(http.get(f"/v1/assistants/{created['id']}"))["tools"][0]["function"]["parameters"] == changed


def test_run_with_big_integers_in_tools_and_response_format(http: httpx.Client, fake: FakeUpstream) -> None:
    model = f"big-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply.say('{"n": 1}'))
    assistant = ok(post(http, "/v1/assistants", {"model": model}))
    thread = ok(post(http, "/v1/threads", {"messages": [{"role": "user", "content": "count"}]}))
    body = {"assistant_id": assistant["id"], "tools": [TOOL], "response_format": FORMAT}
    run = ok(post(http, f"/v1/threads/{thread['id']}/runs", body))
    assert run["tools"][0]["function"]["parameters"] == SCHEMA
    assert run["response_format"]["json_schema"]["schema"] == SCHEMA

    for _ in range(200):
        run = ok(http.get(f"/v1/threads/{thread['id']}/runs/{run['id']}"))
        if run["status"] not in ("queued", "in_progress"):
            break
        time.sleep(0.05)
    assert run["status"] == "completed", run["last_error"]
    assert run["tools"][0]["function"]["parameters"] == SCHEMA
    listed = ok(http.get(f"/v1/threads/{thread['id']}/runs"))
    assert listed["data"][0]["response_format"]["json_schema"]["schema"] == SCHEMA

    # The model backend got the documents exactly.
    (sent,) = fake.requests(model)
    assert sent["tools"][0]["function"]["parameters"] == SCHEMA
    assert sent["response_format"]["json_schema"]["schema"] == SCHEMA


def test_streamed_thread_and_run_with_big_integers(http: httpx.Client, fake: FakeUpstream) -> None:
    model = f"big-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply.call("count", {"n": BIG}))
    assistant = ok(post(http, "/v1/assistants", {"model": model}))
    body = {
        "assistant_id": assistant["id"],
        "thread": {"messages": [{"role": "user", "content": "count"}]},
        "tools": [TOOL],
        "stream": True,
    }
    with http.stream(
        "POST", "/v1/threads/runs", content=json.dumps(body), headers={"content-type": "application/json"}
    ) as response:
        assert response.status_code == 200
        text = response.read().decode()
    events = [block for block in text.split("\n\n") if block.startswith("event: ")]
    names = [block.split("\n", 1)[0].removeprefix("event: ") for block in events]
    assert names[0] == "thread.created" and "thread.run.requires_action" in names and names[-1] == "done", names
    requires = next(b for b in events if b.startswith("event: thread.run.requires_action"))
    run = json.loads(requires.split("data: ", 1)[1])
    assert run["tools"][0]["function"]["parameters"] == SCHEMA
    (call,) = run["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert json.loads(call["function"]["arguments"]) == {"n": BIG}


FUNCTION_WITH = (
    '{"model": "gpt-4o", "tools": [{"type": "function", "function": {"name": "f", "parameters": {"x": %s}}}]}'
)
SCHEMA_WITH = (
    '{"model": "gpt-4o", "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": %s}}}'
)
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("literal", ["1e400", "-1E+999", "1" * 400 + ".5"], ids=["1e400", "-1E+999", "long-float"])
def test_floats_past_a_double_are_a_400_naming_the_parameter(http: httpx.Client, literal: str) -> None:
    response = http.post("/v1/assistants", content=FUNCTION_WITH % literal, headers=JSON)
    error = assert_error(response, 400, param="tools[0].function.parameters.x", code="invalid_value")
    assert "outside the range" in error["message"]
    response = http.post("/v1/assistants", content=SCHEMA_WITH % f'{{"y": [1, {literal}]}}', headers=JSON)
    assert_error(response, 400, param="response_format.json_schema.schema.y[1]", code="invalid_value")


def test_an_integer_too_long_to_print_is_a_400(http: httpx.Client) -> None:
    response = http.post("/v1/assistants", content=FUNCTION_WITH % ("1" * 5000), headers=JSON)
    assert_error(response, 400)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(http: httpx.Client, literal: str) -> None:
    response = http.post("/v1/assistants", content=SCHEMA_WITH % f'{{"x": {literal}}}', headers=JSON)
    assert_error(response, 400, contains="could not parse the JSON body")
    # In a number field too: OpenAI's parser has no NaN either.
    response = http.post("/v1/assistants", content=f'{{"model": "gpt-4o", "temperature": {literal}}}', headers=JSON)
    assert_error(response, 400)


def test_token_budgets_past_64_bits_are_a_400(http: httpx.Client) -> None:
    assistant = ok(post(http, "/v1/assistants", {"model": "gpt-4o"}))
    thread = ok(post(http, "/v1/threads", {}))
    response = post(
        http, f"/v1/threads/{thread['id']}/runs", {"assistant_id": assistant["id"], "max_prompt_tokens": 2**70}
    )
    assert_error(response, 400, param="max_prompt_tokens", code="above_max_value")


def test_strings_that_look_like_numbers_are_untouched(http: httpx.Client) -> None:
    """The pre-check for odd numbers also fires on text; such bodies must still be accepted as they are."""
    text = "NaN Infinity 1e400 " + "9" * 400
    created = ok(post(http, "/v1/assistants", {"model": "gpt-4o", "instructions": text, "metadata": {"k": "1e999"}}))
    assert ok(http.get(f"/v1/assistants/{created['id']}"))["instructions"] == text
