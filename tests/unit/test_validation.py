"""protocol/validation.py: pydantic errors → OpenAI's message, `param` path and `code` (no server)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from assistd.errors import InvalidRequest
from assistd.protocol.assistants import AssistantCreate, AssistantUpdate
from assistd.protocol.common import ListParams
from assistd.protocol.messages import MessageCreate
from assistd.protocol.threads import ThreadCreate, ThreadUpdate
from assistd.protocol.validation import BAD_JSON_MESSAGE, json_type_name, param_path, to_invalid_request


def reject(model: type[BaseModel], body: Any, *, raw: bytes | None = None, prefix: str = "") -> InvalidRequest:
    """Validate the way the API does (JSON, strict) and return the converted error."""
    data = raw if raw is not None else json.dumps(body).encode()
    with pytest.raises(ValidationError) as info:
        model.model_validate_json(data, strict=True)
    err = to_invalid_request(info.value, prefix)
    assert isinstance(err, InvalidRequest)
    assert err.status == 400
    assert err.type == "invalid_request_error"
    return err


def accept(model: type[BaseModel], body: Any) -> BaseModel:
    return model.model_validate_json(json.dumps(body), strict=True)


# --- param_path ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loc", "prefix", "expected"),
    [
        ((), "", ""),
        (("model",), "", "model"),
        (("tools", 0, "~function", "function", "name"), "", "tools[0].function.name"),
        (
            ("messages", 3, "content", "~parts", 1, "~image_file", "image_file", "file_id"),
            "",
            "messages[3].content[1].image_file.file_id",
        ),
        (("metadata", "[key]"), "", "metadata"),
        ((0,), "", "[0]"),
        (("a", 0, 1, "b"), "", "a[0][1].b"),
        (("name",), "thread", "thread.name"),
        ((2, "role"), "messages", "messages[2].role"),
        (("~auto",), "", ""),
    ],
)
def test_param_path(loc: tuple[int | str, ...], prefix: str, expected: str) -> None:
    assert param_path(loc, prefix) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null"),
        (True, "a boolean"),
        (False, "a boolean"),
        (0, "an integer"),
        (1.5, "a decimal"),
        ("", "a string"),
        ([], "an array"),
        ((1,), "an array"),
        ({}, "an object"),
        (object(), "an unknown type"),
    ],
)
def test_json_type_name(value: Any, expected: str) -> None:
    assert json_type_name(value) == expected


# --- body-level errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{", b"{'model': 'x'}", b"not json", b'{"model": "x",}', b"\xff\xfe"])
def test_bad_json(raw: bytes) -> None:
    err = reject(AssistantCreate, None, raw=raw)
    assert err.message == BAD_JSON_MESSAGE
    assert err.param is None
    assert err.code is None


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"[]", "an array"),
        (b"null", "null"),
        (b"1", "an integer"),
        (b'"s"', "a string"),
        (b"true", "a boolean"),
        (b"1.5", "a decimal"),
    ],
)
def test_body_not_an_object(raw: bytes, kind: str) -> None:
    err = reject(AssistantCreate, None, raw=raw)
    assert err.message == f"Invalid type for request body: expected an object, but got {kind} instead."
    assert err.param is None
    assert err.code == "invalid_type"


def test_missing_required() -> None:
    err = reject(AssistantCreate, {})
    assert (err.message, err.param, err.code) == (
        "Missing required parameter: 'model'.",
        "model",
        "missing_required_parameter",
    )


def test_missing_required_nested() -> None:
    err = reject(ThreadCreate, {"messages": [{"role": "user"}]})
    assert err.param == "messages[0].content"
    assert err.message == "Missing required parameter: 'messages[0].content'."


def test_missing_required_inside_union_branch() -> None:
    err = reject(AssistantCreate, {"model": "m", "response_format": {"type": "json_schema", "json_schema": {}}})
    assert err.param == "response_format.json_schema.name"
    assert err.code == "missing_required_parameter"


# --- unknown fields ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [AssistantCreate, AssistantUpdate, ThreadCreate, ThreadUpdate])
def test_unknown_top_level_field(model: type[BaseModel]) -> None:
    body: dict[str, Any] = {"model": "m"} if model is AssistantCreate else {}
    err = reject(model, {**body, "foo": 1})
    assert (err.message, err.param, err.code) == (
        "Unrecognized request argument supplied: foo",
        "foo",
        "unknown_parameter",
    )


def test_messages_is_unknown_on_thread_update() -> None:
    err = reject(ThreadUpdate, {"messages": []})
    assert err.message == "Unrecognized request argument supplied: messages"


def test_unknown_nested_field() -> None:
    err = reject(AssistantCreate, {"model": "m", "tools": [{"type": "function", "function": {"name": "f", "x": 1}}]})
    assert (err.message, err.param, err.code) == (
        "Unknown parameter: 'tools[0].function.x'.",
        "tools[0].function.x",
        "unknown_parameter",
    )


def test_vector_stores_helper_refused_on_modify() -> None:
    err = reject(AssistantUpdate, {"tool_resources": {"file_search": {"vector_stores": []}}})
    assert err.code == "unknown_parameter"
    assert "'tool_resources.file_search.vector_stores'" in err.message
    assert err.param is not None and err.param.startswith("tool_resources.file_search")


# --- types ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "expected", "got"),
    [
        ({"model": 1}, "model", "a string", "an integer"),
        ({"model": None}, "model", "a string", "null"),
        ({"model": "m", "name": 5}, "name", "a string", "an integer"),
        ({"model": "m", "temperature": "1"}, "temperature", "a decimal", "a string"),
        ({"model": "m", "top_p": True}, "top_p", "a decimal", "a boolean"),
        ({"model": "m", "metadata": []}, "metadata", "an object", "an array"),
        ({"model": "m", "metadata": {"a": 1}}, "metadata.a", "a string", "an integer"),
        ({"model": "m", "tools": {}}, "tools", "an array", "an object"),
        (
            {"model": "m", "tools": [{"type": "function", "function": {"name": "f", "parameters": 1}}]},
            "tools[0].function.parameters",
            "an object",
            "an integer",
        ),
        (
            {"model": "m", "tools": [{"type": "function", "function": {"name": "f", "strict": "yes"}}]},
            "tools[0].function.strict",
            "a boolean",
            "a string",
        ),
        (
            {"model": "m", "tool_resources": {"code_interpreter": {"file_ids": "file-1"}}},
            "tool_resources.code_interpreter.file_ids",
            "an array",
            "a string",
        ),
    ],
)
def test_wrong_types(body: dict[str, Any], param: str, expected: str, got: str) -> None:
    err = reject(AssistantCreate, body)
    assert err.param == param
    assert err.code == "invalid_type"
    assert err.message == f"Invalid type for '{param}': expected {expected}, but got {got} instead."


def test_strict_mode_does_not_coerce() -> None:
    reject(AssistantCreate, {"model": "m", "temperature": "0.5"})
    reject(ListParams, None, raw=b'{"limit": "5"}')
    assert accept(AssistantCreate, {"model": "m", "temperature": 1}).temperature == 1  # type: ignore[attr-defined]


# --- limits --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "limit"), [("name", 256), ("description", 512), ("instructions", 256_000)])
def test_string_too_long(field: str, limit: int) -> None:
    accept(AssistantCreate, {"model": "m", field: "x" * limit})
    err = reject(AssistantCreate, {"model": "m", field: "x" * (limit + 1)})
    assert err.param == field
    assert err.code == "string_above_max_length"
    assert err.message == (
        f"Invalid '{field}': string too long. Expected a string with maximum length {limit}, "
        f"but got a string with length {limit + 1} instead."
    )


def test_empty_string() -> None:
    err = reject(AssistantCreate, {"model": ""})
    assert (err.param, err.code) == ("model", "empty_string")
    assert err.message == (
        "Invalid 'model': empty string. Expected a string with minimum length 1, but got an empty string instead."
    )


def test_too_many_tools() -> None:
    accept(AssistantCreate, {"model": "m", "tools": [{"type": "code_interpreter"}] * 128})
    err = reject(AssistantCreate, {"model": "m", "tools": [{"type": "code_interpreter"}] * 129})
    assert (err.param, err.code) == ("tools", "array_above_max_length")
    assert err.message == (
        "Invalid 'tools': array too long. Expected an array with maximum length 128, but got an array with "
        "length 129 instead."
    )


def test_nested_array_too_long() -> None:
    err = reject(AssistantCreate, {"model": "m", "tool_resources": {"file_search": {"vector_store_ids": ["a", "b"]}}})
    assert err.param == "tool_resources.file_search.vector_store_ids"
    assert err.code == "array_above_max_length"


def test_empty_content_array() -> None:
    err = reject(MessageCreate, {"role": "user", "content": []})
    assert (err.param, err.code) == ("content", "empty_array")
    assert err.message == (
        "Invalid 'content': empty array. Expected an array with minimum length 1, but got an array with "
        "length 0 instead."
    )


def test_metadata_limits() -> None:
    accept(AssistantCreate, {"model": "m", "metadata": {f"k{i}": "v" for i in range(16)}})
    accept(AssistantCreate, {"model": "m", "metadata": {"k" * 64: "v" * 512}})

    err = reject(AssistantCreate, {"model": "m", "metadata": {f"k{i}": "v" for i in range(17)}})
    assert (err.param, err.code) == ("metadata", "object_above_max_properties")
    assert err.message == (
        "Invalid 'metadata': too many properties. Expected an object with at most 16 properties, but got an "
        "object with 17 properties instead."
    )
    err = reject(AssistantCreate, {"model": "m", "metadata": {"k" * 65: "v"}})
    assert (err.param, err.code) == ("metadata", "string_above_max_length")
    assert "maximum length 64, but got a key with length 65" in err.message
    err = reject(AssistantCreate, {"model": "m", "metadata": {"key": "v" * 513}})
    assert (err.param, err.code) == ("metadata", "string_above_max_length")
    assert "'key'" in err.message
    assert "maximum length 512, but got a string with length 513" in err.message


def test_metadata_error_carries_nested_param() -> None:
    err = reject(ThreadCreate, {"messages": [{"role": "user", "content": "x", "metadata": {"k" * 65: "v"}}]})
    assert err.param == "messages[0].metadata"
    assert err.message.startswith("Invalid 'messages[0].metadata': metadata key")


@pytest.mark.parametrize(
    ("field", "value", "code", "message"),
    [
        (
            "temperature",
            3,
            "above_max_value",
            "Invalid 'temperature': number too large. Expected a value <= 2.0, but got 3 instead.",
        ),
        (
            "temperature",
            -0.5,
            "below_min_value",
            "Invalid 'temperature': number too small. Expected a value >= 0.0, but got -0.5 instead.",
        ),
        (
            "top_p",
            2,
            "above_max_value",
            "Invalid 'top_p': number too large. Expected a value <= 1.0, but got 2 instead.",
        ),
    ],
)
def test_number_bounds(field: str, value: float, code: str, message: str) -> None:
    err = reject(AssistantCreate, {"model": "m", field: value})
    assert (err.param, err.code, err.message) == (field, code, message)


def test_nested_number_bound() -> None:
    err = reject(
        AssistantCreate, {"model": "m", "tools": [{"type": "file_search", "file_search": {"max_num_results": 51}}]}
    )
    assert err.param == "tools[0].file_search.max_num_results"
    assert err.code == "above_max_value"


def test_list_params_bounds_in_query() -> None:
    with pytest.raises(ValidationError) as info:
        ListParams.model_validate({"limit": "101"})
    err = to_invalid_request(info.value)
    assert (err.param, err.code) == ("limit", "above_max_value")


# --- enums, patterns, unions ---------------------------------------------------------------------


def test_literal_values() -> None:
    err = reject(MessageCreate, {"role": "system", "content": "x"})
    assert (err.param, err.code) == ("role", "invalid_value")
    assert err.message == "Invalid value: 'system'. Supported values are: 'user' or 'assistant'."


def test_long_invalid_value_is_shortened() -> None:
    err = reject(MessageCreate, {"role": "r" * 200, "content": "x"})
    assert err.message.startswith("Invalid value: 'rrrr")
    assert "..." in err.message
    assert len(err.message) < 200


def test_function_name_pattern() -> None:
    err = reject(AssistantCreate, {"model": "m", "tools": [{"type": "function", "function": {"name": "has space"}}]})
    assert (err.param, err.code) == ("tools[0].function.name", "invalid_value")
    assert err.message == (
        "Invalid 'tools[0].function.name': string does not match pattern. Expected a string that matches the "
        "pattern '^[a-zA-Z0-9_-]{1,64}$'."
    )
    reject(AssistantCreate, {"model": "m", "tools": [{"type": "function", "function": {"name": "x" * 65}}]})
    accept(AssistantCreate, {"model": "m", "tools": [{"type": "function", "function": {"name": "x" * 64}}]})


@pytest.mark.parametrize("name", ["file_search", "code_interpreter"])
def test_reserved_function_names(name: str) -> None:
    err = reject(AssistantCreate, {"model": "m", "tools": [{"type": "function", "function": {"name": name}}]})
    assert err.param == "tools[0].function.name"
    assert err.code == "invalid_value"
    assert err.message.startswith(f"Invalid 'tools[0].function.name': '{name}' is reserved")


@pytest.mark.parametrize("tool", [{"type": "bogus"}, {"no_type": True}, "code_interpreter", 5])
def test_unknown_tool_type(tool: Any) -> None:
    err = reject(AssistantCreate, {"model": "m", "tools": [{"type": "code_interpreter"}, tool]})
    assert (err.param, err.code) == ("tools[1]", "invalid_value")
    assert err.message == (
        "Invalid 'tools[1]': expected a tool of type 'code_interpreter', 'file_search' or 'function'."
    )


def test_union_branch_error_has_no_tag_in_path() -> None:
    err = reject(
        ThreadCreate,
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "ok"}, {"type": "image_file", "image_file": {"file_id": ""}}],
                }
            ]
        },
    )
    assert err.param == "messages[0].content[1].image_file.file_id"
    assert "~" not in err.message
    assert err.code == "empty_string"


def test_content_of_wrong_type() -> None:
    err = reject(MessageCreate, {"role": "user", "content": 5})
    assert err.param == "content"
    assert err.message == "Invalid type for 'content': expected a string or an array of content parts."


def test_unknown_content_part() -> None:
    err = reject(MessageCreate, {"role": "user", "content": [{"type": "video"}]})
    assert err.param == "content[0]"
    assert err.message == ("Invalid 'content[0]': expected a content part of type 'text', 'image_file' or 'image_url'.")


def test_response_format() -> None:
    for ok in (
        "auto",
        {"type": "text"},
        {"type": "json_object"},
        {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}},
    ):
        accept(AssistantCreate, {"model": "m", "response_format": ok})
    err = reject(AssistantCreate, {"model": "m", "response_format": "json"})
    assert (err.param, err.code) == ("response_format", "invalid_value")
    assert err.message == (
        "Invalid 'response_format': expected 'auto' or an object of type 'text', 'json_object' or 'json_schema'."
    )


def test_prefix_is_prepended() -> None:
    with pytest.raises(ValidationError) as info:
        MessageCreate.model_validate_json(b'{"role": "user"}', strict=True)
    err = to_invalid_request(info.value, prefix="additional_messages[2]")
    assert err.param == "additional_messages[2].content"
    assert err.message == "Missing required parameter: 'additional_messages[2].content'."


# --- what is accepted ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        "name",
        "description",
        "instructions",
        "metadata",
        "tool_resources",
        "response_format",
        "temperature",
        "top_p",
        "tools",
    ],
)
@pytest.mark.parametrize("model", [AssistantCreate, AssistantUpdate])
def test_null_accepted_for_nullable_fields(model: type[BaseModel], field: str) -> None:
    body: dict[str, Any] = {"model": "m"} if model is AssistantCreate else {}
    parsed = accept(model, {**body, field: None})
    assert getattr(parsed, field) is None
    assert field in parsed.model_fields_set


def test_only_the_first_error_is_reported() -> None:
    err = reject(AssistantCreate, {"name": 5})  # both `model` missing and `name` mistyped
    assert err.param == "model"
