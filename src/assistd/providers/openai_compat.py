"""Any OpenAI-compatible /v1/chat/completions endpoint, through the official SDK (AsyncOpenAI)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from assistd.providers.base import ChatRequest, Chunk, ProviderError, ToolCallDelta, Usage

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
    ) -> None:
        self.name = name
        self.context_window = context_window
        self.quirks = quirks or Quirks()
        self.retry = retry or RetryPolicy()
        # The key lives only inside the client: never logged, never part of an error we return.
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=0
        )

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
        params = self._params(request)
        stream = await self._open(params)
        try:
            async for event in stream:
                yield _chunk(event)
        except openai.APIError as exc:
            raise ProviderError(f"The model backend '{self.name}' failed mid-response: {_describe(exc)}") from None
        finally:
            await stream.close()

    async def _open(self, params: dict[str, Any]) -> Any:
        """Open the stream, retrying with backoff on 429, 5xx, timeouts and connection errors."""
        last: Exception | None = None
        for attempt in range(self.retry.attempts):
            if attempt:
                delay = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
                await asyncio.sleep(delay * (0.75 + random.random() / 2))
            try:
                # The SDK's generic post: the typed `chat.completions.create` walks every message through
                # its request transform, measured at 65% of a run's server time with a 300-message prompt.
                return await self._client.post(
                    "/chat/completions",
                    cast_to=ChatCompletion,
                    body=params,
                    stream=True,
                    stream_cls=openai.AsyncStream[ChatCompletionChunk],
                )
            except openai.RateLimitError as exc:
                last = exc
            except openai.APIStatusError as exc:
                if exc.status_code < 500 and exc.status_code not in (408, 409):
                    raise ProviderError(
                        f"The model backend '{self.name}' rejected the request: {_describe(exc)}", "invalid_prompt"
                    ) from None
                last = exc
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                last = exc
            log.warning(
                "model backend call failed; retrying",
                extra={"backend": self.name, "attempt": attempt + 1, "error": type(last).__name__},
            )
        assert last is not None
        code = "rate_limit_exceeded" if isinstance(last, openai.RateLimitError) else "server_error"
        raise ProviderError(
            f"The model backend '{self.name}' failed after {self.retry.attempts} attempts: {_describe(last)}", code
        )

    async def close(self) -> None:
        await self._client.close()


def _describe(exc: Exception) -> str:
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    if isinstance(exc, openai.APITimeoutError):
        return "timed out"
    if isinstance(exc, openai.APIConnectionError):
        return "could not connect"
    return type(exc).__name__


def _chunk(event: Any) -> Chunk:
    chunk = Chunk()
    if getattr(event, "usage", None) is not None:
        chunk.usage = Usage(event.usage.prompt_tokens or 0, event.usage.completion_tokens or 0)
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
