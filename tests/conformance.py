"""Validate response bodies against OpenAI's own schemas (tests/data/openai-schemas.json).

The JSON holds the component schemas extracted from the official OpenAPI 3.1 spec by
scripts/extract_openai_schemas.py; OpenAPI 3.1 schemas are JSON Schema 2020-12.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMAS_PATH = Path(__file__).parent / "data" / "openai-schemas.json"
BASE_URI = "urn:assistd:openai-schemas"


@cache
def _document() -> dict[str, Any]:
    return json.loads(SCHEMAS_PATH.read_text())  # type: ignore[no-any-return]


@cache
def _registry() -> Registry:
    resource = Resource.from_contents(_document(), default_specification=DRAFT202012)
    return Registry().with_resource(BASE_URI, resource)


def schema_names() -> list[str]:
    return sorted(_document()["components"]["schemas"])


@cache
def validator(schema_name: str) -> Draft202012Validator:
    if schema_name not in _document()["components"]["schemas"]:
        raise KeyError(f"{schema_name!r} is not in {SCHEMAS_PATH.name}; add it to the extraction script")
    schema = {"$ref": f"{BASE_URI}#/components/schemas/{schema_name}"}
    return Draft202012Validator(schema, registry=_registry())


def assert_conforms(body: dict[str, Any], schema_name: str) -> None:
    """Fail with every violation listed when `body` does not validate against OpenAI's schema."""
    errors = sorted(validator(schema_name).iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"- {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]
        raise AssertionError(
            f"response does not conform to OpenAI schema {schema_name}:\n"
            + "\n".join(lines)
            + f"\nbody: {json.dumps(body)[:2000]}"
        )
