"""The pure parts of code_interpreter: streamed code decoding, link annotations, input names."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from assistd.tools.citations import CitationStream
from assistd.tools.code_interpreter import code_of, input_names, partial_code


@given(st.text(), st.integers(min_value=1, max_value=7))
def test_partial_code_streams_exactly_the_decoded_code(code: str, step: int) -> None:
    arguments = orjson.dumps({"code": code}).decode()
    seen = ""
    for end in range(0, len(arguments) + 1, step):
        decoded = partial_code(arguments[:end])
        assert decoded.startswith(seen) or not seen.startswith(decoded)  # only ever grows
        assert code.startswith(decoded)
        seen = max(seen, decoded, key=len)
    assert partial_code(arguments) == code
    assert code_of(arguments) == code


def test_escapes_and_surrogate_pairs_are_decoded_only_when_complete() -> None:
    arguments = '{"code": "print(\\"\\ud83d\\ude00\\")\\n"}'
    assert partial_code(arguments[: arguments.index("\\ude00")]) == 'print("'
    assert partial_code(arguments) == 'print("😀")\n'


@pytest.mark.parametrize(
    ("arguments", "code"),
    [("print(1)", "print(1)"), ('{"code": 5}', ""), ("42", "42"), ('{"other": "x"}', ""), ("", "")],
)
def test_code_of_understands_bare_code(arguments: str, code: str) -> None:
    assert code_of(arguments) == code


def test_sandbox_links_become_file_path_annotations_at_any_split() -> None:
    text = "See [it](sandbox:/mnt/data/out.csv). Not sandbox:/mnt/data/missing.csv; end sandbox:/mnt/data/out.csv"
    for size in range(1, 12):
        stream = CitationStream(lambda c, r: None, {"out.csv": "file-1"}.get)
        pieces = [p for i in range(0, len(text), size) for p in stream.feed(text[i : i + size])] + stream.flush()
        assert "".join(p for p, _ in pieces) == text
        notes = [n for _, n in pieces if n is not None]
        assert notes == stream.annotations and len(notes) == 2
        for note in notes:
            assert note["type"] == "file_path" and note["file_path"] == {"file_id": "file-1"}
            assert text[note["start_index"] : note["end_index"]] == "sandbox:/mnt/data/out.csv"


def test_input_names_keep_file_names_and_disambiguate() -> None:
    names = input_names([("file-a", "data.csv"), ("file-b", "dir/data.csv"), ("file-c", "../.."), ("file-d", ".env")])
    assert names == {"file-a": "data.csv", "file-b": "file-b-data.csv", "file-c": "file-c", "file-d": "file-d"}


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ('{"code": "print(1)', "print(1)"),  # cut short
        ("{'code': 'print(2)'}", "print(2)"),  # single quotes
        ('{"code": "x = 1\\nprint(x)",}', "x = 1\nprint(x)"),  # a trailing comma
        ("x = {'a': 1}\nprint(x)", "x = {'a': 1}\nprint(x)"),  # bare code with braces stays code
    ],
)
def test_code_of_repairs_arguments_that_are_not_quite_json(arguments: str, code: str) -> None:
    assert code_of(arguments) == code
