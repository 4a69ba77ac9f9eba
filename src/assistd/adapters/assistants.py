"""The Assistants protocol over the engine: stored runs, steps and messages as wire objects.

Records (stores/) become the `thread.run`, `thread.run.step` and `thread.message` objects here, and
only here: routes, services and the run executor all map through these functions. Private per-call
state kept in a step's stored details (keys starting with `_`) never leaves.
"""

from __future__ import annotations

from typing import Any

import orjson

from assistd.engine.lifecycle import TERMINAL
from assistd.protocol.messages import Message
from assistd.protocol.runs import (
    Run,
    RunStep,
    RunUsage,
)
from assistd.stores.common import Page
from assistd.stores.messages import MessageJson, MessageRecord
from assistd.stores.runs import NO_USAGE, RunJson, RunRecord, StepRecord, usage_totals

__all__ = [
    "NO_USAGE",
    "message_list_json",
    "message_wire",
    "public_details",
    "run_json",
    "to_message",
    "to_run",
    "to_step",
    "wire_usage",
]


def usage_object(stored: dict[str, int] | None) -> dict[str, object]:
    """The wire's usage object of stored counters: `wire_usage`'s fields, and `run_json`'s bytes."""
    counters = usage_totals(stored)
    return {
        "prompt_tokens": counters["prompt_tokens"],
        "completion_tokens": counters["completion_tokens"],
        "total_tokens": counters["total_tokens"],
        "prompt_tokens_details": {"cached_tokens": counters["cached_tokens"]},
        "completion_tokens_details": {"reasoning_tokens": counters["reasoning_tokens"]},
    }


def wire_usage(stored: dict[str, int]) -> RunUsage:
    return RunUsage.model_validate(usage_object(stored))


def to_run(run: RunRecord) -> Run:
    terminal = run.status in TERMINAL
    return Run(
        id=run.id,
        created_at=run.created_at,
        thread_id=run.thread_id,
        assistant_id=run.assistant_id,
        status=run.status,
        required_action=run.required_action if run.status == "requires_action" else None,
        last_error=run.last_error,
        expires_at=None if terminal else run.expires_at,
        started_at=run.started_at,
        cancelled_at=run.cancelled_at,
        failed_at=run.failed_at,
        completed_at=run.completed_at,
        incomplete_details=run.incomplete_details,
        model=run.model,
        instructions=run.instructions or "",
        tools=run.tools,
        metadata=run.metadata,
        # Terminal runs always report usage (spec §5); one that ended before any model call used none.
        usage=wire_usage(run.usage or NO_USAGE) if terminal else None,
        temperature=run.temperature,
        top_p=run.top_p,
        max_prompt_tokens=run.max_prompt_tokens,
        max_completion_tokens=run.max_completion_tokens,
        truncation_strategy=run.truncation_strategy,
        tool_choice=run.tool_choice,
        parallel_tool_calls=run.parallel_tool_calls,
        response_format=run.response_format,
    )


def run_json(run: RunJson) -> bytes:
    """The bytes of `to_run`'s object for a run read by `stores.runs.run_json`: the same keys in the same
    order, the JSON columns copied as the text we stored (tests/compat check both agree)."""
    terminal = run.status in TERMINAL
    stored_null = (None, "null")
    return orjson.dumps(
        {
            "id": run.id,
            "object": "thread.run",
            "created_at": run.created_at,
            "thread_id": run.thread_id,
            "assistant_id": run.assistant_id,
            "status": run.status,
            "required_action": _stored_json(run.required_action) if run.status == "requires_action" else None,
            "last_error": _stored_json(run.last_error),
            "expires_at": None if terminal else run.expires_at,
            "started_at": run.started_at,
            "cancelled_at": run.cancelled_at,
            "failed_at": run.failed_at,
            "completed_at": run.completed_at,
            "incomplete_details": _stored_json(run.incomplete_details),
            "model": run.model,
            "instructions": run.instructions or "",
            "tools": orjson.Fragment(run.tools),
            "metadata": orjson.Fragment(run.metadata),
            # Terminal runs always report usage (spec §5); one that ended before any model call used none.
            "usage": usage_object(None if run.usage in stored_null else orjson.loads(run.usage)) if terminal else None,
            "temperature": run.temperature,
            "top_p": run.top_p,
            "max_prompt_tokens": run.max_prompt_tokens,
            "max_completion_tokens": run.max_completion_tokens,
            "truncation_strategy": _stored_json(run.truncation_strategy),
            "tool_choice": orjson.Fragment(run.tool_choice),
            "parallel_tool_calls": bool(run.parallel_tool_calls),
            "response_format": _stored_json(run.response_format),
        }
    )


def public_details(details: dict[str, Any], include_content: bool) -> dict[str, Any]:
    """Private keys (a call's raw arguments, queries, written files, refused calls) never leave; file_search result
    content only with include[]."""
    if details.get("type") != "tool_calls":
        return {k: v for k, v in details.items() if k != "private"}
    calls = []
    for call in details["tool_calls"]:
        call = {k: v for k, v in call.items() if not k.startswith("_")}
        if call["type"] == "file_search" and not include_content:
            search = dict(call["file_search"])
            search["results"] = [{k: v for k, v in r.items() if k != "content"} for r in search.get("results") or []]
            call["file_search"] = search
        calls.append(call)
    return {"type": "tool_calls", "tool_calls": calls}


def to_step(step: StepRecord, include_content: bool = False) -> RunStep:
    return RunStep(
        id=step.id,
        created_at=step.created_at,
        assistant_id=step.assistant_id,
        thread_id=step.thread_id,
        run_id=step.run_id,
        type=step.type,
        status=step.status,
        step_details=public_details(step.step_details, include_content),
        last_error=step.last_error,
        expires_at=step.expires_at if step.status == "in_progress" else None,
        expired_at=step.expired_at,
        cancelled_at=step.cancelled_at,
        failed_at=step.failed_at,
        completed_at=step.completed_at,
        metadata=step.metadata,
        usage=None if step.usage is None else wire_usage(step.usage),
    )


def _stored_json(text: str | None) -> orjson.Fragment | None:
    return None if text is None else orjson.Fragment(text)


def message_wire(message: MessageJson) -> dict[str, object]:
    """`to_message`'s object as a dict for orjson, in the same key order, with the JSON columns copied as
    the text we stored: no decoding, and no validation of what we validated when we wrote it."""
    return {
        "id": message.id,
        "object": "thread.message",
        "created_at": message.created_at,
        "thread_id": message.thread_id,
        "status": message.status,
        "incomplete_details": _stored_json(message.incomplete_details),
        "completed_at": message.completed_at,
        "incomplete_at": message.incomplete_at,
        "role": message.role,
        "content": orjson.Fragment(message.content),
        "assistant_id": message.assistant_id,
        "run_id": message.run_id,
        "attachments": _stored_json(message.attachments),
        "metadata": orjson.Fragment(message.metadata),
    }


def message_list_json(page: Page[MessageJson]) -> bytes:
    """The bytes of `ListPage[Message]` for a page of messages (tests/compat check both agree)."""
    return orjson.dumps(
        {
            "object": "list",
            "data": [message_wire(message) for message in page.data],
            "first_id": page.first_id,
            "last_id": page.last_id,
            "has_more": page.has_more,
        }
    )


def to_message(message: MessageRecord) -> Message:
    return Message(
        id=message.id,
        created_at=message.created_at,
        thread_id=message.thread_id,
        status=message.status,
        incomplete_details=message.incomplete_details,
        completed_at=message.completed_at,
        incomplete_at=message.incomplete_at,
        role=message.role,
        content=message.content,
        assistant_id=message.assistant_id,
        run_id=message.run_id,
        attachments=message.attachments,
        metadata=message.metadata,
    )
