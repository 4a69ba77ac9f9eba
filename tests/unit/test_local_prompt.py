"""The local backend's prompt shaping and call schemas (pure functions; the model itself is in tests/local)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from assistd.providers.base import ChatRequest
from assistd.providers.local import CALL, MESSAGE, calls_schema, template_messages

TOOL = {
    "type": "function",
    "function": {
        "name": "f",
        "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
    },
}
OTHER = {"type": "function", "function": {"name": "g", "parameters": {"type": "object", "properties": {}}}}


def test_tool_history_becomes_roles_every_template_renders() -> None:
    request = ChatRequest(
        model="m",
        tools=[TOOL],
        tool_choice="auto",
        messages=[
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "u"}}],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        ],
    )
    out = template_messages(request)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[0]["content"].startswith("Be brief.") and '"name": "f"' in out[0]["content"]
    assert CALL in out[0]["content"] and MESSAGE in out[0]["content"]
    assert out[1]["content"] == "hi"
    assert out[2]["content"] == CALL + " " + json.dumps({"tool_calls": [{"name": "f", "arguments": {"x": 1}}]})
    assert out[3]["content"] == "Result of f: 42"


def test_tool_choice_none_offers_no_tools() -> None:
    request = ChatRequest(model="m", tools=[TOOL], tool_choice="none", messages=[{"role": "user", "content": "hi"}])
    assert template_messages(request) == [{"role": "user", "content": "hi"}]


def test_calls_schema_accepts_only_offered_functions_with_valid_arguments() -> None:
    schema = calls_schema([TOOL, OTHER], only=None, max_calls=4)
    jsonschema.validate({"tool_calls": [{"name": "f", "arguments": {"x": 1}}, {"name": "g", "arguments": {}}]}, schema)
    for bad in (
        {"tool_calls": []},
        {"tool_calls": [{"name": "h", "arguments": {}}]},
        {"tool_calls": [{"name": "f", "arguments": {"x": "one"}}]},
        {"tool_calls": [{"name": "f", "arguments": {"x": 1}}] * 5},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_named_choice_allows_that_function_once() -> None:
    schema = calls_schema([TOOL, OTHER], only="g", max_calls=1)
    jsonschema.validate({"tool_calls": [{"name": "g", "arguments": {}}]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tool_calls": [{"name": "f", "arguments": {"x": 1}}]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tool_calls": [{"name": "g", "arguments": {}}] * 2}, schema)
