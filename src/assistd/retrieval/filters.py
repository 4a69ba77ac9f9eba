"""Attribute filters for vector-store search (spec §3.6): evaluated on a file's `attributes`.

A comparison is `{"key", "type": eq|ne|gt|gte|lt|lte|in|nin, "value"}`; a compound is
`{"type": and|or, "filters": [...]}`. Values compare only with values of the same kind (strings
with strings, numbers with numbers, booleans with booleans); a missing key or a kind mismatch makes
every comparison false except `ne` and `nin`, which are its negations. The request model
(protocol/vector_stores.py) validates the shape; `check` does the same for internal callers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COMPARISONS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"})
COMPOUNDS = frozenset({"and", "or"})
_MISSING = object()


def _kind(value: object) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def check(filter_: Any) -> None:
    """Raise ValueError when `filter_` is not a well-formed comparison or compound filter."""
    if not isinstance(filter_, Mapping):
        raise ValueError("a filter must be an object")
    kind = filter_.get("type")
    if kind in COMPOUNDS:
        if set(filter_) != {"type", "filters"} or not isinstance(filter_["filters"], list):
            raise ValueError("a compound filter is {type: and|or, filters: [...]}")
        for inner in filter_["filters"]:
            check(inner)
        return
    if kind not in COMPARISONS:
        raise ValueError("filter type must be one of eq, ne, gt, gte, lt, lte, in, nin, and, or")
    if set(filter_) != {"type", "key", "value"} or not isinstance(filter_["key"], str):
        raise ValueError("a comparison filter is {key, type, value}")
    value = filter_["value"]
    if kind in ("in", "nin"):
        if not isinstance(value, list) or any(_kind(v) not in ("string", "number") for v in value):
            raise ValueError(f"'{kind}' takes a list of strings or numbers")
    elif _kind(value) is None:
        raise ValueError(f"'{kind}' takes a string, number or boolean")


def _equal(a: object, b: object) -> bool:
    return _kind(a) == _kind(b) and a == b


def _compare(op: str, actual: object, value: Any) -> bool:
    if op == "eq":
        return _equal(actual, value)
    if op == "ne":
        return not _equal(actual, value)
    if op == "in":
        return any(_equal(actual, v) for v in value)
    if op == "nin":
        return not any(_equal(actual, v) for v in value)
    kind = _kind(actual)
    if kind not in ("string", "number") or kind != _kind(value):
        return False
    left: Any = actual
    if op == "gt":
        return bool(left > value)
    if op == "gte":
        return bool(left >= value)
    if op == "lt":
        return bool(left < value)
    return bool(left <= value)


def matches(filter_: Mapping[str, Any] | None, attributes: Mapping[str, Any]) -> bool:
    """Whether a file with these attributes passes the (already checked) filter."""
    if filter_ is None:
        return True
    kind = filter_["type"]
    if kind == "and":
        return all(matches(f, attributes) for f in filter_["filters"])
    if kind == "or":
        return any(matches(f, attributes) for f in filter_["filters"])
    return _compare(kind, attributes.get(filter_["key"], _MISSING), filter_["value"])
