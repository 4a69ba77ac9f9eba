"""What fitting typed conversation items costs (engine/prompt.py), against counting the same messages
already built as chat dicts (what adapters/prompt.py counted before the items): one call per model
call, on a thread of N messages that all fit.

    PYTHONPATH=src python bench/bench_prompt_fit.py --lengths 10,300,1000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncGenerator

from assistd.engine.items import AssistantText, Conversation, HistoryItem, TextPart, TurnSettings, UserMessage
from assistd.engine.prompt import Window, fit
from assistd.engine.render import chat_messages
from assistd.providers import tokens
from assistd.providers.counting import Tiktoken


def thread(length: int) -> list[HistoryItem]:
    said = "the quick brown fox jumps over the lazy dog " * 3
    return [
        UserMessage((TextPart(f"message {i}: {said}"),)) if i % 2 == 0 else AssistantText(f"reply {i} " * 10)
        for i in range(length)
    ]


async def measure(length: int, rounds: int) -> tuple[float, float]:
    items = thread(length)

    async def newest_first() -> AsyncGenerator[HistoryItem, None]:
        for item in reversed(items):
            yield item

    conversation = Conversation("Be terse.", newest_first, (), TurnSettings())
    window = Window("m", 1_000_000, 0, 0, [])
    await fit(conversation, window, Tiktoken())
    start = time.perf_counter()
    for _ in range(rounds):
        await fit(conversation, window, Tiktoken())
    fitted = (time.perf_counter() - start) / rounds * 1000
    messages = chat_messages(items)
    start = time.perf_counter()
    for _ in range(rounds):
        sum(tokens.count_message(m) for m in messages)
    counted = (time.perf_counter() - start) / rounds * 1000
    return fitted, counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="10,300,1000")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    print("| thread msgs | fit items → request, ms | count prebuilt chat dicts, ms | difference, ms |")
    print("|---:|---:|---:|---:|")
    for length in (int(n) for n in args.lengths.split(",")):
        fitted, counted = asyncio.run(measure(length, args.rounds))
        print(f"| {length} | {fitted:.2f} | {counted:.2f} | {fitted - counted:+.2f} |")


if __name__ == "__main__":
    main()
