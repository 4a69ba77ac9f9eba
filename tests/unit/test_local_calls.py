"""The local model's tool-call text, read while it is generated (providers/local_calls.py)."""

from __future__ import annotations

import json

import pytest

from assistd.providers.base import Chunk
from assistd.providers.local_calls import CallStream


def streamed(text: str, step: int) -> list[tuple[str, str, int]]:
    """Feed `text` `step` characters at a time: (name, arguments, deltas) per call sent."""
    chunks: list[Chunk] = []
    stream = CallStream(chunks.append)
    for start in range(0, len(text), step):
        stream.feed(text[start : start + step])
    calls: dict[int, list[object]] = {}
    for chunk in chunks:
        for delta in chunk.tool_calls:
            slot = calls.setdefault(delta.index, ["", "", 0])
            if delta.name is not None:
                assert delta.id and not delta.arguments, "a call opens with its id and name, no arguments yet"
                slot[0] = delta.name
            slot[1] = str(slot[1]) + delta.arguments
            slot[2] = int(str(slot[2])) + 1
    return [(str(n), str(a), int(str(k))) for n, a, k in (calls[i] for i in sorted(calls))]


@pytest.mark.parametrize("step", [1, 3, 10_000])
def test_arguments_stream_as_written(step: int) -> None:
    text = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris, France", "unit": "celsius"}}]}'
    ((name, arguments, deltas),) = streamed(text, step)
    assert name == "get_weather"
    assert arguments == '{"city": "Paris, France", "unit": "celsius"}'
    # The opening delta, then one fragment per feed that added to the arguments.
    assert deltas == 2 if step == 10_000 else deltas > len(arguments) // step


def test_fragments_per_token() -> None:
    text = '{"tool_calls": [{"name": "f", "arguments": {"a": "xyz"}}]}'
    ((_, arguments, deltas),) = streamed(text, 1)
    assert arguments == '{"a": "xyz"}' and deltas == 1 + len(arguments)


def test_nested_values_escapes_and_raw_control_characters() -> None:
    text = (
        '{ "tool_calls" : [ { "name" : "run\\"it", "arguments" : { "x" : [1, {"y": "}]\\"" }], "z": null } },'
        '{"name": "code", "arguments": {"code": "print(1)\nprint(2)\ttab"}} ] }'
    )
    calls = streamed(text, 2)
    assert [(n, json.loads(a)) for n, a, _ in calls] == [
        ('run"it', {"x": [1, {"y": '}]"'}], "z": None}),
        ("code", {"code": "print(1)\nprint(2)\ttab"}),
    ]
    assert "\n" not in calls[1][1], "raw control characters are escaped: the arguments are strict JSON"


def test_repeated_call_counts_once_and_a_different_one_streams() -> None:
    text = (
        '{"tool_calls": [{"name": "f", "arguments": {"a": 1}}, {"name": "f", "arguments": { "a" : 1 }},'
        ' {"name": "f", "arguments": {"a": 12}}, {"name": "g", "arguments": 5}, {"arguments": "s", "name": "h"}]}'
    )
    calls = streamed(text, 1)
    assert [(n, a) for n, a, _ in calls] == [("f", '{"a": 1}'), ("f", '{"a": 12}'), ("g", "5"), ("h", '"s"')]
