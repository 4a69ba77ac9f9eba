"""From an Assistants thread and run to the engine's conversation items: instructions, the thread's
history (newest first, read a page at a time as the engine fits it), and the run's own tool calls
replayed by their tools. Fitting them into the budget and rendering the request is the engine's
(engine/prompt.py).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any

from assistd.db.database import Connection, Database
from assistd.engine.items import (
    AssistantText,
    Conversation,
    HistoryItem,
    ImagePart,
    NamedTool,
    TextPart,
    ToolCallItem,
    ToolChoice,
    ToolOutputItem,
    TurnItem,
    TurnSettings,
    UserMessage,
)
from assistd.stores import messages as message_store
from assistd.stores.messages import MessageRecord
from assistd.stores.runs import RunRecord, StepRecord
from assistd.tools import Toolbox, code_interpreter, file_search
from assistd.tools.base import RefusedCall, calls_from_details, refused_in

HISTORY_PAGE = 200

ImageLoader = Callable[[str], Awaitable[str | None]]


def tool_choice(choice: Any) -> ToolChoice:
    """`{"type": "file_search"}` and `{"type": "code_interpreter"}` name our functions."""
    if isinstance(choice, dict):
        if choice.get("type") in (file_search.NAME, code_interpreter.NAME):
            return NamedTool(str(choice["type"]))
        return NamedTool(str(choice["function"]["name"]))
    return choice if choice in ("none", "auto", "required") else None


def turn_settings(run: RunRecord) -> TurnSettings:
    strategy = run.truncation_strategy or {"type": "auto"}
    return TurnSettings(
        tool_choice=tool_choice(run.tool_choice),
        parallel_tool_calls=run.parallel_tool_calls,
        response_format=run.response_format if isinstance(run.response_format, dict) else None,
        temperature=run.temperature,
        top_p=run.top_p,
        max_prompt_tokens=run.max_prompt_tokens,
        max_completion_tokens=run.max_completion_tokens,
        last_messages=strategy.get("last_messages") if strategy.get("type") == "last_messages" else None,
    )


async def _user_message(content: list[dict[str, Any]], load_image: ImageLoader) -> UserMessage:
    parts: list[TextPart | ImagePart] = []
    for part in content:
        if part["type"] == "text":
            parts.append(TextPart(part["text"]["value"]))
        elif part["type"] == "image_url":
            image = part["image_url"]
            parts.append(ImagePart(image["url"], image.get("detail")))
        elif part["type"] == "image_file":
            url = await load_image(part["image_file"]["file_id"])
            if url is not None:
                parts.append(ImagePart(url))
    return UserMessage(tuple(parts), with_images=any(part["type"] != "text" for part in content))


async def _history_item(row: MessageRecord, load_image: ImageLoader) -> HistoryItem:
    if row.role == "assistant":
        return AssistantText("\n".join(p["text"]["value"] for p in row.content if p["type"] == "text"))
    return await _user_message(row.content, load_image)


def history(db: Database, run: RunRecord, load_image: ImageLoader) -> Callable[[], AsyncGenerator[HistoryItem, None]]:
    """The thread's messages before the run, newest first, a page at a time."""

    async def newest_first() -> AsyncGenerator[HistoryItem, None]:
        cursor: str | None = None
        while True:
            async with db.read() as conn:
                rows = await message_store.history_page(conn, run.thread_id, run.id, cursor, HISTORY_PAGE)
            for row in rows:
                yield await _history_item(row, load_image)
            if len(rows) < HISTORY_PAGE:
                return
            cursor = rows[-1].id

    return newest_first


async def turn_items(
    conn: Connection, steps: Sequence[StepRecord], toolbox: Toolbox, output_tokens: int
) -> tuple[TurnItem, ...]:
    """The run's steps so far (`steps`, in order): its answers, and its tool calls replayed by their tools
    (the arguments the model sent, the result text it read). Calls the engine refused come before the step
    that keeps them, each with its error as its result."""
    message_ids = [s.step_details["message_creation"]["message_id"] for s in steps if s.type == "message_creation"]
    texts = await message_store.run_message_texts(conn, message_ids)
    items: list[TurnItem] = []
    numbers: dict[str, int] = {}  # per tool: how many of its calls the run made (file_search's citation markers)
    for step in steps:
        items += refused_items(refused_in(step.step_details))
        if step.type == "message_creation":
            text = texts.get(step.step_details["message_creation"]["message_id"], "")
            if text:
                items.append(AssistantText(text))
            continue
        calls = calls_from_details(step.step_details)
        replays = []
        for c in calls:
            replays.append(toolbox.by_type(c.type).replay(c, numbers.get(c.type, 0), output_tokens))
            numbers[c.type] = numbers.get(c.type, 0) + 1
        if any(replay is None for replay in replays):
            continue  # outputs not submitted yet: nothing to show the model
        outputs: list[TurnItem] = []
        for c, replay in zip(calls, replays, strict=True):
            assert replay is not None
            arguments, output = replay
            items.append(ToolCallItem(c.id, c.details["name"] if c.type == "function" else c.type, arguments))
            outputs.append(ToolOutputItem(c.id, output) if isinstance(output, str) else ToolOutputItem.of(c.id, output))
        items.extend(outputs)
    return tuple(items)


def refused_items(calls: Sequence[RefusedCall]) -> list[TurnItem]:
    """Refused calls as the model reads them: the calls, then each one's error as its result."""
    return [
        *(ToolCallItem(c.id, c.name, c.arguments, refused=True) for c in calls),
        *(ToolOutputItem(c.id, c.error) for c in calls),
    ]


def instructions(run: RunRecord) -> str:
    text = run.instructions or ""
    if any(tool["type"] == file_search.NAME for tool in run.tools):
        text = f"{text}\n\n{file_search.CITE_INSTRUCTIONS}".strip()
    return text


async def conversation(
    db: Database,
    conn: Connection,
    run: RunRecord,
    steps: Sequence[StepRecord],
    load_image: ImageLoader,
    toolbox: Toolbox,
    output_tokens: int,
) -> Conversation:
    """`steps`: the run's steps so far (the caller reads them once, for its own use too)."""
    turn = await turn_items(conn, steps, toolbox, output_tokens)
    return Conversation(instructions(run), history(db, run, load_image), turn, turn_settings(run))
