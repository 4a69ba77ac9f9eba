"""The attributed citation stream (tools/attribution.py) on its own: however the answer is cut into
fragments, the text sent equals the final text and every annotation's offsets are exact.
Word overlap only (no embedder), so these run without the embedding model."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from assistd.tools.attribution import AttributedStream, Attributor, Mode, Source, sentences
from assistd.tools.citations import CitationStream

WHALE = Source(0, 0, "moby.txt", "file-moby", "Captain Ahab of the Pequod hunted the great white whale, Moby Dick.")
MARKET = Source(0, 1, "markets.txt", "file-mkt", "The stock market fell sharply on Tuesday as investors worried.")


def resolve(call: int, result: int) -> str | None:
    return {(0, 0): "file-moby", (0, 1): "file-mkt"}.get((call, result))


def run(text: str, mode: Mode = "auto", size: int = 3) -> tuple[str, list[dict[str, Any]], list[str]]:
    """Feed `text` in fragments of `size` code points: the text sent, its annotations, the pieces."""
    paths = {"out.csv": "file-out"}
    stream = AttributedStream(CitationStream(resolve, paths.get), mode, Attributor([WHALE, MARKET], None))

    async def feed() -> list[tuple[str, Any]]:
        pieces = []
        for i in range(0, len(text), size):
            pieces += await stream.feed(text[i : i + size])
        return pieces + await stream.flush()

    pieces = asyncio.run(feed())
    sent = "".join(p for p, _ in pieces)
    for note in stream.annotations:
        assert sent[note["start_index"] : note["end_index"]] == note["text"]
    assert [n for _, n in pieces if n is not None] == stream.annotations
    return sent, stream.annotations, [p for p, _ in pieces]


@pytest.mark.parametrize("size", [1, 2, 5, 1000])
def test_supported_sentences_get_a_marker_after_their_punctuation(size: int) -> None:
    text = "Hello! Captain Ahab hunted the great white whale. Stocks fell sharply on Tuesday, investors worried.\nBye"
    sent, notes, pieces = run(text, size=size)
    assert sent == (
        "Hello! Captain Ahab hunted the great white whale.【0:0†moby.txt】 Stocks fell sharply on Tuesday, "
        "investors worried.【0:1†markets.txt】\nBye"
    )
    assert [(n["text"], n["file_citation"]["file_id"]) for n in notes] == [
        ("【0:0†moby.txt】", "file-moby"),
        ("【0:1†markets.txt】", "file-mkt"),
    ]
    assert "【0:0†moby.txt】" in pieces and "【0:1†markets.txt】" in pieces  # each marker whole, in one piece


def test_the_last_sentence_is_cited_at_the_end_and_abbreviations_do_not_end_one() -> None:
    sent, notes, _ = run("The white whale, e.g. Moby Dick, was hunted by Captain Ahab")
    assert sent == "The white whale, e.g. Moby Dick, was hunted by Captain Ahab【0:0†moby.txt】"
    assert notes[0]["start_index"] == len("The white whale, e.g. Moby Dick, was hunted by Captain Ahab")


def test_a_model_marker_stops_our_markers_and_file_paths_keep_exact_offsets() -> None:
    text = "Captain Ahab hunted the white whale. It fell 【0:1†markets.txt】. "
    text += "Stocks fell on Tuesday, investors worried. See sandbox:/mnt/data/out.csv."
    sent, notes, _ = run(text)
    assert sent.startswith("Captain Ahab hunted the white whale.【0:0†moby.txt】 It fell 【0:1†markets.txt】. Stocks")
    assert [n["type"] for n in notes] == ["file_citation", "file_citation", "file_path"]
    assert notes[2]["text"] == "sandbox:/mnt/data/out.csv"


def test_off_removes_valid_markers_and_model_adds_none() -> None:
    text = "Captain Ahab hunted the white whale 【0:0†moby.txt】. Ghost 【5:5†x.txt】 here. sandbox:/mnt/data/out.csv"
    sent, notes, _ = run(text, "off")
    assert sent == "Captain Ahab hunted the white whale . Ghost 【5:5†x.txt】 here. sandbox:/mnt/data/out.csv"
    assert [(n["type"], n["start_index"]) for n in notes] == [("file_path", sent.index("sandbox:"))]
    assert run("Captain Ahab hunted the great white whale.", "model") == (
        "Captain Ahab hunted the great white whale.",
        [],
        ["Captain Ahab hunted the great white whale."[i : i + 3] for i in range(0, 42, 3)],
    )


def test_greetings_and_unrelated_sentences_stay_uncited() -> None:
    text = "Hello there! I don't know. Paris is the capital of France."
    assert run(text)[:2] == (text, [])


def test_sentences_split_on_final_punctuation_and_line_breaks() -> None:
    assert sentences("One two. Three?\n- four\n\nFive") == ["One two.", "Three?", "- four", "Five"]
