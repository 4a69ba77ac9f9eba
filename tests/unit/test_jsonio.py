"""assistd.jsonio: JSON columns keep integers of any size; ordinary documents stay on orjson's path."""

from __future__ import annotations

import math

import orjson
import pytest

from assistd import jsonio

BIG = {"max": 2**70 + 1, "min": -(2**70) - 3, "nested": [{"x": 10**40}], "text": "ünïcode"}


def test_big_integers_round_trip_exactly() -> None:
    text = jsonio.to_column(BIG)
    assert text.startswith(jsonio.EXACT_MARK)  # the standard library wrote it
    assert jsonio.from_column(text) == BIG
    assert jsonio.from_column(text.encode()) == BIG
    assert orjson.loads(jsonio.dumps(BIG)) != BIG  # orjson alone reads them back as floats...
    assert jsonio.from_column(jsonio.dumps(BIG).decode()) != BIG  # ...which is why columns carry the mark


@pytest.mark.parametrize("value", [{"a": 1}, [2**64 - 1, -(2**63)], "text", 3, None, {"f": 1.5e300}])
def test_ordinary_documents_are_orjsons(value: object) -> None:
    text = jsonio.to_column(value)
    assert text == orjson.dumps(value).decode()
    assert jsonio.from_column(text) == value


def test_non_finite_floats_next_to_big_integers_become_null_as_orjson_writes_them() -> None:
    text = jsonio.to_column({"big": 2**70, "nan": math.nan, "inf": [math.inf]})
    assert jsonio.from_column(text) == {"big": 2**70, "nan": None, "inf": [None]}
