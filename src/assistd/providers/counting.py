"""Counting a prompt in an OpenAI-compatible backend's tokens: what decides what fits its window.

Two counters (chosen per backend: `ASSISTD_UPSTREAM_TOKEN_COUNTER`, or `token_counter` in the routing
file):
- `tiktoken` (the default): cl100k (providers/tokens.py), every count raised by a safety margin, since
  open models' tokenizers cut most text into more pieces than cl100k does.
- `tokenize`: the backend's own `POST /tokenize` (vLLM and llama.cpp's server have one), plus a fixed
  per-message allowance for the chat template's framing. Counts are cached by text, a few requests
  at a time, so a prompt is not sent again item by item on every model call. When the endpoint fails
  (absent, down, an answer without a count), the text is counted as `tiktoken` does and the endpoint
  is left alone for a while: counting never fails a run (and such an estimate is not lasting: it is
  not kept with the message, providers/base.py `Count`).

Each counter has a key naming what its counts depend on; a thread's messages keep their counts with
that key (stores/messages.py), so a long thread is counted once, not on every model call.

The bundled model counts with llama.cpp's own tokenizer (providers/local.py `LocalCounter`).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from assistd import jsonio
from assistd.providers import tokens
from assistd.providers.base import Count

log = logging.getLogger("assistd.providers")

CounterKind = Literal["tiktoken", "tokenize"]
DEFAULT_MARGIN = 0.2
TEMPLATE_OVERHEAD = 8  # a message's framing in common chat templates (ChatML, Llama 3): role, start and end tokens
IMAGE_TOKENS = 85  # an image at low detail, as OpenAI counts it
CACHE_SIZE = 4096  # texts whose count is remembered, per backend and model
CONCURRENT_REQUESTS = 4
MAX_REQUESTS_PER_COUNT = 64  # beyond this many new texts in one count, the rest are estimated
RETRY_AFTER_FAILURE = 60.0  # seconds the endpoint is left alone after it failed
TIMEOUT = 5.0


def counter_key(kind: str, description: str) -> str:
    """A counter's key (providers/base.py `TokenCounter.key`): its kind and a digest of everything its
    counts depend on (tokenizer, model, framing allowances, margin)."""
    return f"{kind}:{hashlib.blake2b(description.encode(), digest_size=16).hexdigest()}"


@dataclass(frozen=True)
class Counting:
    """How a backend's prompts are counted."""

    kind: CounterKind = "tiktoken"
    margin: float = DEFAULT_MARGIN  # tiktoken's counts (and the endpoint's fallback) times 1 + margin
    tokenize_url: str | None = None  # default: the base URL without its /v1, then /tokenize


class Tiktoken:
    """cl100k with OpenAI's per-message overhead, times 1 + `margin`."""

    def __init__(self, margin: float = 0.0) -> None:
        self.margin = margin
        self.key = counter_key("cl100k", f"cl100k_base overhead={tokens.PER_MESSAGE_OVERHEAD} margin={margin!r}")

    def scale(self, count: int) -> int:
        return math.ceil(count * (1 + self.margin)) if self.margin else count

    async def messages(self, messages: Sequence[dict[str, Any]]) -> list[int]:
        return [self.scale(tokens.count_message(m)) for m in messages]

    async def counts(self, messages: Sequence[dict[str, Any]]) -> list[Count]:
        return [Count(n, True) for n in await self.messages(messages)]

    async def fixed(self, tools: list[dict[str, Any]]) -> int:
        return self.scale(tokens.count_tools(tools))


def message_texts(message: dict[str, Any]) -> tuple[list[str], int]:
    """The texts a chat message shows the model (its content, its tool calls as JSON) and its images."""
    texts: list[str] = []
    images = 0
    content = message.get("content")
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for part in content:
            if part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            else:
                images += 1
    for call in message.get("tool_calls") or []:
        texts.append(jsonio.dumps(call["function"]).decode())
    return texts, images


def tokenize_url(base_url: str) -> str:
    """vLLM and llama.cpp's server serve /tokenize beside /v1, not under it."""
    root = base_url.rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    return f"{root}/tokenize"


class CountCache:
    """Token counts of texts already counted, the least recently used forgotten past `size`."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._counts: collections.OrderedDict[bytes, int] = collections.OrderedDict()

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.blake2b(text.encode(), digest_size=16).digest()

    def get(self, key: bytes) -> int | None:
        count = self._counts.get(key)
        if count is not None:
            self._counts.move_to_end(key)
        return count

    def put(self, key: bytes, count: int) -> None:
        self._counts[key] = count
        if len(self._counts) > self.size:
            self._counts.popitem(last=False)


class TokenizeEndpoint:
    """The backend's POST /tokenize. The body names the text both ways (vLLM reads `prompt`, llama.cpp's
    server `content`); the answer's `count` (vLLM) or its `tokens` list is the count."""

    def __init__(self, url: str, model: str, fallback: Tiktoken, client: httpx.AsyncClient) -> None:
        self.url = url
        self.model = model
        self.fallback = fallback
        self.client = client
        self.requests = 0  # made so far (tests and benches read it)
        self.key = counter_key("tokenize", f"{url} {model} overhead={TEMPLATE_OVERHEAD} image={IMAGE_TOKENS}")
        self._cache = CountCache()
        self._down_until = 0.0
        self._gate = asyncio.Semaphore(CONCURRENT_REQUESTS)

    async def messages(self, messages: Sequence[dict[str, Any]]) -> list[int]:
        return [count.tokens for count in await self.counts(messages)]

    async def counts(self, messages: Sequence[dict[str, Any]]) -> list[Count]:
        """Lasting unless a text of the message was estimated (the endpoint failed or was left alone)."""
        shown = [message_texts(m) for m in messages]
        counts, estimated = await self._count([text for texts, _ in shown for text in texts])
        out: list[Count] = []
        for texts, images in shown:
            n = TEMPLATE_OVERHEAD + sum(counts[text] for text in texts) + IMAGE_TOKENS * images
            out.append(Count(n, not any(text in estimated for text in texts)))
        return out

    async def fixed(self, tools: list[dict[str, Any]]) -> int:
        if not tools:
            return 0
        text = jsonio.dumps(tools).decode()
        return (await self._count([text]))[0][text] + TEMPLATE_OVERHEAD

    async def _count(self, texts: list[str]) -> tuple[dict[str, int], set[str]]:
        """Each text's count, and the texts whose count is the fallback's estimate."""
        counts: dict[str, int] = {"": 0}
        estimated: set[str] = set()
        missing: list[tuple[str, bytes]] = []
        for text in dict.fromkeys(texts):
            if text in counts:
                continue
            key = CountCache.key(text)
            cached = self._cache.get(key)
            if cached is not None:
                counts[text] = cached
            else:
                missing.append((text, key))
        asked = missing[:MAX_REQUESTS_PER_COUNT]
        found = await asyncio.gather(*(self._tokenize(text) for text, _ in asked))
        for (text, key), count in zip(asked, found, strict=True):
            if count is None:
                counts[text] = self.fallback.scale(tokens.count_text(text))
                estimated.add(text)
                continue
            counts[text] = count
            self._cache.put(key, count)
        for text, _ in missing[MAX_REQUESTS_PER_COUNT:]:
            counts[text] = self.fallback.scale(tokens.count_text(text))
            estimated.add(text)
        return counts, estimated

    async def _tokenize(self, text: str) -> int | None:
        if time.monotonic() < self._down_until:
            return None
        async with self._gate:
            self.requests += 1
            body = {"model": self.model, "prompt": text, "content": text, "add_special_tokens": False}
            try:
                response = await self.client.post(self.url, json=body, timeout=TIMEOUT)
                response.raise_for_status()
                answer = response.json()
                count = answer.get("count")
                if not isinstance(count, int):
                    count = len(answer["tokens"])
                return int(count)
            except Exception as exc:  # any failure: estimate instead, and leave the endpoint alone a while
                self._down_until = time.monotonic() + RETRY_AFTER_FAILURE
                log.warning(
                    "tokenize endpoint failed; counting with tiktoken and a margin",
                    extra={"url": self.url, "error": f"{type(exc).__name__}: {exc}"[:200]},
                )
                return None


class Counters:
    """A backend's counters, one per model name (the tokenize endpoint's cache is per model)."""

    def __init__(self, counting: Counting, base_url: str, api_key: str | None = None) -> None:
        self.counting = counting
        self.base_url = base_url
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._tiktoken = Tiktoken(counting.margin)
        self._endpoints: dict[str, TokenizeEndpoint] = {}
        self._client: httpx.AsyncClient | None = None

    def counter(self, model: str) -> Tiktoken | TokenizeEndpoint:
        if self.counting.kind == "tiktoken":
            return self._tiktoken
        endpoint = self._endpoints.get(model)
        if endpoint is None:
            if self._client is None:
                self._client = httpx.AsyncClient(headers=self._headers)
            url = self.counting.tokenize_url or tokenize_url(self.base_url)
            endpoint = self._endpoints[model] = TokenizeEndpoint(url, model, self._tiktoken, self._client)
        return endpoint

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
