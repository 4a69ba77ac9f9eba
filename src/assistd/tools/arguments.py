"""A model's tool-call arguments, checked and repaired.

Models, open ones above all, write arguments that are not quite JSON: cut short, single-quoted, with a
trailing comma or a comment. What can be repaired (json-repair, a maintained library) is; what parses
must be a JSON object, which is all that is checked: the function's JSON schema is not (as on OpenAI
without `strict`, the client checks its own arguments). Valid arguments are kept as the model wrote
them; repaired ones are written out again as compact JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from json_repair import repair_json


@dataclass(frozen=True, slots=True)
class Checked:
    """Arguments to use: `text` (a JSON object), `value` (its parsed form), `repaired` when the model's
    text was not valid JSON."""

    text: str
    value: dict[str, Any]
    repaired: bool


@dataclass(frozen=True, slots=True)
class Invalid:
    """Arguments that could not be used, and why (fed back to the model)."""

    reason: str


def check(raw: str) -> Checked | Invalid:
    """The arguments as a JSON object: as written when valid, else repaired; `Invalid` when neither."""
    if not raw.strip():
        return Checked("{}", {}, repaired=raw != "")  # no arguments at all: an empty object
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        error = str(exc)
    else:
        if isinstance(value, dict):
            return Checked(raw, value, repaired=False)
        return Invalid(f"arguments must be a JSON object, got {_kind(value)}")
    try:
        fixed = repair_json(raw, return_objects=True)
    except Exception:  # the library's own failure: the arguments stay unrepaired
        fixed = None
    if isinstance(fixed, dict) and (fixed or _empty_object(raw)):
        return Checked(orjson.dumps(fixed).decode(), fixed, repaired=True)
    return Invalid(f"arguments are not valid JSON: {error}")


def _empty_object(raw: str) -> bool:
    """`{` cut short, or `{}` with noise: an empty object was meant. Text that repairs to nothing is not."""
    return raw.strip().startswith("{")


def _kind(value: object) -> str:
    match value:
        case list():
            return "an array"
        case str():
            return "a string"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case None:
            return "null"
    return type(value).__name__
