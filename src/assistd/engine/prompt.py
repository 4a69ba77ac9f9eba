"""Fitting a conversation into the model's budget, and the request it becomes.

The budget is the backend's context window less a reserve for the answer, or what is left of the
turn's `max_prompt_tokens` when that is smaller. The instructions, the tools and the turn's own
items always go (when they alone are over `max_prompt_tokens`, the turn cannot go on:
`PromptTooLarge`); the history fills what is left, newest first, at most `last_messages` items.

Tokens are counted by a `TokenCounter`: today cl100k over the rendered chat messages
(providers/tokens.py). A backend's own tokenizer is another counter; tool outputs are items whose
text a budget may trim (their size today is the tools' own: `tool_output_budget`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Protocol

from assistd.engine.items import Conversation, HistoryItem, Item, Json, NamedTool, ToolCallItem, ToolChoice
from assistd.engine.render import chat_messages, chat_tool_choice, system_message
from assistd.providers import tokens
from assistd.providers.base import ChatRequest

COMPLETION_RESERVE = 1024


class PromptTooLarge(Exception):
    """The prompt does not fit in `max_prompt_tokens`."""


@dataclass(frozen=True, slots=True)
class Prompt:
    request: ChatRequest
    tokens: int


@dataclass(frozen=True, slots=True)
class Window:
    """What the model may read in the next call: the model, the tools it is shown, the token budgets."""

    upstream_model: str
    context_window: int
    prompt_tokens_used: int
    completion_tokens_used: int
    tools: list[Json]


class TokenCounter(Protocol):
    def instructions(self, text: str) -> int: ...

    def items(self, items: Sequence[Item]) -> int:
        """The tokens `items` take in the request (calls grouped as they are rendered)."""
        ...

    def tools(self, tools: list[Json]) -> int: ...


class ChatTokens:
    """cl100k over the chat-completions messages the items render to, with OpenAI's per-message overhead."""

    def instructions(self, text: str) -> int:
        return sum(tokens.count_message(m) for m in system_message(text))

    def items(self, items: Sequence[Item]) -> int:
        return sum(tokens.count_message(m) for m in chat_messages(items))

    def tools(self, tools: list[Json]) -> int:
        return tokens.count_tools(tools)


def tool_output_budget(context_window: int) -> int:
    """Tokens a tool's output may take (file_search's results): half the window, at most 16k, as
    OpenAI's large models got."""
    return min(16_000, context_window // 2)


def _tool_choice(choice: ToolChoice, turn: Sequence[Item]) -> ToolChoice:
    """A forced choice (`required`, a named tool) applies until the turn has called a tool (a refused
    call does not count); then the model answers freely, with the results in view (else it would call
    the tool forever)."""
    if any(isinstance(item, ToolCallItem) and not item.refused for item in turn) and (
        choice == "required" or isinstance(choice, NamedTool)
    ):
        return "auto"
    return choice


async def fit(conversation: Conversation, window: Window, counter: TokenCounter) -> Prompt:
    """The request for the next model call (raises PromptTooLarge)."""
    settings = conversation.settings
    completion_budget = None
    if settings.max_completion_tokens is not None:
        completion_budget = max(1, settings.max_completion_tokens - window.completion_tokens_used)
    reserve = min(completion_budget or COMPLETION_RESERVE, window.context_window // 4)
    budget = window.context_window - reserve
    prompt_limited = False
    if settings.max_prompt_tokens is not None:
        remaining = settings.max_prompt_tokens - window.prompt_tokens_used
        if remaining < budget:
            budget, prompt_limited = remaining, True

    turn = conversation.turn
    used = counter.tools(window.tools) + counter.instructions(conversation.instructions) + counter.items(turn)
    if used > budget and prompt_limited:
        raise PromptTooLarge()

    history: list[HistoryItem] = []
    keep_at_most = settings.last_messages
    async with aclosing(conversation.history()) as newest_first:
        async for item in newest_first:
            if keep_at_most is not None and len(history) >= keep_at_most:
                break
            cost = counter.items([item])
            # When not even the newest item fits, it is sent anyway and the backend decides.
            if used + cost > budget and (history or prompt_limited):
                break
            history.append(item)
            used += cost
    if prompt_limited and not history and not turn:
        raise PromptTooLarge()
    history.reverse()

    tools = window.tools
    request = ChatRequest(
        model=window.upstream_model,
        messages=[*system_message(conversation.instructions), *chat_messages([*history, *turn])],
        tools=tools,
        tool_choice=chat_tool_choice(_tool_choice(settings.tool_choice, turn)) if tools else None,
        parallel_tool_calls=settings.parallel_tool_calls if tools else None,
        response_format=settings.response_format,
        temperature=settings.temperature,
        top_p=settings.top_p,
        max_tokens=completion_budget,
    )
    return Prompt(request, used)
