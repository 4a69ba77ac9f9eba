"""Extract the OpenAI component schemas our conformance tests need into tests/data/openai-schemas.json.

The official spec (shared/spec/openai-openapi.yaml) is 3 MB; the tests must not read it at run time, so
this script copies the transitive `$ref` closure of a few response schemas into a small JSON file,
dropping prose (`description`, `example`, `x-*` vendor keys). OpenAPI 3.1 schemas are JSON Schema
2020-12, so the output validates directly with jsonschema. Re-run it when the spec is updated:

    python scripts/extract_openai_schemas.py [--spec PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = ROOT.parent / "shared" / "spec" / "openai-openapi.yaml"
DEFAULT_OUT = ROOT / "tests" / "data" / "openai-schemas.json"
REF_PREFIX = "#/components/schemas/"

ROOTS = [
    "AssistantObject",
    "ListAssistantsResponse",
    "DeleteAssistantResponse",
    "ThreadObject",
    "DeleteThreadResponse",
    "MessageObject",
    "ListMessagesResponse",
    "DeleteMessageResponse",
    "OpenAIFile",
    "ListFilesResponse",
    "DeleteFileResponse",
    "ErrorResponse",
    "ConversationResource",
    "DeletedConversationResource",
    "ConversationItem",
    "ConversationItemList",
    "ContainerResource",
    "ContainerListResource",
    "ContainerFileResource",
    "ContainerFileListResource",
    "Response",
    "ResponseItemList",
    "ResponseStreamEvent",
]

# Keys that are documentation only. They are dropped where they are keywords, never where they are
# names in a `properties` map (AssistantObject has a property called `description`).
PROSE_KEYS = {"description", "example", "examples", "title", "x-oaiMeta"}
# Keywords whose value maps names to subschemas.
NAME_MAPS = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}


def strip(node: Any) -> Any:
    """A copy of a schema node without prose or vendor extensions."""
    if isinstance(node, list):
        return [strip(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in PROSE_KEYS or key.startswith("x-"):
            continue
        if key in NAME_MAPS and isinstance(value, dict):
            out[key] = {name: strip(sub) for name, sub in value.items()}
        elif key == "required" and isinstance(value, list):  # ContainerResource lists names twice
            out[key] = list(dict.fromkeys(value))
        else:
            out[key] = strip(value)
    return out


def refs(node: Any) -> set[str]:
    """Names of the component schemas a node refers to."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith(REF_PREFIX):
                raise ValueError(f"unsupported $ref {ref!r}")
            found.add(ref[len(REF_PREFIX) :])
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= refs(item)
    return found


def unrecurse(node: Any, name: str) -> Any:
    """Draft 2019-09's `$recursiveAnchor`/`$recursiveRef` (CompoundFilter) as a plain 2020-12 `$ref` to the
    schema itself (2020-12 validators reject the old keywords)."""
    if isinstance(node, list):
        return [unrecurse(item, name) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$recursiveAnchor":
            continue
        if key == "$recursiveRef":
            out["$ref"] = REF_PREFIX + name
        else:
            out[key] = unrecurse(value, name)
    return out


def closure(schemas: dict[str, Any], roots: list[str]) -> dict[str, Any]:
    picked: dict[str, Any] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in picked:
            continue
        if name not in schemas:
            raise KeyError(f"schema {name!r} is not in the spec")
        picked[name] = unrecurse(strip(schemas[name]), name)
        pending.extend(refs(picked[name]) - picked.keys())
    return dict(sorted(picked.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    raw = args.spec.read_bytes()
    spec = yaml.load(raw, Loader=yaml.CSafeLoader)
    picked = closure(spec["components"]["schemas"], ROOTS)
    document = {
        # The layout mirrors the spec, so `#/components/schemas/...` refs resolve unchanged.
        "x-source": {
            "file": "openai-openapi.yaml",
            "openapi": spec.get("openapi"),
            "version": spec.get("info", {}).get("version"),
            "sha256": hashlib.sha256(raw).hexdigest(),
            "roots": ROOTS,
        },
        "components": {"schemas": picked},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")
    print(f"wrote {len(picked)} schemas to {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
