"""The Responses API over the run engine: a response is a run (docs/responses.md).

A response is a run whose id is its `resp_` id, in the thread of its conversation (or in a thread of
its own, continued by `previous_response_id`). Its output is stored as any run's (its message and
its tool-call steps, adapters/assistants_run.py), so the Assistants and Conversations views show it;
what differs is here:

- the conversation the model reads (`response_conversation`): the thread's items, not only its
  messages: the tool calls the thread's runs made and the `function_call_output` items a client
  sent are replayed too, from the last user message on (earlier turns are their messages, as for a
  run); `system`/`developer` messages join the instructions;
- a response does not wait for tool outputs: it completes with its function calls
  (`waits_for_outputs`), whose outputs come in the input of the next response;
- the view (`to_response`): the run and its records as a Response object, its output items the
  conversation items of its message and steps (adapters/conversations.py);
- the stream (adapters/responses_stream.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncGenerator, Callable, Sequence

from assistd import ids
from assistd.adapters.assistants_run import AssistantsAdapter, AssistantsRecorder
from assistd.adapters.conversations import (
    ContainerFiles,
    SortKey,
    cited_files,
    linked_container_files,
    message_item,
    step_items,
    tail,
)
from assistd.adapters.prompt import ImageLoader, _history_item
from assistd.db.database import Connection
from assistd.engine.events import Emitter
from assistd.engine.items import (
    AssistantText,
    Conversation,
    HistoryItem,
    TextPart,
    ToolCallItem,
    ToolOutputItem,
    TurnItem,
    UserMessage,
)
from assistd.engine.lifecycle import Parts
from assistd.engine.output import Recorder
from assistd.engine.usage import usage_counters
from assistd.protocol.conversations import ConversationItem, FunctionCallOutputItem
from assistd.protocol.responses import (
    ConversationId,
    IncompleteDetails,
    InputTokensDetails,
    OutputTokensDetails,
    Response,
    ResponseError,
    ResponseStatus,
    ResponseUsage,
)
from assistd.providers.base import Usage
from assistd.stores import containers as container_store
from assistd.stores import conversations as conversation_store
from assistd.stores import responses as response_store
from assistd.stores import runs as run_store
from assistd.stores.conversations import ItemRecord
from assistd.stores.messages import MessageRecord
from assistd.stores.responses import ResponseRecord
from assistd.stores.runs import Json, RunRecord, StepRecord
from assistd.tools import Toolbox
from assistd.tools.base import ToolCall, calls_from_details

# How far back a response's conversation reads its thread (per source: messages, items, tool steps).
HISTORY_LIMIT = 1000

FileUrl = Callable[[str], str]


def is_response(run_id: str) -> bool:
    return run_id.startswith(ids.RESPONSE)


# --- the view ---------------------------------------------------------------------------------------

_STATUS: dict[str, ResponseStatus] = {
    "queued": "queued",
    "in_progress": "in_progress",
    "cancelling": "in_progress",
    "requires_action": "completed",
    "completed": "completed",
    "incomplete": "incomplete",
    "cancelled": "cancelled",
    "failed": "failed",
    "expired": "failed",
}


def response_status(run_status: str, background: bool) -> ResponseStatus:
    status = _STATUS[run_status]
    return "in_progress" if status == "queued" and not background else status


def response_usage(usage: Json) -> ResponseUsage:
    prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    return ResponseUsage(
        input_tokens=prompt,
        input_tokens_details=InputTokensDetails(),
        output_tokens=completion,
        output_tokens_details=OutputTokensDetails(),
        total_tokens=prompt + completion,
    )


def output_items(
    messages: Sequence[MessageRecord],
    steps: Sequence[StepRecord],
    names: dict[str, str],
    include: frozenset[str],
    file_url: FileUrl,
    containers: ContainerFiles | None = None,
) -> list[ConversationItem]:
    """A run's output as items, in the order it made them: its messages and its tool calls."""
    keyed: list[tuple[SortKey, ConversationItem]] = [
        ((tail(m.id), 0), message_item(m, names, include, containers)) for m in messages
    ]
    for step in steps:
        if step.type == "tool_calls":
            keyed += [
                pair for pair in step_items(step, include, file_url) if not isinstance(pair[1], FunctionCallOutputItem)
            ]
    keyed.sort(key=lambda pair: pair[0])
    return [item for _, item in keyed]


def to_response(
    record: ResponseRecord, run: RunRecord, output: list[ConversationItem], status: ResponseStatus | None = None
) -> Response:
    request = record.request
    status = status or response_status(run.status, record.background)
    error = None
    if run.status in ("failed", "expired"):
        last = run.last_error or {"code": "server_error", "message": "The response expired before it completed."}
        error = ResponseError(code=str(last.get("code") or "server_error"), message=str(last.get("message") or ""))
    incomplete = IncompleteDetails(reason="max_output_tokens") if run.status == "incomplete" else None
    completed_at = run.completed_at if run.status == "completed" else None
    return Response(
        id=record.id,
        created_at=record.created_at,
        status=status,
        background=record.background,
        completed_at=completed_at,
        conversation=ConversationId(id=record.conversation_id) if record.conversation_id else None,
        error=error,
        incomplete_details=incomplete,
        instructions=run.instructions,
        max_output_tokens=run.max_completion_tokens,
        max_tool_calls=request.get("max_tool_calls"),
        metadata=run.metadata,
        model=run.model,
        output=output,
        parallel_tool_calls=run.parallel_tool_calls,
        previous_response_id=record.previous_response_id,
        reasoning={"effort": None, "summary": None},
        service_tier="default",
        store=record.store,
        temperature=run.temperature if run.temperature is not None else 1.0,
        text=request.get("text") or {"format": {"type": "text"}},
        tool_choice=request.get("tool_choice", "auto"),
        tools=request.get("tools") or [],
        top_logprobs=int(request.get("top_logprobs") or 0),
        top_p=run.top_p if run.top_p is not None else 1.0,
        truncation=request.get("truncation") or "disabled",
        usage=response_usage(run.usage or {}),  # so far, while it runs (the spec types it as an object)
    )


async def load_response(
    conn: Connection, record: ResponseRecord, include: frozenset[str], file_url: FileUrl
) -> Response | None:
    """The response as stored now; None when its run is gone (its thread was deleted)."""
    run = await run_store.load_run(conn, record.id)
    if run is None:
        return None
    steps = await run_store.run_steps(conn, run.id)
    messages = await response_store.run_messages(conn, run.id)
    names = await conversation_store.file_names(conn, record.project_id, cited_files(messages))
    containers = await container_store.cited(conn, record.project_id, linked_container_files(messages))
    return to_response(record, run, output_items(messages, steps, names, include, file_url, containers))


def file_content_url(file_id: str) -> str:
    return f"/v1/files/{file_id}/content"


# --- the conversation the model reads ---------------------------------------------------------------

_Entry = MessageRecord | ItemRecord | tuple[StepRecord, ToolCall, int]


def _text_of(item: Json) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(str(p.get("text", "")) for p in content or [] if p.get("type") in ("input_text", "output_text"))


async def _entries(conn: Connection, run: RunRecord) -> list[_Entry]:
    """The thread's messages, stored items and tool calls, oldest first, without the run's own."""
    messages, stored = await response_store.thread_entries(conn, run.thread_id, HISTORY_LIMIT)
    steps = await conversation_store.tool_steps_from(conn, run.thread_id, None, False, HISTORY_LIMIT)
    keyed: list[tuple[SortKey, _Entry]] = [((tail(m.id), 0), m) for m in messages if m.run_id != run.id]
    keyed += [((r.sort_key, 0), r) for r in stored]
    for step in steps:
        if step.run_id == run.id:
            continue
        for k, call in enumerate(calls_from_details(step.step_details)):
            keyed.append(((tail(step.id), k), (step, call, k)))
    keyed.sort(key=lambda pair: pair[0])
    return [entry for _, entry in keyed]


def _is_user(entry: _Entry) -> bool:
    if isinstance(entry, MessageRecord):
        return entry.role == "user"
    return isinstance(entry, ItemRecord) and entry.type == "message" and entry.item.get("role") == "user"


def _outputs(entries: Sequence[_Entry]) -> dict[str, str]:
    """Function call outputs by call id: sent as items, or submitted to an Assistants run."""
    found: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, ItemRecord) and entry.type == "function_call_output":
            output = entry.item.get("output")
            found[str(entry.item["call_id"])] = output if isinstance(output, str) else _text_of({"content": output})
        elif isinstance(entry, tuple) and entry[1].type == "function":
            submitted = entry[1].details.get("output")
            if submitted is not None:
                found[entry[1].id] = str(submitted)
    return found


async def response_conversation(
    conn: Connection, run: RunRecord, toolbox: Toolbox, load_image: ImageLoader, output_tokens: int
) -> tuple[list[HistoryItem], list[TurnItem], list[str]]:
    """(history oldest first, the items since the last user message, extra instructions) of a
    response's thread. A call whose output never came is left out (with it the model could not be
    asked); a built-in tool's call is replayed by its tool."""
    entries = await _entries(conn, run)
    outputs = _outputs(entries)
    last_user = max((i for i, e in enumerate(entries) if _is_user(e)), default=-1)
    history: list[HistoryItem] = []
    extra: list[str] = []
    for entry in entries[: last_user + 1]:
        if isinstance(entry, MessageRecord):
            history.append(await _history_item(entry, load_image))
        elif isinstance(entry, ItemRecord) and entry.type == "message":
            role = entry.item.get("role")
            if role in ("system", "developer"):
                extra.append(_text_of(entry.item))
            elif role == "user":
                history.append(UserMessage((TextPart(_text_of(entry.item)),)))
            else:
                history.append(AssistantText(_text_of(entry.item)))
    turn: list[TurnItem] = []
    pending: list[TurnItem] = []  # outputs of the calls just listed: they follow the calls
    numbers: dict[str, int] = {}
    for entry in entries[last_user + 1 :]:
        call: ToolCallItem | None = None
        output: TurnItem | None = None
        if isinstance(entry, tuple):
            _, tool_call, _ = entry
            if tool_call.type == "function":
                if tool_call.id in outputs:
                    call = ToolCallItem(
                        tool_call.id, str(tool_call.details["name"]), str(tool_call.details.get("arguments") or "{}")
                    )
                    output = ToolOutputItem(tool_call.id, outputs[tool_call.id])
            else:
                replay = toolbox.by_type(tool_call.type).replay(
                    tool_call, numbers.get(tool_call.type, 0), output_tokens
                )
                numbers[tool_call.type] = numbers.get(tool_call.type, 0) + 1
                if replay is not None:
                    arguments, result = replay
                    call = ToolCallItem(tool_call.id, tool_call.type, arguments)
                    output = (
                        ToolOutputItem(tool_call.id, result)
                        if isinstance(result, str)
                        else ToolOutputItem.of(tool_call.id, result)
                    )
        elif isinstance(entry, ItemRecord) and entry.type == "function_call":
            call_id = str(entry.item["call_id"])
            if call_id in outputs:
                call = ToolCallItem(call_id, str(entry.item["name"]), str(entry.item.get("arguments") or "{}"))
                output = ToolOutputItem(call_id, outputs[call_id])
        elif isinstance(entry, ItemRecord) and entry.type == "message":
            if entry.item.get("role") in ("system", "developer"):
                extra.append(_text_of(entry.item))
            else:
                turn += pending
                pending = []
                turn.append(AssistantText(_text_of(entry.item)))
        elif isinstance(entry, MessageRecord):
            turn += pending
            pending = []
            turn.append(AssistantText("\n".join(p["text"]["value"] for p in entry.content if p["type"] == "text")))
        if call is not None and output is not None:
            turn.append(call)
            pending.append(output)
    turn += pending
    return history, turn, extra


# --- the recorder -----------------------------------------------------------------------------------


class ResponsesRecorder(AssistantsRecorder):
    """A response's run: stored as any run's output (so both other views show it), read by the model
    as the thread's items, and ended, not paused, by function calls."""

    waits_for_outputs = False

    async def conversation(self, tool_output_tokens: int) -> Conversation:
        items = await super().conversation(tool_output_tokens)  # the run's own steps, its settings
        async with self.db.read() as conn:
            history, turn, extra = await response_conversation(
                conn, self.run, self.adapter.toolbox, self.adapter.image_url, tool_output_tokens
            )
            record = await response_store.get(conn, self.run.id)
        # `truncation: disabled` (OpenAI's default): what does not fit fails the response, uncut.
        cut = record is not None and record.request.get("truncation") == "auto"

        async def newest_first() -> AsyncGenerator[HistoryItem, None]:
            for item in reversed(history):
                yield item

        # Images the code made are the code_interpreter_call's outputs: a Responses message has no image part.
        self._next.images = []
        instructions = "\n\n".join([items.instructions, *extra]).strip()
        settings = dataclasses.replace(items.settings, cut_history=cut)
        return dataclasses.replace(
            items, instructions=instructions, history=newest_first, turn=(*turn, *items.turn), settings=settings
        )

    def keep_calls(self, calls: list[ToolCall], usage: Usage) -> Parts:
        """The calls end the response: their step completes with the run."""
        step_id = self.call.tool_step_id
        details = self._tool_details(calls)

        async def keep(conn: Connection) -> None:
            assert step_id is not None
            values: Json = {
                "step_details": details,
                "usage": usage_counters(usage),
                "status": "completed",
                "completed_at": int(time.time()),
            }
            await run_store.update_step(conn, step_id, values)

        return keep


class RunAdapters:
    """The engine's `RunAdapter`: a run made by the Responses API (a `resp_` id) is recorded as a
    response, any other as an Assistants run."""

    def __init__(self, assistants: AssistantsAdapter) -> None:
        self.assistants = assistants

    def recorder(self, run: RunRecord, emitter: Emitter) -> Recorder:
        if is_response(run.id):
            return ResponsesRecorder(self.assistants, run, emitter)
        return self.assistants.recorder(run, emitter)
