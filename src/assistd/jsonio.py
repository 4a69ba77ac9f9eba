"""JSON for the database's JSON columns and the event stream: orjson, exact for integers of any size.

orjson is fast but stops at 64 bits: it refuses to write a larger integer and reads one back as a
float. Clients put such numbers in free-form JSON (a function's `parameters`, a `json_schema`), and
OpenAI stores them, so we must too. Writing falls back to the standard library when orjson refuses.

For reading a column back, a document written by that fallback starts with a space (JSON allows
leading whitespace; orjson never writes any, and both SQLite's text and PostgreSQL's `json` type keep
the text as written), so `from_column` knows from its first character which parser it needs: no scan
of the text and no walk over the values on the common path (bench/bench_wire.py measures both).

Neither ever writes NaN or Infinity, which are not JSON: a non-finite float is written as null, as
orjson does. Requests cannot carry them in (api/deps.py refuses them).
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

# The first character of a column value written by the standard library (see the module's docstring).
EXACT_MARK = " "


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return _exact(value).encode()


def to_column(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return EXACT_MARK + _exact(value)


def from_column(text: str | bytes) -> Any:
    if text[:1] in (EXACT_MARK, EXACT_MARK.encode()):
        return json.loads(text)
    return orjson.loads(text)


def _exact(value: Any) -> str:
    """The standard library's JSON, which writes integers of any size."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a NaN or an infinity next to the big integer
        return json.dumps(_finite(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
