"""Fitting a conversation into the model's budget, and the request it becomes.

The budget is the backend's context window less a reserve for the answer, or what is left of the
turn's `max_prompt_tokens` when that is smaller. Tokens are counted by the route's `TokenCounter`
(providers/base.py): the backend's own tokenizer where it has one (the bundled model's llama.cpp, an
upstream's /tokenize), else cl100k with a safety margin (providers/counting.py).

What goes, in order:
1. The instructions, the tools and the turn's own items (the run's tool calls and their outputs so
   far) always go. When they are over the budget (with room for the newest history item, the
   question), the tool outputs are trimmed: first their excerpts (file_search's results; a plain
   output is one) are shortened, the longest first, down to `EXCERPT_FLOOR` characters; then fewer
   are kept, the lowest ranked first, from the output that has the most, down to one per output.
   Counts for the trimmed items are estimated from each output's tokens per character, then
   counted again (a few rounds at most).
2. The newest history item (the question). When it does not fit what is left: under
   `max_prompt_tokens` it is left out (and the turn cannot go on when nothing else is there); else
   it goes if it fits the window (the answer gets what is left).
3. The rest of the history, newest first, while it fits, at most `last_messages` items.
A history item read from storage comes with the count its counter made before (keyed by the counter,
providers/base.py `TokenCounter.key`; adapters/prompt.py keeps new ones with the messages): it is
counted only the first time, and built only when it goes in, so a long thread costs what its window does.
When even the smallest form of 1 is over the budget, or 2 is over the whole window, the turn cannot
go on: `PromptTooLarge` (engine/loop.py: `max_prompt_tokens` ends the run incomplete; the window
fails it with a `last_error`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Literal

from assistd.engine.items import (
    Conversation,
    HistoryItem,
    Item,
    Json,
    NamedTool,
    StoredItem,
    ToolCallItem,
    ToolChoice,
    ToolOutputItem,
    TurnItem,
)
from assistd.engine.render import chat_messages, chat_tool_choice, system_message
from assistd.providers.base import ChatRequest, TokenCounter
from assistd.tools.base import Excerpt

COMPLETION_RESERVE = 1024
EXCERPT_FLOOR = 200  # characters a tool output's excerpt keeps at least, however tight the budget
CUT = " …"  # ends an excerpt that was shortened
TRIM_ROUNDS = 6

Limit = Literal["max_prompt_tokens", "context_window"]


class PromptTooLarge(Exception):
    """Not even the smallest prompt fits: `needed` tokens, `budget` available under `limit`."""

    def __init__(self, limit: Limit, needed: int, budget: int, window: int) -> None:
        self.limit = limit
        self.needed = needed
        self.budget = budget
        self.window = window
        super().__init__(self.describe())

    def describe(self) -> str:
        if self.limit == "max_prompt_tokens":
            return f"The prompt needs {self.needed} tokens; {self.budget} are left under max_prompt_tokens."
        return (
            f"The prompt does not fit the model's context window ({self.window} tokens): the instructions, "
            f"the tools, the question and this run's tool outputs, trimmed as far as they go, take "
            f"{self.needed} tokens, and {self.budget} are available with room kept for the answer."
        )


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


async def cost(counter: TokenCounter, items: Sequence[Item]) -> int:
    """The tokens `items` take in the request (calls grouped as they are rendered)."""
    return sum(await counter.messages(chat_messages(items)))


async def _history_cost(entry: HistoryItem | StoredItem, counter: TokenCounter) -> int:
    """What a history item takes: the count kept with it when this counter made it, else counted now
    (and a lasting count handed to be kept)."""
    if not isinstance(entry, StoredItem):
        return await cost(counter, [entry])
    key = counter.key
    if entry.tokens is not None and entry.counted_by == key:
        return entry.tokens
    counts = await counter.counts(chat_messages([await entry.item()]))
    tokens = sum(c.tokens for c in counts)
    if entry.keep is not None and all(c.lasting for c in counts):
        entry.keep(tokens, key)
    return tokens


async def _item(entry: HistoryItem | StoredItem) -> HistoryItem:
    return await entry.item() if isinstance(entry, StoredItem) else entry


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
    limit: Limit = "context_window"
    if settings.max_prompt_tokens is not None:
        remaining = settings.max_prompt_tokens - window.prompt_tokens_used
        if remaining < budget:
            budget, limit = remaining, "max_prompt_tokens"

    base = await counter.fixed(window.tools) + sum(await counter.messages(system_message(conversation.instructions)))
    history: list[HistoryItem] = []
    keep_at_most = settings.last_messages
    async with aclosing(conversation.history()) as newest_first:
        newest = None if keep_at_most == 0 else await _next(newest_first)
        newest_cost = 0 if newest is None else await _history_cost(newest, counter)
        turn, turn_cost = await _fit_turn(conversation.turn, budget - base - newest_cost, counter)
        used = base + turn_cost
        if newest is not None and used + newest_cost > budget:
            if limit == "context_window" and used + newest_cost <= window.context_window:
                pass  # the question goes, over the answer's reserve: the answer gets what is left
            elif limit == "max_prompt_tokens" and conversation.turn:
                newest = None  # the turn goes without the history, trimmed only as far as it must
                turn, turn_cost = await _fit_turn(conversation.turn, budget - base, counter)
                used = base + turn_cost
            else:
                raise PromptTooLarge(limit, used + newest_cost, budget, window.context_window)
        if used > budget:
            raise PromptTooLarge(limit, used, budget, window.context_window)
        if newest is not None:
            history.append(await _item(newest))
            used += newest_cost
        async for entry in newest_first:
            if not history or (keep_at_most is not None and len(history) >= keep_at_most):
                break
            item_cost = await _history_cost(entry, counter)
            if used + item_cost > budget:
                if not settings.cut_history:  # a response with `truncation: disabled`
                    raise PromptTooLarge("context_window", used + item_cost, budget, window.context_window)
                break
            history.append(await _item(entry))
            used += item_cost
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


async def _next(items: AsyncIterator[HistoryItem | StoredItem]) -> HistoryItem | StoredItem | None:
    async for item in items:
        return item
    return None


# --- trimming the turn's tool outputs ---------------------------------------------------------------

Pieces = dict[int, tuple[Excerpt, ...]]  # turn position of a tool output → its excerpts, best first


async def _fit_turn(turn: tuple[TurnItem, ...], target: int, counter: TokenCounter) -> tuple[tuple[TurnItem, ...], int]:
    """The turn within `target` tokens if trimming its tool outputs can get it there, else at its
    smallest; and what it costs."""
    messages = chat_messages(turn)
    costs = await counter.messages(messages)
    total = sum(costs)
    outputs = [i for i, item in enumerate(turn) if isinstance(item, ToolOutputItem)]
    if total <= target or not outputs:
        return turn, total
    pieces: Pieces = {i: _pieces(turn[i]) for i in outputs}
    # Tokens per character of each output (its tool message in the rendered request), to estimate cuts.
    tool_costs = [c for message, c in zip(messages, costs, strict=True) if message["role"] == "tool"]
    density = {i: c / max(1, len(_text(turn[i]))) for i, c in zip(outputs, tool_costs, strict=True)}
    wanted = float(total - target)
    for _ in range(TRIM_ROUNDS):
        cap, keep = _plan(pieces, density, wanted)
        trimmed = _trimmed(turn, pieces, cap, keep)
        total = await cost(counter, trimmed)
        if total <= target or _smallest(pieces, cap, keep):
            return trimmed, total
        wanted += (total - target) * 1.25 + 1  # the estimate fell short: ask for more
    trimmed = _trimmed(turn, pieces, EXCERPT_FLOOR, dict.fromkeys(pieces, 1))
    return trimmed, await cost(counter, trimmed)


def _text(item: TurnItem) -> str:
    return item.text if isinstance(item, ToolOutputItem) else ""


def _pieces(item: TurnItem) -> tuple[Excerpt, ...]:
    assert isinstance(item, ToolOutputItem)
    return item.excerpts or (Excerpt("", item.text),)


def _plan(pieces: Pieces, density: dict[int, float], wanted: float) -> tuple[int, dict[int, int]]:
    """How far to trim to save about `wanted` tokens: the longest an excerpt may be, and how many of
    each output's excerpts to keep."""
    keep = {i: len(excerpts) for i, excerpts in pieces.items()}

    def saved(cap: int) -> float:
        return sum(density[i] * max(0, len(e.text) - cap) for i, excerpts in pieces.items() for e in excerpts)

    if saved(EXCERPT_FLOOR) >= wanted:
        low, high = EXCERPT_FLOOR, max(len(e.text) for excerpts in pieces.values() for e in excerpts)
        while low < high:  # the longest cap that saves enough
            middle = (low + high + 1) // 2
            low, high = (middle, high) if saved(middle) >= wanted else (low, middle - 1)
        return low, keep
    rest = wanted - saved(EXCERPT_FLOOR)
    while rest > 0:
        fuller = [i for i in keep if keep[i] > 1]
        if not fuller:
            break
        i = max(fuller, key=lambda i: (keep[i], i))  # the output with the most kept; the later one on a tie
        dropped = pieces[i][keep[i] - 1]
        rest -= density[i] * (min(len(dropped.text), EXCERPT_FLOOR) + len(dropped.heading) + 2)
        keep[i] -= 1
    return EXCERPT_FLOOR, keep


def _smallest(pieces: Pieces, cap: int, keep: dict[int, int]) -> bool:
    return cap == EXCERPT_FLOOR and all(n == 1 for n in keep.values())


def _shorten(excerpt: Excerpt, cap: int) -> Excerpt:
    if len(excerpt.text) <= cap:
        return excerpt
    cut = excerpt.text[:cap]
    space = cut.rfind(" ", int(cap * 0.8))  # at a word's end when one is near
    return Excerpt(excerpt.heading, (cut[:space] if space > 0 else cut).rstrip() + CUT)


def _trimmed(turn: tuple[TurnItem, ...], pieces: Pieces, cap: int, keep: dict[int, int]) -> tuple[TurnItem, ...]:
    out = list(turn)
    for i, excerpts in pieces.items():
        item = turn[i]
        assert isinstance(item, ToolOutputItem)
        kept = tuple(_shorten(e, cap) for e in excerpts[: keep[i]])
        out[i] = ToolOutputItem.of(item.call_id, kept) if item.excerpts else ToolOutputItem(item.call_id, kept[0].text)
    return tuple(out)
