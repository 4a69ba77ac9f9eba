"""Any OpenAI-compatible /v1/chat/completions endpoint, streamed over httpx.

The response's event stream is read from its bytes (providers/chat_stream.py), not through the `openai`
SDK's streaming, which validated a model object per chunk: half the CPU of a streamed token. What the
SDK did for us is done here: the request (JSON written exactly, bearer key), its timeout, the
retries of failed attempts (Retry-After honoured), and a description of what a failing backend did.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, cast

import httpx

from assistd import jsonio
from assistd.providers.base import ChatRequest, Chunk, ProviderError, TokenCounter
from assistd.providers.chat_stream import DONE, ErrorEvent, EventSplitter, Malformed, parse_chunk
from assistd.providers.counting import Counters, Counting

log = logging.getLogger("assistd.providers")

# Connections to one backend: as many streams at once as the server runs (each holds one for its whole
# answer; a burst of streamed runs must not queue for a connection), idle ones kept for the next burst.
# They are spread over POOLS connection pools (_Pools), each allowed a share.
POOLS = 32
MAX_CONNECTIONS = 1000
MAX_IDLE_CONNECTIONS = 256
IDLE_SECONDS = 5.0
# After `data: [DONE]` the rest of the body (normally nothing) is read, at most this long, so that the
# connection can serve the next call; past it the connection is closed instead.
DRAIN_SECONDS = 1.0


@dataclass(frozen=True)
class Quirks:
    """What a backend does not support; the request is adapted instead of failing."""

    stream_usage: bool = True  # accepts stream_options={"include_usage": true}
    tool_choice_object: bool = True  # a named tool_choice; else sent as "required" with one tool
    parallel_tool_calls: bool = True  # accepts the parallel_tool_calls flag
    response_format_json_schema: bool = True  # else sent as json_object


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # first try + 3 retries
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0  # the longest Retry-After honoured (a longer one waits this long)


class OpenAICompatProvider:
    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str | None,
        context_window: int,
        timeout: float,
        quirks: Quirks | None = None,
        retry: RetryPolicy | None = None,
        counting: Counting | None = None,
    ) -> None:
        self.name = name
        self.context_window = context_window
        self.quirks = quirks or Quirks()
        self.retry = retry or RetryPolicy()
        self._url = base_url.rstrip("/") + "/chat/completions"
        # The key lives only inside the client's headers: never logged, never part of an error we return.
        headers = {
            "authorization": f"Bearer {api_key or 'not-needed'}",
            "content-type": "application/json",
            "accept": "application/json",
            "user-agent": "assistd",
        }
        self._pools = _Pools(headers, httpx.Timeout(timeout), tls=self._url.startswith("https:"))
        self._counters = Counters(counting or Counting(), base_url, api_key)

    def counter(self, model: str) -> TokenCounter:
        return self._counters.counter(model)

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"model": request.model, "messages": request.messages, "stream": True}
        if self.quirks.stream_usage:
            params["stream_options"] = {"include_usage": True}
        if request.tools:
            params["tools"] = request.tools
            choice = request.tool_choice
            if isinstance(choice, dict) and not self.quirks.tool_choice_object:
                name = choice["function"]["name"]
                params["tools"] = [t for t in request.tools if t["function"]["name"] == name]
                choice = "required"
            if choice is not None:
                params["tool_choice"] = choice
            if request.parallel_tool_calls is not None and self.quirks.parallel_tool_calls:
                params["parallel_tool_calls"] = request.parallel_tool_calls
        if request.response_format is not None:
            fmt = request.response_format
            if fmt.get("type") == "json_schema" and not self.quirks.response_format_json_schema:
                fmt = {"type": "json_object"}
            params["response_format"] = fmt
        for key in ("temperature", "top_p"):
            value = getattr(request, key)
            if value is not None:
                params[key] = value
        if request.max_tokens is not None:
            params["max_tokens"] = request.max_tokens
        return params

    async def complete(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        """Stream one chat completion. A failed attempt is retried only while nothing reached the caller:
        after the first text or tool-call fragment, a broken stream fails the call (the run keeps what
        it showed, marked incomplete)."""
        params = self._params(request)
        fault: _Fault | None = None
        attempt = 0
        while attempt < self.retry.attempts:
            if fault is not None:
                delay = self._delay(attempt, fault, request.deadline)
                if delay is None:
                    raise ProviderError(
                        f"The model backend '{self.name}' asked to retry after {fault.retry_after:.0f} s, "
                        f"past the run's expiry: {fault.description}",
                        fault.code,
                    )
                await asyncio.sleep(delay)
            attempt += 1
            emitted = False
            try:
                async with contextlib.aclosing(self._attempt(params)) as chunks:
                    async for chunk in chunks:
                        emitted = emitted or bool(chunk.text or chunk.tool_calls)
                        yield chunk
                return
            except _Fault as exc:
                if emitted:
                    raise ProviderError(
                        f"The model backend '{self.name}' failed mid-response: {exc.description}", exc.code
                    ) from None
                if not exc.retryable:
                    raise ProviderError(
                        f"The model backend '{self.name}' rejected the request: {exc.description}", exc.code
                    ) from None
                fault = exc
            if attempt < self.retry.attempts:
                log.warning(
                    "model backend call failed; retrying",
                    extra={"backend": self.name, "attempt": attempt, "error": fault.description},
                )
        assert fault is not None
        attempts = f"{attempt} attempt" if attempt == 1 else f"{attempt} attempts"
        raise ProviderError(f"The model backend '{self.name}' failed after {attempts}: {fault.description}", fault.code)

    def _delay(self, attempt: int, fault: _Fault, deadline: float | None) -> float | None:
        """Seconds to wait before attempt `attempt + 1`: the upstream's Retry-After when it sent one (at
        most `max_retry_after`), else exponential backoff with jitter. None: the wait would outlast the run."""
        if fault.retry_after is not None:
            delay = min(fault.retry_after, self.retry.max_retry_after)
        else:
            delay = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
            delay *= 0.75 + random.random() / 2
        if deadline is not None and fault.retry_after is not None and time.time() + delay >= deadline:
            return None
        return delay

    async def _attempt(self, params: dict[str, Any]) -> AsyncGenerator[Chunk, None]:
        """One request. Raises _Fault for anything short of a whole answer (a chunk with a finish_reason)."""
        with self._pools.take() as client:
            async for chunk in self._stream(client, params):
                yield chunk

    async def _stream(self, client: httpx.AsyncClient, params: dict[str, Any]) -> AsyncGenerator[Chunk, None]:
        request = client.build_request("POST", self._url, content=jsonio.dumps(params))
        try:
            response = await client.send(request, stream=True)
        except httpx.TimeoutException:
            raise _Fault("timed out") from None
        except httpx.TransportError:
            raise _Fault("could not connect") from None
        finished = False
        events = 0
        try:
            if not response.is_success:
                status = response.status_code
                retryable = status >= 500 or status in (408, 409, 429)
                code = "server_error" if retryable else "invalid_prompt"
                if status == 429:
                    code = "rate_limit_exceeded"
                raise _Fault(f"HTTP {status}", code, retryable=retryable, retry_after=_retry_after(response))
            content_type = response.headers.get("content-type", "")
            if content_type and not content_type.startswith("text/event-stream"):
                raise _Fault(await _not_a_stream(response, content_type))
            splitter = EventSplitter()
            body = cast(AsyncGenerator[bytes, None], response.aiter_bytes())  # httpx's is a generator
            async with contextlib.aclosing(body) as pieces:
                done = False
                async for piece in pieces:
                    for event, data in splitter.feed(piece):
                        if data.startswith(DONE):
                            done = True
                            break
                        chunk = parse_chunk(event, data)
                        events += 1
                        finished = finished or chunk.finish_reason is not None
                        if chunk.text or chunk.tool_calls or chunk.finish_reason or chunk.usage:
                            yield chunk
                    if done:
                        await _drain(pieces)
                        break
        except _Fault:
            raise
        except Exception as exc:  # anything reading the body: the upstream broke the stream
            if not finished:
                raise _Fault(_broken(exc, events)) from None
            log.warning(  # the answer is whole; only the end of the stream (usage, [DONE]) went missing
                "model backend stream broke after its finish_reason",
                extra={"backend": self.name, "error": type(exc).__name__},
            )
        finally:
            await response.aclose()
        if not finished:
            if events == 0:
                raise _Fault("answered HTTP 200 with an empty event stream (no chunks)")
            raise _Fault(f"ended the stream after {_chunks(events)} without a finish_reason (the response was cut off)")

    async def close(self) -> None:
        await self._counters.close()
        await self._pools.close()


class _Pools:
    """httpx clients to one backend, each with its own connection pool, made as they are needed. A call
    takes the one with the fewest calls in flight, the first on a tie: calls one at a time keep reusing
    the first pool's warm connection, and a burst spreads over them all. httpcore's pool does work in
    proportion to its connections (for idle ones, to their square) whenever a request starts or a
    response ends: 200 streams of 40 tokens at once in one pool cost 69 µs of CPU per token, in 32 pools
    40 µs, one stream at a time 33 µs (bench/bench_provider.py)."""

    def __init__(self, headers: dict[str, str], timeout: httpx.Timeout, *, tls: bool) -> None:
        self._headers = headers
        self._timeout = timeout
        self._limits = httpx.Limits(
            max_connections=MAX_CONNECTIONS // POOLS,
            max_keepalive_connections=MAX_IDLE_CONNECTIONS // POOLS,
            keepalive_expiry=IDLE_SECONDS,
        )
        # One TLS context for every pool, made with the first (loading the CA bundle takes ~20 ms of CPU);
        # none for a plain-HTTP backend, which never uses one.
        self._tls = tls
        self._ssl: ssl.SSLContext | None = None
        self._clients: list[httpx.AsyncClient | None] = [None] * POOLS
        self._active = [0] * POOLS

    @contextlib.contextmanager
    def take(self) -> Iterator[httpx.AsyncClient]:
        active = self._active
        index = active.index(min(active))
        client = self._clients[index]
        if client is None:
            client = self._clients[index] = self._client()
        active[index] += 1
        try:
            yield client
        finally:
            active[index] -= 1

    def _client(self) -> httpx.AsyncClient:
        verify: ssl.SSLContext | bool = False
        if self._tls:
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            verify = self._ssl
        return httpx.AsyncClient(headers=self._headers, timeout=self._timeout, limits=self._limits, verify=verify)

    async def close(self) -> None:
        clients, self._clients = self._clients, [None] * POOLS
        for client in clients:
            if client is not None:
                await client.aclose()


class _Fault(Exception):
    """One attempt failed; `retryable`: another attempt may succeed (when nothing was shown yet)."""

    def __init__(
        self, description: str, code: str = "server_error", *, retryable: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(description)
        self.description = description
        self.code = code
        self.retryable = retryable
        self.retry_after = retry_after


def _broken(exc: Exception, events: int) -> str:
    """What the upstream did, from the exception reading its stream raised."""
    where = f"after {_chunks(events)}" if events else "before any chunk"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out {where}"
    if isinstance(exc, httpx.TransportError):
        return f"closed the connection {where}"
    if isinstance(exc, ErrorEvent):
        return f"sent an error event {where}"
    if isinstance(exc, Malformed):
        return f"sent a malformed stream ({exc} {where})"
    if isinstance(exc, ValueError):  # orjson's JSONDecodeError
        return f"sent an event that is not JSON {where}"
    return f"sent a malformed stream ({type(exc).__name__} {where})"


async def _drain(pieces: AsyncIterator[bytes]) -> None:
    """Read what follows `[DONE]` (normally nothing), so that the connection goes back to the pool."""
    with contextlib.suppress(httpx.HTTPError, TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in pieces:
                pass


def _chunks(count: int) -> str:
    return f"{count} chunk" if count == 1 else f"{count} chunks"


async def _not_a_stream(response: httpx.Response, content_type: str) -> str:
    """A 200 that is not an event stream: say whether the body was JSON at all."""
    kind = content_type.split(";")[0].strip()
    try:
        body = await response.aread()
        json.loads(body)
    except ValueError:
        return f"answered HTTP 200 with a non-JSON body ({kind}) instead of an event stream"
    except Exception:  # the body could not even be read
        return f"answered HTTP 200 with an unreadable body ({kind}) instead of an event stream"
    return f"answered HTTP 200 with a JSON body ({kind}) instead of an event stream"


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the upstream asked us to wait: `retry-after-ms`, or `retry-after` (seconds or an HTTP date)."""
    headers = response.headers
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        with contextlib.suppress(ValueError):
            return max(0.0, float(raw_ms) / 1000)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
