"""Typed conversation items: what the model reads, in no protocol's shape.

An adapter turns its protocol's records (the Assistants API's thread, messages and run steps; the
Responses API's input items, in Step 12) into a `Conversation`; engine/prompt.py fits it into the
backend's budget and engine/render.py renders it as the provider's request.

A conversation keeps two kinds of items apart: the `history` (earlier turns, which may be cut,
oldest first, to fit) and the turn's own items (the model's tool calls and their outputs so far
in this run, never cut: a call and its output always go together).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from assistd.tools.base import Excerpt, excerpts_text

Json = dict[str, Any]  # a JSON object: a tool's schema, a response format, a rendered message


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image the model looks at: an http(s) URL or a data URL; `detail` as the client gave it."""

    url: str
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class UserMessage:
    """`with_images`: written with images, so sent as parts even when none of them can be shown now
    (a deleted or too large image file); a text-only message is sent as one string."""

    parts: tuple[TextPart | ImagePart, ...]
    with_images: bool = False


@dataclass(frozen=True, slots=True)
class AssistantText:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallItem:
    """A call the model made: the function name it used and the arguments it sent. `refused`: not run
    (an unknown tool, unusable arguments); its output is the error the model reads."""

    call_id: str
    name: str
    arguments: str
    refused: bool = False


@dataclass(frozen=True, slots=True)
class ToolOutputItem:
    """The text a call's result gave the model (a budget may trim it; it stays with its call).
    `excerpts`, when the output is made of them (best first), are what `text` shows: a budget shortens
    them, then keeps fewer (engine/prompt.py); an output without them is shortened as one text."""

    call_id: str
    text: str
    excerpts: tuple[Excerpt, ...] = ()

    @classmethod
    def of(cls, call_id: str, excerpts: tuple[Excerpt, ...]) -> ToolOutputItem:
        return cls(call_id, excerpts_text(excerpts), excerpts)


HistoryItem = UserMessage | AssistantText
TurnItem = AssistantText | ToolCallItem | ToolOutputItem
Item = UserMessage | AssistantText | ToolCallItem | ToolOutputItem


@dataclass(frozen=True, slots=True)
class NamedTool:
    """A tool choice that forces one function."""

    name: str


ToolChoice = Literal["none", "auto", "required"] | NamedTool | None


@dataclass(frozen=True, slots=True)
class TurnSettings:
    """How the model is asked: sampling, output format, tool choice, and the limits that decide what fits."""

    tool_choice: ToolChoice = None
    parallel_tool_calls: bool | None = None
    response_format: Json | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_prompt_tokens: int | None = None  # over the whole turn (all its model calls)
    max_completion_tokens: int | None = None  # over the whole turn
    last_messages: int | None = None  # keep at most this many history items
    cut_history: bool = True  # False: history that does not fit fails the turn (PromptTooLarge) instead of being cut


class StoredItem:
    """A history item read from storage with the count kept with it (adapters/prompt.py): `tokens` as
    the counter whose key is `counted_by` counted it (None: not counted yet). The item itself is built
    only when a prompt counts or shows it; a new lasting count is handed to `keep` (None: not kept)."""

    __slots__ = ("_build", "_item", "counted_by", "keep", "tokens")

    def __init__(
        self,
        build: Callable[[], Awaitable[HistoryItem]],
        tokens: int | None,
        counted_by: str | None,
        keep: Callable[[int, str], None] | None,
    ) -> None:
        self._build = build
        self._item: HistoryItem | None = None
        self.tokens = tokens
        self.counted_by = counted_by
        self.keep = keep

    async def item(self) -> HistoryItem:
        if self._item is None:
            self._item = await self._build()
        return self._item


# The history, newest first, read lazily: fitting stops reading once the budget is spent. Items from
# storage come as `StoredItem`s, with their kept counts.
History = Callable[[], AsyncGenerator[HistoryItem | StoredItem, None]]


async def no_history() -> AsyncGenerator[HistoryItem | StoredItem, None]:
    """A conversation that starts with its turn (no earlier items)."""
    return
    yield


@dataclass(frozen=True, slots=True)
class Conversation:
    instructions: str
    history: History
    turn: tuple[TurnItem, ...]
    settings: TurnSettings
