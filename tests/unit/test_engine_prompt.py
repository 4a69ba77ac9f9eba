"""engine/prompt.py: typed conversation items fitted into the budget and rendered as the provider's
chat request (no database, no protocol: items in, a ChatRequest out)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import pytest

from assistd.engine.items import (
    AssistantText,
    Conversation,
    Excerpt,
    History,
    HistoryItem,
    ImagePart,
    NamedTool,
    StoredItem,
    TextPart,
    ToolCallItem,
    ToolOutputItem,
    TurnItem,
    TurnSettings,
    UserMessage,
    no_history,
)
from assistd.engine.prompt import Prompt, PromptTooLarge, Window, fit
from assistd.providers import tokens
from assistd.providers.base import Count
from assistd.providers.counting import Tiktoken

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


class Unit:
    """A counter where every message but the instructions costs 10 tokens and tools cost nothing:
    budgets read as message counts (fitting takes any counter: the route's backend's own)."""

    async def messages(self, messages: Sequence[dict[str, Any]]) -> list[int]:
        return [0 if m["role"] == "system" else 10 for m in messages]

    async def fixed(self, tools: list[dict[str, Any]]) -> int:
        return 0


def history_of(*items: HistoryItem) -> tuple[History, list[int]]:
    """A history, oldest first as written, read newest first; `read` notes how many items were read."""
    read = [0]

    async def newest_first() -> AsyncGenerator[HistoryItem, None]:
        for item in reversed(items):
            read[0] += 1
            yield item

    return newest_first, read


def user(text: str) -> UserMessage:
    return UserMessage((TextPart(text),))


def fitted(
    history: History = no_history,
    turn: tuple[TurnItem, ...] = (),
    settings: TurnSettings | None = None,
    *,
    window: int = 100_000,
    used: tuple[int, int] = (0, 0),
    tools: list[dict[str, Any]] | None = None,
    instructions: str = "Be brief.",
    counter: Any = None,
) -> Prompt:
    conversation = Conversation(instructions, history, turn, settings or TurnSettings())
    shown = Window("up-model", window, used[0], used[1], tools if tools is not None else [])
    return asyncio.run(fit(conversation, shown, counter or Tiktoken()))


def test_items_render_as_chat_messages_after_the_instructions() -> None:
    history, _ = history_of(
        UserMessage((TextPart("look"), ImagePart("data:image/png;base64,AA=="), ImagePart("https://x/y.png", "low"))),
        AssistantText("a cat"),
        user("and this?"),
    )
    prompt = fitted(history)
    assert prompt.request.model == "up-model"
    assert prompt.request.messages == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
            ],
        },
        {"role": "assistant", "content": "a cat"},
        {"role": "user", "content": "and this?"},
    ]
    # What the prompt costs is what the counter says of those messages.
    assert prompt.tokens == sum(tokens.count_message(m) for m in prompt.request.messages)


def test_a_text_only_message_is_one_string_and_no_instructions_no_system_message() -> None:
    history, _ = history_of(UserMessage((TextPart("a"), TextPart("b"))))
    assert fitted(history, instructions="").request.messages == [{"role": "user", "content": "a\nb"}]
    # Written with an image that cannot be shown now (deleted, too large): still parts, as before.
    history, _ = history_of(UserMessage((TextPart("a"),), with_images=True))
    assert fitted(history, instructions="").request.messages == [
        {"role": "user", "content": [{"type": "text", "text": "a"}]}
    ]


def test_a_turns_calls_are_one_assistant_message_followed_by_their_outputs() -> None:
    turn: tuple[TurnItem, ...] = (
        AssistantText("let me look"),
        ToolCallItem("call_1", "file_search", '{"queries": ["q"]}'),
        ToolCallItem("call_2", "get_weather", "{}"),
        ToolOutputItem("call_1", "results"),
        ToolOutputItem("call_2", "sunny"),
        ToolCallItem("call_3", "get_weather", '{"city": "Oslo"}'),
        ToolOutputItem("call_3", "rain"),
    )
    messages = fitted(no_history, turn, instructions="").request.messages
    assert messages == [
        {"role": "assistant", "content": "let me look"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "file_search", "arguments": '{"queries": ["q"]}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "results"},
        {"role": "tool", "tool_call_id": "call_2", "content": "sunny"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_3",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_3", "content": "rain"},
    ]


def test_the_history_is_cut_oldest_first_and_read_no_further_than_needed() -> None:
    history, read = history_of(*(user(f"m{i}") for i in range(50)))
    # window 100: a quarter is reserved for the answer, so 75 tokens = 7 items of 10.
    prompt = fitted(history, window=100, counter=Unit())
    assert [m["content"] for m in prompt.request.messages[1:]] == [f"m{i}" for i in range(43, 50)]
    assert prompt.tokens == 70
    assert read[0] == 8  # the first item that did not fit ends the reading


def test_the_turns_items_are_never_cut_the_history_gives_way() -> None:
    history, _ = history_of(user("old"), user("older"), user("newest"))
    turn: tuple[TurnItem, ...] = tuple(
        item for i in range(3) for item in (ToolCallItem(f"c{i}", "f", "{}"), ToolOutputItem(f"c{i}", "out"))
    )
    # 75 tokens: 6 turn items (60) leave room for one history item.
    prompt = fitted(history, turn, window=100, counter=Unit())
    roles = [m["role"] for m in prompt.request.messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool", "assistant", "tool"]
    assert prompt.request.messages[1]["content"] == "newest"
    # With no room left under max_prompt_tokens, the history goes and the whole turn stays: a call
    # never leaves without its output.
    prompt = fitted(history, turn, settings=TurnSettings(max_prompt_tokens=65), counter=Unit())
    assert [m["role"] for m in prompt.request.messages] == ["system", *roles[2:]]
    assert prompt.tokens == 60


def test_the_newest_message_goes_when_it_fits_the_window_less_room_for_the_answer() -> None:
    history, _ = history_of(user("older"), user("x" * 10))
    prompt = fitted(history, window=12, counter=Unit())  # over the budget (9), within the window (12)
    assert [m["content"] for m in prompt.request.messages[1:]] == ["x" * 10]
    # Over the whole window it cannot go: the run fails for context instead of the backend.
    with pytest.raises(PromptTooLarge) as raised:
        fitted(history, window=8, counter=Unit())
    assert raised.value.limit == "context_window" and (raised.value.needed, raised.value.budget) == (10, 6)


def test_last_messages_keeps_at_most_that_many_history_items() -> None:
    history, read = history_of(*(user(f"m{i}") for i in range(10)))
    prompt = fitted(history, settings=TurnSettings(last_messages=3))
    assert [m["content"] for m in prompt.request.messages[1:]] == ["m7", "m8", "m9"]
    assert read[0] == 4


def test_max_prompt_tokens_left_over_the_turn_is_the_budget() -> None:
    history, _ = history_of(*(user(f"m{i}") for i in range(10)))
    # 95 of the turn's 120 prompt tokens were spent by earlier calls: 25 left, 2 items.
    prompt = fitted(history, settings=TurnSettings(max_prompt_tokens=120), used=(95, 0), counter=Unit())
    assert [m["content"] for m in prompt.request.messages[1:]] == ["m8", "m9"]


def test_max_prompt_tokens_spent_is_prompt_too_large() -> None:
    history, _ = history_of(user("hi"))
    with pytest.raises(PromptTooLarge):  # not even the newest message fits what is left
        fitted(history, settings=TurnSettings(max_prompt_tokens=100), used=(95, 0), counter=Unit())
    turn: tuple[TurnItem, ...] = (ToolCallItem("c", "f", "{}"), ToolOutputItem("c", "out"))
    with pytest.raises(PromptTooLarge):  # the turn's own items alone are over it
        fitted(history, turn, settings=TurnSettings(max_prompt_tokens=15), counter=Unit())


def test_max_completion_tokens_left_is_the_answers_limit_and_its_reserve() -> None:
    history, _ = history_of(*(user(f"m{i}") for i in range(50)))
    prompt = fitted(
        history, settings=TurnSettings(max_completion_tokens=300), used=(0, 280), window=100, counter=Unit()
    )
    assert prompt.request.max_tokens == 20
    # The reserve is the 20 tokens left (under a quarter of the window): 80 tokens, 8 items.
    assert len(prompt.request.messages) == 1 + 8
    assert fitted(settings=TurnSettings(max_completion_tokens=300), used=(0, 400)).request.max_tokens == 1


def test_settings_render_as_the_requests_options() -> None:
    settings = TurnSettings(
        tool_choice=NamedTool("get_weather"),
        parallel_tool_calls=False,
        response_format={"type": "json_object"},
        temperature=0.2,
        top_p=0.9,
    )
    request = fitted(settings=settings, tools=[TOOL]).request
    assert request.tools == [TOOL]
    assert request.tool_choice == {"type": "function", "function": {"name": "get_weather"}}
    assert (request.parallel_tool_calls, request.response_format) == (False, {"type": "json_object"})
    assert (request.temperature, request.top_p, request.max_tokens) == (0.2, 0.9, None)
    # Without tools there is no tool choice to send.
    request = fitted(settings=settings).request
    assert (request.tool_choice, request.parallel_tool_calls) == (None, None)


@pytest.mark.parametrize("choice", ["required", NamedTool("get_weather")])
def test_a_forced_choice_turns_auto_once_the_turn_has_called_a_tool(choice: Any) -> None:
    turn: tuple[TurnItem, ...] = (ToolCallItem("c", "get_weather", "{}"), ToolOutputItem("c", "sunny"))
    assert fitted(settings=TurnSettings(tool_choice=choice), tools=[TOOL]).request.tool_choice != "auto"
    assert fitted(turn=turn, settings=TurnSettings(tool_choice=choice), tools=[TOOL]).request.tool_choice == "auto"
    # A refused call (an unknown tool, unusable arguments) is not a call either: the model must call again.
    refused: tuple[TurnItem, ...] = (ToolCallItem("c", "get_stock", "{}", refused=True), ToolOutputItem("c", "Error"))
    assert fitted(turn=refused, settings=TurnSettings(tool_choice=choice), tools=[TOOL]).request.tool_choice != "auto"
    # An answer in the turn is not a call: the choice still holds.
    text_only: tuple[TurnItem, ...] = (AssistantText("hm"),)
    assert fitted(turn=text_only, settings=TurnSettings(tool_choice="required"), tools=[TOOL]).request.tool_choice == (
        "required"
    )


class Chars:
    """A counter of one token per character of each message's content (the instructions and tools
    free): trimming decisions can be read off the texts."""

    async def messages(self, messages: Sequence[dict[str, Any]]) -> list[int]:
        return [0 if m["role"] == "system" else len(str(m.get("content") or "")) for m in messages]

    async def fixed(self, tools: list[dict[str, Any]]) -> int:
        return 0


def searched(call: str, *lengths: int) -> tuple[TurnItem, TurnItem]:
    """A file_search call and its results: one excerpt per length, best first."""
    excerpts = tuple(Excerpt(f"【0:{i}†{call}.txt】", f"{call}{i} " + "w" * (n - 4)) for i, n in enumerate(lengths))
    return ToolCallItem(call, "file_search", "{}"), ToolOutputItem.of(call, excerpts)


def outputs_of(prompt: Prompt) -> list[str]:
    return [m["content"] for m in prompt.request.messages if m["role"] == "tool"]


def test_tool_outputs_over_the_budget_are_shortened_longest_first_and_all_results_kept() -> None:
    (call_a, out_a), (call_b, out_b) = searched("a", 2000, 300), searched("b", 1500)
    turn: tuple[TurnItem, ...] = (call_a, call_b, out_a, out_b)
    history, _ = history_of(user("q" * 100))
    # 4000 window: 3000 budget; the question (100) stays, the outputs (about 3850) must lose ~1000.
    prompt = fitted(history, turn, window=4000, counter=Chars())
    assert prompt.tokens <= 3000 and prompt.request.messages[1]["content"] == "q" * 100
    first, second = outputs_of(prompt)
    assert first.count("【") == 2 and second.count("【") == 1, "no result is left out while shortening will do"
    a0, a1 = first.split("\n\n")
    assert a0.endswith(" …") and second.endswith(" …"), "the longest results are cut"
    assert a1 == "【0:1†a.txt】\na1 " + "w" * 296, "a result shorter than the cut stays whole"
    assert abs(len(a0) - len(second)) < 40, "cut to about the same length"


def test_past_the_floor_fewer_results_are_kept_lowest_ranked_first_one_per_call_at_least() -> None:
    (call_a, out_a), (call_b, out_b) = searched("a", 900, 800, 700, 600), searched("b", 900)
    turn: tuple[TurnItem, ...] = (call_a, call_b, out_a, out_b)
    # Budget 900: every result at the floor (5 x ~215) is still over: a's lowest ranked go.
    prompt = fitted(no_history, turn, window=1200, counter=Chars())
    first, second = outputs_of(prompt)
    kept = [part.split("\n")[0] for part in first.split("\n\n")]
    assert kept == ["【0:0†a.txt】", "【0:1†a.txt】", "【0:2†a.txt】"][: len(kept)] and 1 <= len(kept) < 4
    assert second.startswith("【0:0†b.txt】\nb0 ") and second.endswith(" …")
    assert prompt.tokens <= 900


def test_a_turn_that_cannot_fit_even_at_its_smallest_is_prompt_too_large() -> None:
    turn: tuple[TurnItem, ...] = tuple(item for c in "abcd" for item in searched(c, 900, 900))
    with pytest.raises(PromptTooLarge) as raised:  # four results at the floor: ~860 tokens, 600 available
        fitted(no_history, turn, window=800, counter=Chars())
    assert raised.value.limit == "context_window" and raised.value.needed > raised.value.budget == 600
    # Instructions alone over the window: nothing to trim, the same.
    with pytest.raises(PromptTooLarge):
        fitted(history_of(user("hi"))[0], instructions="word " * 2000, window=1000)


def test_a_plain_tool_output_is_shortened_as_one_text() -> None:
    turn: tuple[TurnItem, ...] = (ToolCallItem("c", "f", "{}"), ToolOutputItem("c", "y" * 5000))
    (output,) = outputs_of(fitted(no_history, turn, window=2000, counter=Chars()))
    assert output.startswith("yyy") and output.endswith(" …") and len(output) <= 1500


def test_under_max_prompt_tokens_results_make_room_for_the_question_or_stay_whole_without_it() -> None:
    turn = searched("a", 1000)
    settings = TurnSettings(max_prompt_tokens=1200)
    # The question (600) fits once the results are shortened: they are.
    prompt = fitted(history_of(user("q" * 600))[0], turn, settings, counter=Chars())
    assert prompt.request.messages[1]["content"] == "q" * 600 and outputs_of(prompt)[0].endswith(" …")
    # A question that cannot fit beside even the shortest results is left out, and they stay whole.
    prompt = fitted(history_of(user("q" * 1100))[0], turn, settings, counter=Chars())
    assert [m["role"] for m in prompt.request.messages] == ["system", "assistant", "tool"]
    assert not outputs_of(prompt)[0].endswith(" …")


class Keyed:
    """Every message but the instructions costs 10 tokens, counted by the counter `key`; notes how many
    messages it counted."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.counted = 0

    async def messages(self, messages: Sequence[dict[str, Any]]) -> list[int]:
        return [c.tokens for c in await self.counts(messages)]

    async def counts(self, messages: Sequence[dict[str, Any]]) -> list[Count]:
        self.counted += sum(m["role"] != "system" for m in messages)
        return [Count(0 if m["role"] == "system" else 10, True) for m in messages]

    async def fixed(self, tools: list[dict[str, Any]]) -> int:
        return 0


def stored_history(
    counts: list[tuple[int | None, str | None]],
) -> tuple[History, list[str], list[tuple[int, int, str]]]:
    """Stored items m0.. (oldest first) with the counts given; what was built, and what was kept."""
    built: list[str] = []
    kept: list[tuple[int, int, str]] = []

    def stored(i: int, tokens: int | None, by: str | None) -> StoredItem:
        async def build() -> HistoryItem:
            built.append(f"m{i}")
            return user(f"m{i}")

        return StoredItem(build, tokens, by, lambda n, key: kept.append((i, n, key)))

    async def newest_first() -> AsyncGenerator[HistoryItem | StoredItem, None]:
        for i in reversed(range(len(counts))):
            yield stored(i, *counts[i])

    return newest_first, built, kept


def test_stored_counts_by_the_same_counter_are_used_and_others_counted_and_kept() -> None:
    # m0, m1: counted before by another counter (as 3 tokens: not used); m2, m3: by this one, as 10
    # (a kept count is used as it is: 20 for m3 here); m4: never counted.
    history, built, kept = stored_history([(3, "other"), (3, "other"), (10, "this"), (20, "this"), (None, None)])
    counter = Keyed("this")
    prompt = fitted(history, window=73, instructions="", counter=counter)  # 73 less 18 for the answer: 55
    assert [m["content"] for m in prompt.request.messages] == ["m1", "m2", "m3", "m4"]
    assert prompt.tokens == 50
    # m4, m1 and m0 counted (m0 to find it does not fit); m2 and m3 read from their kept counts.
    assert counter.counted == 3
    assert kept == [(4, 10, "this"), (1, 10, "this"), (0, 10, "this")]
    assert sorted(built) == ["m0", "m1", "m2", "m3", "m4"]


def test_a_stored_count_over_the_budget_stops_the_history_without_building_the_item() -> None:
    history, built, _ = stored_history([(10, "this"), (1000, "this"), (10, "this")])
    prompt = fitted(history, window=73, instructions="", counter=Keyed("this"))
    assert [m["content"] for m in prompt.request.messages] == ["m2"]
    assert built == ["m2"], "the message that does not fit is not built, nor any older one"
