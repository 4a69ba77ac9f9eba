"""The provider interface: a chat request in, a stream of chunks out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol


@dataclass
class ChatRequest:
    """An OpenAI chat-completions request, already in wire form (messages and tools are dicts)."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None  # "none" | "auto" | "required" | {"type": "function", ...}
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    deadline: float | None = None  # Unix time the run expires: no retry waits past it


@dataclass
class ToolCallDelta:
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # of the prompt tokens, served from the backend's prompt cache
    reasoning_tokens: int = 0  # of the completion tokens, spent on reasoning

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Chunk:
    text: str = ""
    tool_calls: list[ToolCallDelta] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None


class ProviderError(Exception):
    """The backend failed after retries. `code` is a run `last_error` code."""

    def __init__(self, message: str, code: str = "server_error") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Count(NamedTuple):
    """A message's tokens, and whether the counter would count it the same again (False: an estimate in
    its stead, such as the tokenize endpoint's fallback while the endpoint is down)."""

    tokens: int
    lasting: bool


class TokenCounter(Protocol):
    """How many tokens a request takes on one backend, in that backend's own tokens where it can tell
    (providers/counting.py, the local model's in providers/local.py). It decides what fits the window."""

    @property
    def key(self) -> str:
        """What counts, in at most 64 characters: counters with one key count alike, so a message's count
        by one is kept with the message and reused by the next (stores/messages.py), never by another."""
        ...

    async def messages(self, messages: Sequence[dict[str, Any]]) -> list[int]:
        """The tokens each chat message takes in the prompt, its chat template's framing included."""
        ...

    async def counts(self, messages: Sequence[dict[str, Any]]) -> list[Count]:
        """As `messages`, each count marked lasting or not (only lasting ones are kept)."""
        ...

    async def fixed(self, tools: list[dict[str, Any]]) -> int:
        """The tokens a request takes beyond its messages: the tools as the backend shows them, and
        the template's opening and answer prefix."""
        ...


class Provider(Protocol):
    name: str
    context_window: int

    def complete(self, request: ChatRequest) -> AsyncIterator[Chunk]: ...

    def counter(self, model: str) -> TokenCounter:
        """The counter for prompts to `model` (the name sent to this backend)."""
        ...

    async def close(self) -> None: ...
