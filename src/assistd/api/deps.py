"""What a route takes from a request: the project, the services, a parsed body or query."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from assistd.errors import InvalidRequest, PayloadTooLarge
from assistd.protocol.validation import BAD_JSON_MESSAGE, to_invalid_request

if TYPE_CHECKING:
    from assistd.services.registry import Services

M = TypeVar("M", bound=BaseModel)

MAX_JSON_BODY = 64 * 1024 * 1024
# Python refuses to turn longer integers into text (sys.get_int_max_str_digits), so they could not be stored.
MAX_INTEGER_DIGITS = 4300


def _needs_exact_check(body: bytes) -> bool:
    """A NUL escape, or what orjson refuses and the request parser took: NaN, Infinity and numbers past
    a double. orjson reads a body several times faster than the request parser, and far faster than
    scanning it from Python (bench/bench_wire.py); the exact check parses the body again."""
    if b"\\u0000" in body:  # JSON can carry NUL only as this escape
        return True
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return True
    return False


def project_id(request: Request) -> str:
    return str(request.scope["assistd.project"])


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def read_body(request: Request, limit: int = MAX_JSON_BODY) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    return bytes(chunks)


async def parse_body(request: Request, model: type[M]) -> M:
    body = await read_body(request)
    if not body.strip():
        body = b"{}"
    try:
        parsed = model.model_validate_json(body, strict=True)
    except ValidationError as exc:
        raise to_invalid_request(exc) from None
    if _needs_exact_check(body):
        reject_unstorable(_parse_exactly(body), "")
    return parsed


class _Unstorable:
    """A number in a request body that cannot be kept as given."""

    def __init__(self, text: str, problem: str) -> None:
        self.text = text
        self.problem = problem


def _parse_float(text: str) -> float | _Unstorable:
    value = float(text)
    return value if math.isfinite(value) else _Unstorable(text, "is outside the range of a double-precision number")


def _parse_int(text: str) -> int | _Unstorable:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        return _Unstorable(f"{text[:20]}...", f"has {digits} digits (at most {MAX_INTEGER_DIGITS} are accepted)")
    return int(text)


def _not_json(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _parse_exactly(body: bytes) -> Any:
    try:
        return json.loads(body, parse_float=_parse_float, parse_int=_parse_int, parse_constant=_not_json)
    except (ValueError, RecursionError):  # NaN and Infinity, which JSON does not have (and JSONDecodeError)
        raise InvalidRequest(BAD_JSON_MESSAGE) from None


def reject_unstorable(value: Any, param: str) -> None:
    """NUL in strings (see `reject_nul`) and numbers that would not survive storage: 400 naming the parameter."""
    if isinstance(value, _Unstorable):
        raise InvalidRequest(
            f"Invalid '{param or 'body'}': the number {value.text} {value.problem}.",
            param=param or None,
            code="invalid_value",
        )
    if isinstance(value, dict):
        for key, item in value.items():
            reject_nul(key, param)
            reject_unstorable(item, f"{param}.{key}" if param else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            reject_unstorable(item, f"{param}[{i}]")
    else:
        reject_nul(value, param)


def parse_query(request: Request, model: type[M]) -> M:
    params: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        reject_nul(value, key)
        params.setdefault(key.removesuffix("[]"), value)
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise to_invalid_request(exc) from None


def path_param(request: Request, name: str) -> str:
    value = request.path_params[name]
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"Invalid '{name}'.", param=name)
    reject_nul(value, name)
    return value


def reject_nul(value: Any, param: str) -> None:
    """PostgreSQL text cannot hold NUL (a 500 there); refuse it up front, alike on every backend."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidRequest(
                f"Invalid '{param or 'body'}': strings may not contain NUL characters (\\u0000).",
                param=param or None,
                code="invalid_value",
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_nul(key, param)
            reject_nul(item, f"{param}.{key}" if param else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            reject_nul(item, f"{param}[{i}]")


def json_response(model: BaseModel, headers: dict[str, str] | None = None) -> Response:
    return Response(model.__pydantic_serializer__.to_json(model), media_type="application/json", headers=headers)
