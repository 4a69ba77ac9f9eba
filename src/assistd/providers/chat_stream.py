"""A chat-completions event stream, read straight from its bytes into typed `Chunk`s.

The body of a streamed `/chat/completions` response is Server-Sent Events whose data is one
`chat.completion.chunk` JSON object each, ended by `data: [DONE]`. `EventSplitter` cuts the bytes into
events as the SSE format says (LF, CRLF or CR line ends, `:` comments, multi-line data, an event left
unterminated at the end of the body dropped); `parse_chunk` decodes one event's data with orjson and
keeps only what the engine reads. Nothing here builds a model object per chunk: that, in the SDK's
streaming, was half of a streamed token's CPU (bench/bench_provider.py measures this path).

What a broken upstream sends raises here and becomes a failed attempt in providers/openai_compat.py:
`ValueError` for data that is not JSON, `ErrorEvent` for an error in the stream, `Malformed` for JSON
that is not a chunk.
"""

from __future__ import annotations

from typing import Any

import orjson

from assistd.providers.base import Chunk, ToolCallDelta, Usage

DONE = b"[DONE]"
_LINE_ENDS = (b"\n", b"\r")


class ErrorEvent(Exception):
    """The upstream sent an error inside the stream (`event: error`, or data with an `error` key)."""


class Malformed(Exception):
    """An event whose data is JSON but not a chat-completion chunk; the message says what was wrong."""


class EventSplitter:
    """Feeds on a body's bytes as they arrive; returns each complete event's `(name, data)`."""

    def __init__(self) -> None:
        self._pending: list[bytes] = []  # bytes of a line not ended yet (joined once its end arrives)
        self._skip_lf = False  # the last piece ended in CR: an LF first in the next one ends no new line
        self._event = b""
        self._data: list[bytes] = []

    def feed(self, piece: bytes) -> list[tuple[bytes, bytes]]:
        if self._skip_lf and piece[:1] == b"\n":
            piece = piece[1:]
        self._skip_lf = False
        if b"\n" not in piece and b"\r" not in piece:
            if piece:
                self._pending.append(piece)
            return []
        if self._pending:
            self._pending.append(piece)
            piece = b"".join(self._pending)
            self._pending.clear()
        lines = piece.splitlines(keepends=True)  # on bytes: LF, CRLF and CR only
        if not lines[-1].endswith(_LINE_ENDS):
            self._pending.append(lines.pop())
        elif lines[-1].endswith(b"\r"):
            self._skip_lf = True
        events: list[tuple[bytes, bytes]] = []
        for line in lines:
            self._line(line.rstrip(b"\r\n"), events)
        return events

    def _line(self, line: bytes, events: list[tuple[bytes, bytes]]) -> None:
        if not line:  # the blank line that ends an event; one without data is not dispatched
            if self._data:
                data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
                events.append((self._event, data))
            self._event, self._data = b"", []
            return
        if line[0] == 0x3A:  # ":" a comment (keep-alives)
            return
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value


def parse_chunk(event: bytes, data: bytes) -> Chunk:
    """One event's data as a `Chunk`: its text, tool-call fragments, finish_reason and usage."""
    found = orjson.loads(data)  # orjson.JSONDecodeError is a ValueError
    if not isinstance(found, dict):
        raise Malformed(f"{_kind(found)} instead of a chunk object")
    if event == b"error" or found.get("error"):
        raise ErrorEvent()
    chunk = Chunk()
    usage = found.get("usage")
    if usage is not None:
        chunk.usage = _usage(_object(usage, "usage"))
    choices = found.get("choices")
    if not choices:
        return chunk
    if not isinstance(choices, list):
        raise Malformed(f"choices as {_kind(choices)}")
    choice = _object(choices[0], "a choice")
    delta = choice.get("delta")
    if delta is not None:
        delta = _object(delta, "a delta")
        content = delta.get("content")
        if content is not None:
            chunk.text = _string(content, "content")
        calls = delta.get("tool_calls")
        if calls:
            if not isinstance(calls, list):
                raise Malformed(f"tool_calls as {_kind(calls)}")
            chunk.tool_calls = [_tool_call(call) for call in calls]
    finish = choice.get("finish_reason")
    if finish is not None:
        chunk.finish_reason = _string(finish, "finish_reason")
    return chunk


def _tool_call(value: Any) -> ToolCallDelta:
    call = _object(value, "a tool call")
    index = call.get("index")
    if not isinstance(index, int) or isinstance(index, bool):
        raise Malformed("a tool call without an integer index")
    fn = call.get("function")
    if fn is None:
        return ToolCallDelta(index=index, id=_optional_string(call.get("id"), "a tool call id"))
    fn = _object(fn, "a tool call's function")
    return ToolCallDelta(
        index=index,
        id=_optional_string(call.get("id"), "a tool call id"),
        name=_optional_string(fn.get("name"), "a function name"),
        arguments=_optional_string(fn.get("arguments"), "function arguments") or "",
    )


def _usage(usage: dict[str, Any]) -> Usage:
    prompt = _object(usage.get("prompt_tokens_details") or {}, "prompt_tokens_details")
    completion = _object(usage.get("completion_tokens_details") or {}, "completion_tokens_details")
    return Usage(
        _count(usage.get("prompt_tokens"), "prompt_tokens"),
        _count(usage.get("completion_tokens"), "completion_tokens"),
        cached_tokens=_count(prompt.get("cached_tokens"), "cached_tokens"),
        reasoning_tokens=_count(completion.get("reasoning_tokens"), "reasoning_tokens"),
    )


def _count(value: Any, what: str) -> int:
    """A token count; missing or null is 0 (backends leave out what they do not count)."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise Malformed(f"{what} as {_kind(value)}")


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{what} as {_kind(value)}")
    return value


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise Malformed(f"{what} as {_kind(value)}")
    return value


def _optional_string(value: Any, what: str) -> str | None:
    return None if value is None else _string(value, what)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
