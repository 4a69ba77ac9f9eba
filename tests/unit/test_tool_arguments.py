"""tools/arguments.py: a model's tool-call arguments kept when valid, repaired when not quite JSON,
refused (with the reason the model reads) when they are no JSON object even repaired."""

from __future__ import annotations

import pytest

from assistd.tools.arguments import Checked, Invalid, check
from assistd.tools.file_search import queries_of


def test_valid_arguments_are_kept_as_written() -> None:
    assert check('{ "city" :"Paris" }') == Checked('{ "city" :"Paris" }', {"city": "Paris"}, repaired=False)
    assert check("") == Checked("{}", {}, repaired=False)
    assert check("  ") == Checked("{}", {}, repaired=True)


@pytest.mark.parametrize(
    "raw",
    ["{'city': 'Paris'}", '{"city": "Paris",}', '{"city": "Paris"', '{"city": "Par', '```json\n{"city": "Paris"}\n```'],
)
def test_malformed_arguments_are_repaired_to_compact_json(raw: str) -> None:
    checked = check(raw)
    assert isinstance(checked, Checked) and checked.repaired
    assert checked.text in ('{"city":"Paris"}', '{"city":"Par"}')


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("city=Paris", "arguments are not valid JSON: "),
        ("Paris", "arguments are not valid JSON: "),
        ('["Paris"]', "arguments must be a JSON object, got an array"),
        ('"Paris"', "arguments must be a JSON object, got a string"),
        ("42", "arguments must be a JSON object, got a number"),
    ],
)
def test_what_is_no_json_object_even_repaired_is_invalid(raw: str, reason: str) -> None:
    checked = check(raw)
    assert isinstance(checked, Invalid) and checked.reason.startswith(reason)


def test_file_search_queries_are_read_leniently() -> None:
    assert queries_of('{"queries": ["whale", "Ahab"]}') == ["whale", "Ahab"]
    assert queries_of('{"queries": "whale"}') == ["whale"]
    assert queries_of('{"query": "whale"') == ["whale"]
    assert isinstance(queries_of('{"q": 1}'), Invalid) and isinstance(queries_of("whale"), Invalid)
