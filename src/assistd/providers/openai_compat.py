"""Any OpenAI-compatible /v1/chat/completions endpoint, through the official SDK (AsyncOpenAI)."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from assistd.providers.base import ChatRequest, Chunk, ProviderError, TokenCounter, ToolCallDelta, Usage
from assistd.providers.counting import Counters, Counting

log = logging.getLogger("assistd.providers")


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
        # The key lives only inside the client: never logged, never part of an error we return.
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=0
        )
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
        try:
            # The SDK's generic post: the typed `chat.completions.create` walks every message through
            # its request transform, measured at 65% of a run's server time with a 300-message prompt.
            stream: openai.AsyncStream[ChatCompletionChunk] = await self._client.post(
                "/chat/completions",
                cast_to=ChatCompletion,
                body=params,
                stream=True,
                stream_cls=openai.AsyncStream[ChatCompletionChunk],
            )
        except openai.APIStatusError as exc:
            retryable = exc.status_code >= 500 or exc.status_code in (408, 409, 429)
            code = "server_error" if retryable else "invalid_prompt"
            if exc.status_code == 429:
                code = "rate_limit_exceeded"
            raise _Fault(_describe(exc), code, retryable=retryable, retry_after=_retry_after(exc.response)) from None
        except openai.APITimeoutError:
            raise _Fault("timed out") from None
        except openai.APIConnectionError:
            raise _Fault("could not connect") from None
        finished = False
        events = 0
        try:
            content_type = stream.response.headers.get("content-type", "")
            if content_type and not content_type.startswith("text/event-stream"):
                raise _Fault(await _not_a_stream(stream.response, content_type))
            async for event in stream:
                events += 1
                chunk = _chunk(event)
                finished = finished or chunk.finish_reason is not None
                if chunk.text or chunk.tool_calls or chunk.finish_reason or chunk.usage:
                    yield chunk
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
            await stream.close()
        if not finished:
            if events == 0:
                raise _Fault("answered HTTP 200 with an empty event stream (no chunks)")
            raise _Fault(f"ended the stream after {_chunks(events)} without a finish_reason (the response was cut off)")

    async def close(self) -> None:
        await self._counters.close()
        await self._client.close()


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


def _describe(exc: openai.APIStatusError) -> str:
    return f"HTTP {exc.status_code}"


def _broken(exc: Exception, events: int) -> str:
    """What the upstream did, from the exception reading its stream raised."""
    where = f"after {_chunks(events)}" if events else "before any chunk"
    if isinstance(exc, openai.APITimeoutError):
        return f"timed out {where}"
    transport = type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "h11")  # older SDKs: unmapped
    if isinstance(exc, openai.APIConnectionError) or transport:
        return f"closed the connection {where}"
    if isinstance(exc, openai.APIError):
        return f"sent an error event {where}"
    if isinstance(exc, ValueError):
        return f"sent an event that is not JSON {where}"
    return f"sent a malformed stream ({type(exc).__name__} {where})"


def _chunks(count: int) -> str:
    return f"{count} chunk" if count == 1 else f"{count} chunks"


async def _not_a_stream(response: Any, content_type: str) -> str:
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


def _retry_after(response: Any) -> float | None:
    """Seconds the upstream asked us to wait: `retry-after-ms`, or `retry-after` (seconds or an HTTP date)."""
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
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


def _chunk(event: Any) -> Chunk:
    chunk = Chunk()
    usage = getattr(event, "usage", None)
    if usage is not None:
        prompt_details = getattr(usage, "prompt_tokens_details", None)
        completion_details = getattr(usage, "completion_tokens_details", None)
        chunk.usage = Usage(
            usage.prompt_tokens or 0,
            usage.completion_tokens or 0,
            cached_tokens=getattr(prompt_details, "cached_tokens", None) or 0,
            reasoning_tokens=getattr(completion_details, "reasoning_tokens", None) or 0,
        )
    if not event.choices:
        return chunk
    choice = event.choices[0]
    delta = choice.delta
    if delta is not None:
        chunk.text = delta.content or ""
        for call in delta.tool_calls or []:
            fn = call.function
            chunk.tool_calls.append(
                ToolCallDelta(
                    index=call.index,
                    id=call.id,
                    name=fn.name if fn is not None else None,
                    arguments=(fn.arguments or "") if fn is not None else "",
                )
            )
    chunk.finish_reason = choice.finish_reason
    return chunk
