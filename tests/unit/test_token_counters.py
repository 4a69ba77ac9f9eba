"""providers/counting.py: tiktoken with a margin, and a backend's /tokenize (the fake upstream's, over
HTTP): counts, the cache that keeps a prompt from being sent again, the fallback when it fails."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from assistd.providers import tokens
from assistd.providers.counting import MAX_REQUESTS_PER_COUNT, TEMPLATE_OVERHEAD, Counters, Counting, Tiktoken
from assistd.testing.fake_upstream import FakeUpstream, text_tokens

MESSAGES = [
    {"role": "system", "content": "You answer questions about books."},
    {"role": "user", "content": "Who hunted the white whale?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    },
    {"role": "tool", "tool_call_id": "c", "content": "Captain Ahab of the Pequod. " * 20},
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


def test_tiktoken_with_a_margin_counts_cl100k_times_one_plus_the_margin() -> None:
    plain = asyncio.run(Tiktoken().messages(MESSAGES))
    assert plain == [tokens.count_message(m) for m in MESSAGES]
    assert asyncio.run(Tiktoken(0.5).messages(MESSAGES)) == [-(-n * 3 // 2) for n in plain]


def test_the_tokenize_endpoint_counts_each_text_once_then_from_its_cache(fake: FakeUpstream) -> None:
    async def scenario() -> tuple[list[int], list[int], int, int]:
        counters = Counters(Counting("tokenize"), fake.base_url)
        counter = counters.counter("m-cache")
        first = await counter.messages(MESSAGES)
        asked = fake.state.tokenized
        again = await counter.messages(MESSAGES)  # the next model call of the run: the same texts
        asked_again = fake.state.tokenized - asked
        await counters.close()
        return first, again, asked, asked_again

    before = fake.state.tokenized
    first, again, asked, asked_again = asyncio.run(scenario())
    assert first == again
    assert first[1] == TEMPLATE_OVERHEAD + text_tokens("Who hunted the white whale?")
    assert first[3] == TEMPLATE_OVERHEAD + text_tokens("Captain Ahab of the Pequod. " * 20)
    assert asked - before == 4 and asked_again == 0, "one request per distinct text, none for a cached one"


def test_a_failing_endpoint_falls_back_to_tiktoken_with_the_margin_and_is_left_alone(fake: FakeUpstream) -> None:
    async def scenario() -> tuple[list[int], int]:
        counters = Counters(Counting("tokenize", margin=0.5), fake.base_url)
        counter = counters.counter("m-down")
        fake.state.tokenize_status = 503
        try:
            counted = await counter.messages(MESSAGES)
            asked = fake.state.tokenized
            await counter.messages([{"role": "user", "content": "another text"}])
            return counted, fake.state.tokenized - asked
        finally:
            fake.state.tokenize_status = 200
            await counters.close()

    counted, asked_after = asyncio.run(scenario())
    margin = Tiktoken(0.5)
    assert counted[1] == TEMPLATE_OVERHEAD + margin.scale(tokens.count_text("Who hunted the white whale?"))
    assert asked_after == 0, "after a failure the endpoint is not asked again for a while"


def test_one_count_sends_a_bounded_number_of_requests(fake: FakeUpstream) -> None:
    many = [{"role": "user", "content": f"message number {i}"} for i in range(MAX_REQUESTS_PER_COUNT + 30)]

    async def scenario() -> list[int]:
        counters = Counters(Counting("tokenize", margin=0.0), fake.base_url)
        try:
            return await counters.counter("m-many").messages(many)
        finally:
            await counters.close()

    before = fake.state.tokenized
    counted = asyncio.run(scenario())
    assert fake.state.tokenized - before == MAX_REQUESTS_PER_COUNT
    assert len(counted) == len(many) and all(n > TEMPLATE_OVERHEAD for n in counted)


def test_counts_by_the_endpoint_last_and_its_fallback_estimates_do_not(fake: FakeUpstream) -> None:
    """A message's count is kept with it only when the counter would make it again: an estimate made
    while the endpoint is down is not (stores/messages.py keeps lasting counts only)."""

    async def scenario() -> tuple[list[bool], list[bool]]:
        counters = Counters(Counting("tokenize", margin=0.5), fake.base_url)
        try:
            counter = counters.counter("m-lasting")
            counted = [c.lasting for c in await counter.counts(MESSAGES[:2])]
            fake.state.tokenize_status = 503
            try:
                estimated = [c.lasting for c in await counter.counts([{"role": "user", "content": "a new text"}])]
            finally:
                fake.state.tokenize_status = 200
            return counted, estimated
        finally:
            await counters.close()

    counted, estimated = asyncio.run(scenario())
    assert counted == [True, True]
    assert estimated == [False]


def test_each_counter_has_a_key_of_its_own() -> None:
    """Counts kept under one key are never read by a counter that counts differently."""
    keys = {
        Tiktoken().key,
        Tiktoken(0.2).key,
        Counters(Counting("tokenize"), "http://a/v1").counter("m1").key,
        Counters(Counting("tokenize"), "http://a/v1").counter("m2").key,
        Counters(Counting("tokenize"), "http://b/v1").counter("m1").key,
    }
    assert len(keys) == 5
    assert Tiktoken(0.2).key == Tiktoken(0.2).key
    assert all(len(key) <= 64 for key in keys)
