"""The upstream chunk path: an OpenAI-compatible event stream read from its bytes (providers/chat_stream.py),
and the provider's attempts over it (providers/openai_compat.py) against a socket server that sends
exactly the bytes a test gives it, framing and failures included."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from assistd.providers.base import ChatRequest, Chunk, ProviderError
from assistd.providers.chat_stream import ErrorEvent, EventSplitter, Malformed, parse_chunk
from assistd.providers.openai_compat import OpenAICompatProvider, RetryPolicy

KEY = "sk-secret-0123456789"


def chunk_json(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    body = {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return json.dumps({**body, **extra}).encode()


WORDS = ["Hello", " wörld", " ✓"]
USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10, "prompt_tokens_details": {"cached_tokens": 2}}
STREAM = (
    [b"data: " + chunk_json({"role": "assistant", "content": ""})]
    + [b"data: " + chunk_json({"content": w}) for w in WORDS]
    + [b"data: " + chunk_json({}, "stop"), b'data: {"id":"c","choices":[],"usage":' + json.dumps(USAGE).encode() + b"}"]
)


def body(events: list[bytes], end: bytes = b"\n", done: bool = True) -> bytes:
    lines = [*events, b"data: [DONE]"] if done else events
    return b"".join(e.replace(b"\n", end) + end + end for e in lines)


# --- splitting events -----------------------------------------------------------------------------


def split(data: bytes, size: int) -> list[tuple[bytes, bytes]]:
    splitter = EventSplitter()
    found: list[tuple[bytes, bytes]] = []
    for i in range(0, len(data), size):
        found += splitter.feed(data[i : i + size])
    return found


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_events_are_the_same_whatever_the_line_ends_and_pieces(end: bytes) -> None:
    data = body(STREAM, end)
    expected = [(b"", e[len(b"data: ") :]) for e in STREAM] + [(b"", b"[DONE]")]
    for size in (1, 2, 3, 7, 64, len(data)):  # byte by byte splits CRLFs and UTF-8 characters too
        assert split(data, size) == expected, size


def test_comments_fields_multiline_data_and_an_unterminated_event() -> None:
    data = (
        b": keep-alive\n\n"  # a comment alone dispatches nothing
        b'event: message\nid: 1\nretry: 10\ndata:{"a":\ndata: 1}\n\n'  # no space after the colon; two data lines
        b"event: ping\n\n"  # no data: not dispatched
        b'data: {"b": 2}\n\n'  # the event name does not carry over
        b'data: {"cut": tr'  # the body ends inside an event: dropped, as the SSE format says
    )
    assert split(data, 5) == [(b"message", b'{"a":\n1}'), (b"", b'{"b": 2}')]


def test_a_long_line_in_many_pieces() -> None:
    text = "x" * 200_000
    data = b"data: " + chunk_json({"content": text}) + b"\n\n"
    ((_, found),) = split(data, 1000)
    assert parse_chunk(b"", found).text == text


# --- chunks ---------------------------------------------------------------------------------------


def test_chunk_fields() -> None:
    call = {"index": 1, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a"'}}
    chunk = parse_chunk(b"", chunk_json({"content": None, "tool_calls": [call]}))
    assert chunk.text == "" and chunk.finish_reason is None and chunk.usage is None
    (delta,) = chunk.tool_calls
    assert (delta.index, delta.id, delta.name, delta.arguments) == (1, "call_1", "f", '{"a"')
    fragment = parse_chunk(b"", chunk_json({"tool_calls": [{"index": 1, "function": {"arguments": ":1}"}}]}))
    assert (fragment.tool_calls[0].id, fragment.tool_calls[0].name, fragment.tool_calls[0].arguments) == (
        None,
        None,
        ":1}",
    )
    usage = {"prompt_tokens": 5, "completion_tokens": None, "completion_tokens_details": {"reasoning_tokens": 4}}
    final = parse_chunk(b"", chunk_json({}, "length", usage=usage))
    assert final.finish_reason == "length" and final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (5, 0)
    assert (final.usage.cached_tokens, final.usage.reasoning_tokens) == (0, 4)
    assert parse_chunk(b"", b'{"choices": [], "usage": null}') == Chunk()


@pytest.mark.parametrize(
    ("event", "data", "error"),
    [
        (b"", b"<html>oops</html>", ValueError),
        (b"", b"", ValueError),
        (b"", b'{"error": {"message": "overloaded", "type": "server_error"}}', ErrorEvent),
        (b"error", b'{"message": "overloaded"}', ErrorEvent),
        (b"", b"[1, 2]", Malformed),
        (b"", b'{"choices": "none"}', Malformed),
        (b"", b'{"choices": [{"delta": {"content": 5}}]}', Malformed),
        (b"", b'{"choices": [{"delta": {"tool_calls": [{"function": {"name": "f"}}]}}]}', Malformed),
        (b"", b'{"choices": [], "usage": {"prompt_tokens": "many"}}', Malformed),
    ],
    ids=["html", "empty", "error-key", "error-event", "array", "choices", "content", "call-index", "usage"],
)
def test_what_is_not_a_chunk(event: bytes, data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_chunk(event, data)


# --- the provider over a socket -------------------------------------------------------------------

Responder = Callable[[int], bytes | None]  # request number -> the whole response (None: stall after the head)


class RawUpstream:
    """Answers each HTTP request on a connection with the bytes `respond` gives; counts connections and
    requests, and keeps each request's head."""

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.connections = 0
        self.heads: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                self.heads.append(head)
                answer = self.respond(len(self.heads))
                if answer is None:  # the head of an event stream, then nothing
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                    )
                    await writer.drain()
                    await asyncio.sleep(30)
                    return
                writer.write(answer)
                await writer.drain()
                if b"connection: close" in answer.split(b"\r\n\r\n")[0].lower():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def sse_response(data: bytes, status: str = "200 OK", headers: bytes = b"", close: bool = False) -> bytes:
    head = f"HTTP/1.1 {status}\r\ncontent-type: text/event-stream\r\ncontent-length: {len(data)}\r\n".encode()
    return head + headers + (b"connection: close\r\n" if close else b"") + b"\r\n" + data


def cut_response(data: bytes) -> bytes:
    """A chunked event stream whose connection closes before the body's end."""
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    return head + f"{len(data):x}\r\n".encode() + data + b"\r\n"


def json_response(status: str, payload: Any, headers: bytes = b"") -> bytes:
    data = json.dumps(payload).encode()
    head = f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n".encode()
    return head + headers + b"\r\n" + data


def provider(url: str, attempts: int = 2, timeout: float = 5.0) -> OpenAICompatProvider:
    retry = RetryPolicy(attempts=attempts, base_delay=0.01, max_delay=0.01)
    return OpenAICompatProvider("up", base_url=url, api_key=KEY, context_window=8192, timeout=timeout, retry=retry)


REQUEST = ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}])


async def collect(p: OpenAICompatProvider) -> list[Chunk]:
    try:
        return [chunk async for chunk in p.complete(REQUEST)]
    finally:
        await p.close()


async def failure(respond: Responder, attempts: int = 2, timeout: float = 5.0) -> tuple[ProviderError, RawUpstream]:
    async with RawUpstream(respond) as up:
        with pytest.raises(ProviderError) as caught:
            await collect(provider(up.base_url, attempts, timeout))
    return caught.value, up


def test_a_whole_stream_and_the_request_sent() -> None:
    async def main() -> None:
        async with RawUpstream(lambda n: sse_response(body(STREAM, b"\r\n"))) as up:
            p = provider(up.base_url)
            first = [c async for c in p.complete(REQUEST)]
            second = [c async for c in p.complete(REQUEST)]
            await p.close()
        assert first == second
        assert "".join(c.text for c in first) == "".join(WORDS)
        assert [c.finish_reason for c in first if c.finish_reason] == ["stop"]
        usage = first[-1].usage
        assert usage is not None and (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (7, 3, 2)
        # The body read to its end after [DONE]: the second call reused the first one's connection.
        assert up.connections == 1
        head = up.heads[0].decode().lower()
        assert head.startswith("post /v1/chat/completions http/1.1") and f"authorization: bearer {KEY}" in head

    asyncio.run(main())


@pytest.mark.parametrize(
    ("respond", "message", "requests"),
    [
        (lambda n: cut_response(body(STREAM[:3], done=False)), "failed mid-response: closed the connection", 1),
        (lambda n: cut_response(body(STREAM[:1], done=False)), "failed after 2 attempts: closed the connection", 2),
        (
            lambda n: sse_response(body([STREAM[0], b'event: error\ndata: {"error": {"message": "boom"}}'])),
            "failed after 2 attempts: sent an error event after 1 chunk",
            2,
        ),
        (
            lambda n: sse_response(body([STREAM[0], b'data: {"choices": [{"delta": {"content": 1}}]}'])),
            "failed after 2 attempts: sent a malformed stream (content as a number after 1 chunk)",
            2,
        ),
        (
            lambda n: sse_response(body([STREAM[1], b"data: <!doctype html>"])),
            "failed mid-response: sent an event that is not JSON after 1 chunk",
            1,
        ),
        (lambda n: sse_response(body(STREAM[:3])), "failed mid-response: ended the stream after 3 chunks without", 1),
        (lambda n: sse_response(b""), "answered HTTP 200 with an empty event stream", 2),
        (
            lambda n: json_response("200 OK", {"choices": []}),
            "answered HTTP 200 with a JSON body (application/json) instead of an event stream",
            2,
        ),
    ],
    ids=["cut-after-text", "cut-before-text", "error-event", "malformed", "garbage", "no-finish", "empty", "json"],
)
def test_broken_streams_are_described(respond: Responder, message: str, requests: int) -> None:
    error, up = asyncio.run(failure(respond))
    assert message in error.message and error.code == "server_error"
    assert len(up.heads) == requests


def test_a_stream_cut_after_its_finish_reason_is_whole() -> None:
    async def main() -> list[Chunk]:
        async with RawUpstream(lambda n: cut_response(body(STREAM[:5], done=False))) as up:
            return await collect(provider(up.base_url))

    chunks = asyncio.run(main())
    assert "".join(c.text for c in chunks) == "".join(WORDS) and chunks[-1].finish_reason == "stop"


def test_http_errors_keep_the_key_out_and_say_what_to_retry() -> None:
    envelope = {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error"}}
    error, up = asyncio.run(failure(lambda n: json_response("401 Unauthorized", envelope)))
    assert error.code == "invalid_prompt" and "rejected the request: HTTP 401" in error.message
    assert KEY not in error.message and len(up.heads) == 1
    busy = {"error": {"message": "busy", "type": "server_error"}}
    error, up = asyncio.run(failure(lambda n: json_response("429 Too Many Requests", busy, b"retry-after-ms: 10\r\n")))
    assert error.code == "rate_limit_exceeded" and "failed after 2 attempts: HTTP 429" in error.message
    assert len(up.heads) == 2


def test_timeouts_and_a_backend_that_is_not_there() -> None:
    stalled = sse_response(body(STREAM[:2], done=False)).replace(b"content-length: ", b"content-length: 9")
    error, _ = asyncio.run(failure(lambda n: stalled, timeout=0.3))
    assert "failed mid-response: timed out after 2 chunks" in error.message
    error, _ = asyncio.run(failure(lambda n: None, timeout=0.3))
    assert "failed after 2 attempts: timed out before any chunk" in error.message

    async def refused() -> ProviderError:
        async with RawUpstream(lambda n: None) as up:
            url = up.base_url
        with pytest.raises(ProviderError) as caught:
            await collect(provider(url))
        return caught.value

    assert "failed after 2 attempts: could not connect" in asyncio.run(refused()).message
