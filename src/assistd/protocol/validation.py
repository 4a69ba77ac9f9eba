"""Turning a pydantic ValidationError into OpenAI's error: message, `param` path and `code`.

Unions in request models are written with a callable discriminator whose tags start with "~"
(see `union_tag`), so the tag never shows in a parameter path: `tools[0].function.name`, not
`tools.0.function.function.name`.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from assistd.errors import InvalidRequest

BAD_JSON_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a decimal",
    "bool_type": "a boolean",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
    "none_required": "null",
}


def json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "an unknown type"


def param_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith("~") or part == "[key]":
            continue
        else:
            path = f"{path}.{part}" if path else part
    return path


def _describe(err: ErrorDetails, prefix: str) -> InvalidRequest:
    kind = err["type"]
    loc = tuple(err["loc"])
    param = param_path(loc, prefix) or None
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    value = err.get("input")
    if kind == "json_invalid":
        return InvalidRequest(BAD_JSON_MESSAGE)
    if param is None and kind in _EXPECTED:
        return InvalidRequest(
            f"Invalid type for request body: expected an object, but got {json_type_name(value)} instead.",
            code="invalid_type",
        )
    if kind == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    if kind == "extra_forbidden":
        if len([p for p in loc if not (isinstance(p, str) and p.startswith("~"))]) == 1:
            return InvalidRequest(
                f"Unrecognized request argument supplied: {loc[-1]}", param=param, code="unknown_parameter"
            )
        return InvalidRequest(f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")
    if kind in _EXPECTED:
        return InvalidRequest(
            f"Invalid type for '{param}': expected {_EXPECTED[kind]}, but got {json_type_name(value)} instead.",
            param=param,
            code="invalid_type",
        )
    if kind == "string_too_long":
        return InvalidRequest(
            f"Invalid '{param}': string too long. Expected a string with maximum length "
            f"{ctx.get('max_length')}, but got a string with length {len(value)} instead.",
            param=param,
            code="string_above_max_length",
        )
    if kind == "string_too_short":
        if ctx.get("min_length") == 1 and value == "":
            return InvalidRequest(
                f"Invalid '{param}': empty string. Expected a string with minimum length 1, but got an "
                "empty string instead.",
                param=param,
                code="empty_string",
            )
        return InvalidRequest(
            f"Invalid '{param}': string too short. Expected a string with minimum length "
            f"{ctx.get('min_length')}, but got a string with length {len(value)} instead.",
            param=param,
            code="string_below_min_length",
        )
    if kind == "too_long":
        return InvalidRequest(
            f"Invalid '{param}': array too long. Expected an array with maximum length "
            f"{ctx.get('max_length')}, but got an array with length {ctx.get('actual_length')} instead.",
            param=param,
            code="array_above_max_length",
        )
    if kind == "too_short":
        return InvalidRequest(
            f"Invalid '{param}': empty array. Expected an array with minimum length "
            f"{ctx.get('min_length')}, but got an array with length {ctx.get('actual_length')} instead.",
            param=param,
            code="empty_array" if ctx.get("actual_length") == 0 else "array_below_min_length",
        )
    if kind in ("literal_error", "enum"):
        expected = ctx.get("expected", "")
        return InvalidRequest(
            f"Invalid value: {_short(value)}. Supported values are: {expected}.",
            param=param,
            code="invalid_value",
        )
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return InvalidRequest(
            f"Invalid '{param}': number too small. Expected a value {'>=' if 'ge' in ctx else '>'} "
            f"{bound}, but got {_short(value)} instead.",
            param=param,
            code="below_min_value",
        )
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return InvalidRequest(
            f"Invalid '{param}': number too large. Expected a value {'<=' if 'le' in ctx else '<'} "
            f"{bound}, but got {_short(value)} instead.",
            param=param,
            code="above_max_value",
        )
    if kind == "string_pattern_mismatch":
        return InvalidRequest(
            f"Invalid '{param}': string does not match pattern. Expected a string that matches the pattern "
            f"'{ctx.get('pattern')}'.",
            param=param,
            code="invalid_value",
        )
    if kind == "union_tag_invalid":
        return InvalidRequest(
            f"Invalid value: {_short(ctx.get('tag'))}. Supported values are: {ctx.get('expected_tags')}.",
            param=f"{param}.type" if param else "type",
            code="invalid_value",
        )
    if kind.startswith("assistd_"):  # our own custom errors carry OpenAI's message already
        return InvalidRequest(
            err["msg"].replace("{param}", param or "body"), param=param, code=kind.removeprefix("assistd_")
        )
    return InvalidRequest(f"Invalid value for '{param}': {err['msg']}.", param=param, code="invalid_value")


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def to_invalid_request(exc: ValidationError, prefix: str = "") -> InvalidRequest:
    errors = exc.errors(include_url=False)
    # A union reports one error per branch; the first one names the branch the input looked like.
    return _describe(errors[0], prefix)
