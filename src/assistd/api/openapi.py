"""The OpenAPI 3.1 document of our own endpoints, generated from the endpoint table's models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from assistd import __version__
from assistd.api.deps import MAX_JSON_BODY
from assistd.api.multipart import MAX_FIELD_BYTES, MAX_FIELDS
from assistd.api.routing import Router

REF = "#/components/schemas/{model}"

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}


def build_openapi(*routers: Router, max_upload_bytes: int | None = None) -> dict[str, Any]:
    """One document for every router (/v1 and /admin/v1), with the limits the server enforces: those of the
    models (lengths, counts, ranges) and, as `x-max-bytes`, the sizes of bodies and uploads."""
    endpoints = [(router.prefix, ep) for router in routers for ep in router.endpoints]
    models: list[tuple[type[BaseModel], Any]] = []
    for _, ep in endpoints:
        if ep.body is not None:
            models.append((ep.body, "validation"))
        if isinstance(ep.response, type) and issubclass(ep.response, BaseModel):
            models.append((ep.response, "serialization"))
    keys, defs = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["ErrorResponse"] = ERROR_SCHEMA

    paths: dict[str, dict[str, Any]] = {}
    for prefix, ep in endpoints:
        op: dict[str, Any] = {
            "summary": ep.summary,
            "operationId": re.sub(r"\W+", "_", f"{ep.method}_{prefix.removeprefix('/v1')}{ep.path}").strip("_").lower(),
            "tags": [ep.tag] if ep.tag else [],
            "parameters": _parameters(ep.path, ep.query),
            "responses": {
                "200": _success(ep.response, keys),
                "default": {
                    "description": "An error",
                    "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorResponse")}}},
                },
            },
        }
        if ep.body is not None:
            op["requestBody"] = {
                "required": True,
                "description": f"A JSON object of at most {MAX_JSON_BODY} bytes.",
                "x-max-bytes": MAX_JSON_BODY,
                "content": {"application/json": {"schema": keys[(ep.body, "validation")]}},
            }
            if ep.multipart is not None:  # either form (POST /containers/{id}/files)
                op["requestBody"]["content"]["multipart/form-data"] = {
                    "schema": _multipart(ep.multipart, max_upload_bytes)
                }
        elif ep.multipart is not None:
            op["requestBody"] = {
                "required": True,
                "description": f"At most {MAX_FIELDS} form fields besides the file, each of at most {MAX_FIELD_BYTES} "
                "bytes.",
                "content": {"multipart/form-data": {"schema": _multipart(ep.multipart, max_upload_bytes)}},
            }
        paths.setdefault(prefix + ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "assistd",
            "version": __version__,
            "description": "A self-hosted server for the OpenAI Assistants API (v2).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _multipart(schema: dict[str, Any], max_upload_bytes: int | None) -> dict[str, Any]:
    """Form fields are at most MAX_FIELD_BYTES; the file part at most the configured upload size."""
    properties: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        if prop.get("format") == "binary":
            if max_upload_bytes is not None:
                prop = {**prop, "description": f"At most {max_upload_bytes} bytes.", "x-max-bytes": max_upload_bytes}
        elif prop.get("type") == "string" and "enum" not in prop:
            prop = {**prop, "maxLength": MAX_FIELD_BYTES}
        properties[name] = prop
    return {**schema, "properties": properties}


def _success(response: Any, keys: dict[Any, Any]) -> dict[str, Any]:
    if response == "binary":
        return {
            "description": "The file's bytes",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    return {
        "description": "OK",
        "content": {"application/json": {"schema": keys[(response, "serialization")]}},
    }


def _parameters(path: str, query: type[BaseModel] | None) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", path)
    ]
    if query is not None:
        schema = query.model_json_schema()
        for name, prop in schema.get("properties", {}).items():
            prop = {k: v for k, v in prop.items() if k != "title"}
            params.append({"name": name, "in": "query", "required": False, "schema": prop})
    return params
