"""From a thread and a run to a chat request: instructions, history, the run's own tool calls, truncation.

The thread is the assistant's memory; it is cut to fit the backend's context window (or
`max_prompt_tokens`, or `last_messages`), oldest first. The current run's tool calls and their
outputs are never cut apart: they are kept whole, history goes first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from assistd.db.database import Connection
from assistd.engine.output import Prompt, PromptTooLarge, Window
from assistd.providers import tokens
from assistd.providers.base import ChatRequest
from assistd.stores import messages as message_store
from assistd.stores import runs as run_store
from assistd.stores.messages import MessageRecord
from assistd.stores.runs import RunRecord
from assistd.tools import Toolbox, code_interpreter, file_search
from assistd.tools.base import calls_from_details

HISTORY_PAGE = 200
COMPLETION_RESERVE = 1024

ImageLoader = Callable[[str], Awaitable[str | None]]


def _tool_choice(choice: Any, run_items: list[dict[str, Any]]) -> Any:
    """A forced choice (`required`, a named tool) applies until the run has called a tool; then the
    model answers freely, with the results in view (else it would call the tool forever)."""
    if any(item.get("tool_calls") for item in run_items) and (choice == "required" or isinstance(choice, dict)):
        return "auto"
    return chat_tool_choice(choice)


def chat_tool_choice(choice: Any) -> Any:
    """`{"type": "file_search"}` and `{"type": "code_interpreter"}` name our functions; the rest passes through."""
    if isinstance(choice, dict) and choice.get("type") in (file_search.NAME, code_interpreter.NAME):
        return {"type": "function", "function": {"name": choice["type"]}}
    return choice


async def _chat_content(content: list[dict[str, Any]], load_image: ImageLoader) -> str | list[dict[str, Any]]:
    texts = [p["text"]["value"] for p in content if p["type"] == "text"]
    if all(p["type"] == "text" for p in content):
        return "\n".join(texts)
    parts: list[dict[str, Any]] = []
    for part in content:
        if part["type"] == "text":
            parts.append({"type": "text", "text": part["text"]["value"]})
        elif part["type"] == "image_url":
            parts.append({"type": "image_url", "image_url": part["image_url"]})
        elif part["type"] == "image_file":
            url = await load_image(part["image_file"]["file_id"])
            if url is not None:
                parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


async def _history_message(row: MessageRecord, load_image: ImageLoader) -> dict[str, Any]:
    if row.role == "assistant":
        text = "\n".join(p["text"]["value"] for p in row.content if p["type"] == "text")
        return {"role": "assistant", "content": text}
    return {"role": "user", "content": await _chat_content(row.content, load_image)}


async def _run_items(conn: Connection, run_id: str, toolbox: Toolbox, search_budget: int) -> list[dict[str, Any]]:
    """The current run's steps so far, as chat messages, in order: each tool replays its calls (the
    arguments the model sent, the result text it read)."""
    steps = await run_store.run_steps(conn, run_id)
    message_ids = [s.step_details["message_creation"]["message_id"] for s in steps if s.type == "message_creation"]
    texts = await message_store.run_message_texts(conn, message_ids)
    items: list[dict[str, Any]] = []
    numbers: dict[str, int] = {}  # per tool: how many of its calls the run made (file_search's citation markers)
    for step in steps:
        if step.type == "message_creation":
            text = texts.get(step.step_details["message_creation"]["message_id"], "")
            if text:
                items.append({"role": "assistant", "content": text})
            continue
        calls = calls_from_details(step.step_details)
        replays = []
        for c in calls:
            replays.append(toolbox.by_type(c.type).replay(c, numbers.get(c.type, 0), search_budget))
            numbers[c.type] = numbers.get(c.type, 0) + 1
        if any(replay is None for replay in replays):
            continue  # outputs not submitted yet: nothing to show the model
        shown, outputs = [], []
        for c, replay in zip(calls, replays, strict=True):
            assert replay is not None
            arguments, output = replay
            name = c.details["name"] if c.type == "function" else c.type
            shown.append({"id": c.id, "type": "function", "function": {"name": name, "arguments": arguments}})
            outputs.append({"role": "tool", "tool_call_id": c.id, "content": output})
        if shown:
            items.append({"role": "assistant", "content": None, "tool_calls": shown})
            items.extend(outputs)
    return items


async def build_prompt(
    conn: Connection, run: RunRecord, window: Window, load_image: ImageLoader, toolbox: Toolbox
) -> Prompt:
    """`window.tools`: the functions the tools show the model (in order: the run's functions, then ours)."""
    tools = window.tools
    context_window = window.context_window
    prompt_tokens_used = window.prompt_tokens_used
    completion_tokens_used = window.completion_tokens_used
    instructions = run.instructions or ""
    if any(tool["type"] == file_search.NAME for tool in run.tools):
        instructions = f"{instructions}\n\n{file_search.CITE_INSTRUCTIONS}".strip()
    system = [{"role": "system", "content": instructions}] if instructions else []
    # Search results may fill at most half the window (and 16k tokens, as OpenAI's large models got).
    run_items = await _run_items(conn, run.id, toolbox, min(16_000, context_window // 2))

    completion_budget = None
    if run.max_completion_tokens is not None:
        completion_budget = max(1, run.max_completion_tokens - completion_tokens_used)
    reserve = min(completion_budget or COMPLETION_RESERVE, context_window // 4)
    budget = context_window - reserve
    prompt_limited = False
    if run.max_prompt_tokens is not None:
        remaining = run.max_prompt_tokens - prompt_tokens_used
        if remaining < budget:
            budget, prompt_limited = remaining, True

    used = tokens.count_tools(tools) + sum(tokens.count_message(m) for m in [*system, *run_items])
    if used > budget and prompt_limited:
        raise PromptTooLarge()

    strategy = run.truncation_strategy or {"type": "auto"}
    keep_at_most = strategy.get("last_messages") if strategy.get("type") == "last_messages" else None
    history: list[dict[str, Any]] = []
    cursor: str | None = None
    done = False
    while not done:
        rows = await message_store.history_page(conn, run.thread_id, run.id, cursor, HISTORY_PAGE)
        for row in rows:
            if keep_at_most is not None and len(history) >= keep_at_most:
                done = True
                break
            message = await _history_message(row, load_image)
            cost = tokens.count_message(message)
            # When not even the newest message fits, it is sent anyway and the backend decides.
            if used + cost > budget and (history or prompt_limited):
                done = True
                break
            history.append(message)
            used += cost
        if len(rows) < HISTORY_PAGE:
            break
        cursor = rows[-1].id
    if prompt_limited and not history and not run_items:
        raise PromptTooLarge()
    history.reverse()

    request = ChatRequest(
        model=window.upstream_model,
        messages=[*system, *history, *run_items],
        tools=tools,
        tool_choice=_tool_choice(run.tool_choice, run_items) if tools else None,
        parallel_tool_calls=run.parallel_tool_calls if tools else None,
        response_format=run.response_format if isinstance(run.response_format, dict) else None,
        temperature=run.temperature,
        top_p=run.top_p,
        max_tokens=completion_budget,
    )
    return Prompt(request, used)
