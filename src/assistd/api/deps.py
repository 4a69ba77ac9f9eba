"""What a route takes from a request: the project, the services, a parsed body or query."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from assistd.errors import InvalidRequest, PayloadTooLarge
from assistd.protocol.validation import to_invalid_request

if TYPE_CHECKING:
    from assistd.app import Services

M = TypeVar("M", bound=BaseModel)

MAX_JSON_BODY = 64 * 1024 * 1024


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
    if b"\\u0000" in body:  # JSON can carry NUL only as this escape: a cheap pre-check
        reject_nul(json.loads(body), "")
    return parsed


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
