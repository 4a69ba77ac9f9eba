"""The bundled model's guards on crafted token streams: text guard (internal syntax, loops), call closing."""

from __future__ import annotations

import json

import pytest

from assistd.providers.base import Chunk
from assistd.providers.local import bounded_strings, calls_schema, string_cap
from assistd.providers.local_calls import CallScanner, CallStream
from assistd.providers.local_text import TextGuard


def run(tokens: list[str], **kwargs: object) -> tuple[str, TextGuard, int]:
    """Feed tokens until the guard stops; returns the text sent, the guard, and how many tokens were fed."""
    guard = TextGuard(**kwargs)  # type: ignore[arg-type]
    sent = ""
    fed = 0
    for token in tokens:
        if guard.stopped is not None:
            break
        sent += guard.feed(token)
        fed += 1
    sent += guard.finish()
    return sent, guard, fed


def words(text: str) -> list[str]:
    """Split like a tokenizer would: words with their leading space."""
    out: list[str] = []
    for i, w in enumerate(text.split(" ")):
        out.append(w if i == 0 else " " + w)
    return out


def test_repeated_sentence_stops_at_its_second_copy_and_is_never_sent() -> None:
    loop = "The sea is blue and deep. " * 40
    sent, guard, fed = run(words("I like the sea. " + loop))
    assert sent == "I like the sea. The sea is blue and deep."
    assert guard.stopped == "repeat"
    assert fed < 20  # generation stops right away, not after 1,000 tokens


def test_a_sentence_that_starts_like_an_earlier_one_streams_once_it_differs() -> None:
    text = "The sea is blue and deep. The sea is blue and green today. Bye."
    sent, guard, _ = run(words(text))
    assert sent == text and guard.stopped is None


def test_short_repeated_sentences_are_not_loops() -> None:
    text = "Yes. Yes. I agree. I agree."
    sent, guard, _ = run(words(text))
    assert sent == text and guard.stopped is None


def test_repeat_limit_zero_turns_the_repetition_guard_off() -> None:
    text = "The sea is blue and deep. " * 3
    sent, guard, _ = run(words(text), repeat_limit=0)
    assert sent == text and guard.stopped is None


def test_repeat_limit_three_allows_one_repeat() -> None:
    sent, guard, _ = run(words("The sea is blue and deep. " * 5), repeat_limit=3)
    assert sent == ("The sea is blue and deep. " * 2).rstrip() and guard.stopped == "repeat"


def test_a_word_loop_without_sentence_end_stops() -> None:
    sent, guard, fed = run(words("I think " + "the cat " * 200))
    assert guard.stopped == "repeat"
    assert fed < 60
    assert sent.startswith("I think the cat")


def test_a_character_loop_inside_one_word_stops() -> None:
    sent, guard, fed = run(["fot"] + ["_h"] * 500)
    assert guard.stopped == "repeat" and fed < 100


@pytest.mark.parametrize(
    "answer",
    [
        'Call: {"tool_calls": [{"name": "get_ticker", "arguments": {"company_name": "Apple"}}]}',
        'call:{"tool_calls": []}',
        '{"tool_calls": [{"name": "get_ticker", "arguments": {}}]}',
        ' CALL : {"tool_calls"',
    ],
)
def test_internal_call_syntax_is_never_sent(answer: str) -> None:
    tokens = [answer[i : i + 3] for i in range(0, len(answer), 3)]
    sent, guard, _ = run(tokens)
    assert sent.strip() == "" and guard.stopped == "call"


def test_call_syntax_on_a_later_line_stops_there_and_keeps_the_answer() -> None:
    answer = 'The ticker of Apple is AAPL.\nCall: {"tool_calls": [{"name": "x"}]}'
    sent, guard, _ = run([answer[i : i + 2] for i in range(0, len(answer), 2)])
    assert sent == "The ticker of Apple is AAPL.\n" and guard.stopped == "call"


def test_leading_message_marker_is_dropped() -> None:
    sent, guard, _ = run(["mess", "age", ":", " The", " ticker", " is", " AAPL."])
    assert sent == "The ticker is AAPL." and guard.stopped is None


def test_words_that_start_like_a_marker_are_sent() -> None:
    text = "Calling is free. message me later. {a} Call me."
    sent, guard, _ = run(list(text))
    assert sent == text and guard.stopped is None


def closed(text: str) -> str:
    scanner = CallScanner()
    scanner.feed(text)
    return text + scanner.closing()


@pytest.mark.parametrize(
    "cut",
    [
        '{"tool_calls": [{"name": "file_search", "arguments": {"query": "the whale and the s',
        '{"tool_calls": [{"name": "file_search", "arguments": {"query": "a \\',
        '{"tool_calls": [{"name": "file_search", "arguments": {"query": "a \\u00',
        '{"tool_calls": [{"name": "f", "arguments": {"n": 12.',
        '{"tool_calls": [{"name": "f", "arguments": {"ok": tr',
        '{"tool_calls": [{"name": "f", "arguments": {"a": 1, "b',
        '{"tool_calls": [{"name": "f", "arguments": {"a": 1, ',
        '{"tool_calls": [{"name": "f", "arguments": {"a": [1, ',
        '{"tool_calls": [{"name": "f", "arguments": {"a": [',
        '{"tool_calls": [{"name": "f", "arguments": ',
        '{"tool_calls": [{"name": "f", "arg',
        '{"tool_calls": [{"name": "f"}, ',
        '{"tool_calls": [',
        '{"tool',
    ],
)
def test_any_cut_call_output_closes_to_valid_json(cut: str) -> None:
    json.loads(closed(cut), strict=False)


def test_a_cut_call_streams_arguments_that_parse() -> None:
    chunks: list[Chunk] = []
    stream = CallStream(chunks.append, names={"file_search"})
    text = '{"tool_calls": [{"name": "file_search", "arguments": {"query": "the whale and the s'
    for i in range(0, len(text), 4):
        stream.feed(text[i : i + 4])
    stream.close()
    arguments = "".join(d.arguments for c in chunks for d in c.tool_calls)
    assert json.loads(arguments) == {"query": "the whale and the s"}
    assert [d.name for c in chunks for d in c.tool_calls if d.name] == ["file_search"]


def test_a_call_cut_inside_its_name_is_never_opened() -> None:
    chunks: list[Chunk] = []
    stream = CallStream(chunks.append, names={"file_search"})
    stream.feed('{"tool_calls": [{"name": "file_sea')
    stream.close()
    assert chunks == [] and stream.count == 0


def test_a_call_cut_before_its_arguments_gets_empty_arguments() -> None:
    chunks: list[Chunk] = []
    stream = CallStream(chunks.append, names={"f"})
    stream.feed('{"tool_calls": [{"name": "f", "argu')
    stream.close()
    assert "".join(d.arguments for c in chunks for d in c.tool_calls) == "{}"


def test_free_strings_get_a_max_length_and_fixed_ones_do_not() -> None:
    schema = {
        "type": "object",
        "properties": {
            "q": {"type": "string"},
            "qs": {"type": "array", "items": {"type": "string", "maxLength": 5000}},
            "unit": {"type": "string", "enum": ["c", "f"]},
            "short": {"type": "string", "maxLength": 10},
            "n": {"type": ["string", "null"], "minLength": 900},
        },
    }
    out = bounded_strings(schema, 100)
    props = out["properties"]
    assert props["q"]["maxLength"] == 100 and props["qs"]["items"]["maxLength"] == 100
    assert "maxLength" not in props["unit"] and props["short"]["maxLength"] == 10
    assert props["n"]["minLength"] == 100 == props["n"]["maxLength"]
    assert schema["properties"]["q"] == {"type": "string"}  # the tool's own schema is left alone


def test_string_cap_leaves_room_to_close() -> None:
    assert string_cap(40) < 40 and string_cap(1) >= 1 and string_cap(100_000) == 2000
    tool = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
    }
    schema = calls_schema([tool], only=None, max_calls=1, max_string=string_cap(40))
    assert schema["properties"]["tool_calls"]["items"]["properties"]["arguments"]["properties"]["q"]["maxLength"] == 8


def test_lines_repeated_inside_a_code_block_are_not_a_loop() -> None:
    text = (
        "Here is the code:\n```python\nfor i in range(10):\n    print(i, i * 2)\n"
        "for i in range(10):\n    print(i, i * 2)\nrow = [0, " + "0, " * 40 + "0]\n```\nThe loop runs twice. Done."
    )
    sent, guard, _ = run(words(text))
    assert sent == text and guard.stopped is None


def test_call_syntax_in_the_middle_of_a_line_is_cut_there() -> None:
    answer = 'The ticker is AAPL. Call: {"tool_calls": [{"name": "get_price"}]}'
    sent, guard, _ = run([answer[i : i + 2] for i in range(0, len(answer), 2)])
    assert sent == "The ticker is AAPL. " and guard.stopped == "call"
    answer = 'I will now {"tool_calls": []}'
    sent, guard, _ = run(list(answer))
    assert sent == "I will now " and guard.stopped == "call"


@pytest.mark.parametrize(
    "answer",
    [
        'get_company_ticker: {\n  "name": "Apple",\n  "arguments": {"symbol": "AAPL"}\n}\n\nYou need the ticker.',
        'get_company_ticker: [{"name": "get_company_ticker", "arguments": {"ticker_value": "AAPL"}}]',
        'Sure. {"name": "get_stock_price", "arguments": {"symbol": "AAPL"}} is what I would call.',
    ],
)
def test_a_call_written_as_text_with_an_offered_tools_name_is_never_sent(answer: str) -> None:
    names = ("get_company_ticker", "get_stock_price")
    sent, guard, _ = run(words(answer), tool_names=names)
    assert guard.stopped == "call"
    assert "get_company_ticker" not in sent and '"name"' not in sent
    # Without the names (as before), the same text went out.
    assert run(words(answer))[1].stopped is None


def test_prose_that_names_a_tool_still_streams() -> None:
    text = "I used get_company_ticker to find the symbol: AAPL. The price is 190 USD."
    sent, guard, _ = run(words(text), tool_names=("get_company_ticker",))
    assert guard.stopped is None and sent == text
