"""JSON in and out of the database and the event stream: orjson, exact for integers of any size.

orjson is fast but stops at 64 bits: it refuses to write a larger integer and reads one back as a
float. Clients put such numbers in free-form JSON (a function's `parameters`, a `json_schema`), and
OpenAI stores them, so we must too. Writing falls back to the standard library when orjson refuses;
reading takes the standard library only when the text holds a run of 19 or more digits (2**63 has 19),
so ordinary documents keep orjson's speed. Neither ever writes NaN or Infinity, which are not JSON:
a non-finite float is written as null, as orjson does.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

# A number that may not fit in 64 bits. Matching inside a string only costs the slower, exact parser.
_LONG_DIGITS = re.compile(r"[0-9]{19,}")
_LONG_DIGITS_BYTES = re.compile(rb"[0-9]{19,}")


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        pass
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a NaN or an infinity next to a big integer
        text = json.dumps(_finite(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode()


def dumps_str(value: Any) -> str:
    return dumps(value).decode()


def loads(data: str | bytes) -> Any:
    if isinstance(data, str):
        if _LONG_DIGITS.search(data) is None:
            return orjson.loads(data)
    elif _LONG_DIGITS_BYTES.search(data) is None:
        return orjson.loads(data)
    return json.loads(data)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
