"""From an Assistants thread and run to the engine's conversation items: instructions, the thread's
history (newest first, read a page at a time as the engine fits it, with the token counts kept with
its messages), and the run's own tool calls replayed by their tools. Fitting them into the budget and
rendering the request is the engine's (engine/prompt.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any

from assistd import jsonio
from assistd.db.database import Connection, Database
from assistd.engine.items import (
    AssistantText,
    Conversation,
    HistoryItem,
    ImagePart,
    NamedTool,
    StoredItem,
    TextPart,
    ToolCallItem,
    ToolChoice,
    ToolOutputItem,
    TurnItem,
    TurnSettings,
    UserMessage,
)
from assistd.stores import messages as message_store
from assistd.stores.messages import HistoryRow, MessageRecord
from assistd.stores.runs import RunRecord, StepRecord
from assistd.tools import Toolbox, code_interpreter, file_search
from assistd.tools.base import RefusedCall, calls_from_details, refused_in

log = logging.getLogger("assistd.engine")

HISTORY_PAGE = 128  # messages in the first page of a thread's history; each next page twice the last
HISTORY_PAGE_MAX = 1024
# New counts are kept (one write) once a prompt has made this many: fewer are counted again next time,
# which costs less than a write per run (a run adds a message or two to its thread).
KEEP_AT_LEAST = 32

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
    return await _item_of(row.role, row.content, load_image)


async def _item_of(role: str, content: list[dict[str, Any]], load_image: ImageLoader) -> HistoryItem:
    if role == "assistant":
        return AssistantText("\n".join(p["text"]["value"] for p in content if p["type"] == "text"))
    return await _user_message(content, load_image)


def _stored(row: HistoryRow, load_image: ImageLoader, kept: list[tuple[str, int, str]]) -> StoredItem:
    """A message as the engine reads it: its count, and its content decoded only if the engine asks.
    A message a run is still writing, or one showing image files (a deleted or resized file changes what
    it shows), is counted every time: its count is not kept."""

    async def build() -> HistoryItem:
        return await _item_of(row.role, jsonio.from_column(row.content), load_image)

    def keep(tokens: int, counter: str) -> None:
        kept.append((row.id, tokens, counter))

    lasting = row.status != "in_progress" and '"image_file"' not in row.content
    return StoredItem(build, row.token_count, row.token_counter, keep if lasting else None)


def history(
    db: Database, run: RunRecord, load_image: ImageLoader
) -> Callable[[], AsyncGenerator[HistoryItem | StoredItem, None]]:
    """The thread's messages before the run, newest first, a page at a time (the engine stops reading
    once its budget is spent). Counts the engine makes of messages that had none by its counter are
    kept with them when it is done, once there are `KEEP_AT_LEAST` of them."""

    async def newest_first() -> AsyncGenerator[HistoryItem | StoredItem, None]:
        kept: list[tuple[str, int, str]] = []
        try:
            before: str | None = None
            size = HISTORY_PAGE
            while True:
                async with db.reader() as reader:
                    rows = await message_store.history_page(reader, run.thread_id, run.id, before, size)
                for row in rows:
                    yield _stored(row, load_image, kept)
                if len(rows) < size:
                    return
                before = rows[-1].position
                size = min(2 * size, HISTORY_PAGE_MAX)
        finally:
            if len(kept) >= KEEP_AT_LEAST:
                await _keep(db, kept)

    return newest_first


async def _keep(db: Database, counts: list[tuple[str, int, str]]) -> None:
    """Counts are worth keeping, not failing a run for: a write that fails is logged, and they are made again."""
    try:
        async with db.write() as conn:
            await message_store.keep_token_counts(conn, counts)
    except Exception as exc:
        log.warning("could not keep token counts", extra={"messages": len(counts), "error": f"{exc!r}"[:200]})


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
