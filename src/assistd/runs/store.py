"""Runs and steps in the database. Every status change is one compare-and-set UPDATE."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, and_, or_, select, update

from assistd.db import tables as t
from assistd.db.database import Connection
from assistd.protocol.runs import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    CompletionTokensDetails,
    PromptTokensDetails,
    Run,
    RunStep,
    RunUsage,
)
from assistd.providers.base import Usage

# Usage is stored flat (these counters; rows written before the details existed lack the last two)
# and served in OpenAI's shape by `wire_usage`.
NO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "cached_tokens": 0, "reasoning_tokens": 0}


def usage_counters(usage: Usage) -> dict[str, int]:
    """One model call's usage as stored on its step and added to the run's totals."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cached_tokens": usage.cached_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }


def usage_totals(stored: dict[str, int] | None) -> dict[str, int]:
    """A run's stored usage as counters to add to (every counter present, old rows included)."""
    return {**NO_USAGE, **(stored or {})}


def add_usage(totals: dict[str, int], usage: Usage) -> None:
    for key, value in usage_counters(usage).items():
        totals[key] = totals.get(key, 0) + value


def wire_usage(stored: dict[str, int]) -> RunUsage:
    counters = usage_totals(stored)
    return RunUsage(
        prompt_tokens=counters["prompt_tokens"],
        completion_tokens=counters["completion_tokens"],
        total_tokens=counters["total_tokens"],
        prompt_tokens_details=PromptTokensDetails(cached_tokens=counters["cached_tokens"]),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=counters["reasoning_tokens"]),
    )


def to_run(row: Row[Any]) -> Run:
    terminal = row.status in TERMINAL_STATUSES
    return Run(
        id=row.id,
        created_at=row.created_at,
        thread_id=row.thread_id,
        assistant_id=row.assistant_id,
        status=row.status,
        required_action=row.required_action if row.status == "requires_action" else None,
        last_error=row.last_error,
        expires_at=None if terminal else row.expires_at,
        started_at=row.started_at,
        cancelled_at=row.cancelled_at,
        failed_at=row.failed_at,
        completed_at=row.completed_at,
        incomplete_details=row.incomplete_details,
        model=row.model,
        instructions=row.instructions or "",
        tools=row.tools,
        metadata=row.metadata,
        # Terminal runs always report usage (spec §5); one that ended before any model call used none.
        usage=wire_usage(row.usage or NO_USAGE) if terminal else None,
        temperature=row.temperature,
        top_p=row.top_p,
        max_prompt_tokens=row.max_prompt_tokens,
        max_completion_tokens=row.max_completion_tokens,
        truncation_strategy=row.truncation_strategy,
        tool_choice=row.tool_choice,
        parallel_tool_calls=row.parallel_tool_calls,
        response_format=row.response_format,
    )


def public_details(details: dict[str, Any], include_content: bool) -> dict[str, Any]:
    """Private keys (a file_search call's queries) never leave; result content only with include[]."""
    if details.get("type") != "tool_calls":
        return details
    calls = []
    for call in details["tool_calls"]:
        call = {k: v for k, v in call.items() if not k.startswith("_")}
        if call["type"] == "file_search" and not include_content:
            search = dict(call["file_search"])
            search["results"] = [{k: v for k, v in r.items() if k != "content"} for r in search.get("results") or []]
            call["file_search"] = search
        calls.append(call)
    return {"type": "tool_calls", "tool_calls": calls}


async def run_steps(conn: Connection, run_id: str) -> list[Row[Any]]:
    query = select(t.run_steps).where(t.run_steps.c.run_id == run_id).order_by(t.run_steps.c.id)
    return list((await conn.execute(query)).all())


def to_step(row: Row[Any], include_content: bool = False) -> RunStep:
    return RunStep(
        id=row.id,
        created_at=row.created_at,
        assistant_id=row.assistant_id,
        thread_id=row.thread_id,
        run_id=row.run_id,
        type=row.type,
        status=row.status,
        step_details=public_details(row.step_details, include_content),
        last_error=row.last_error,
        expires_at=row.expires_at if row.status == "in_progress" else None,
        expired_at=row.expired_at,
        cancelled_at=row.cancelled_at,
        failed_at=row.failed_at,
        completed_at=row.completed_at,
        metadata=row.metadata,
        usage=None if row.usage is None else wire_usage(row.usage),
    )


async def load_run(conn: Connection, run_id: str) -> Row[Any] | None:
    return (await conn.execute(select(t.runs).where(t.runs.c.id == run_id))).first()


async def active_run_id(conn: Connection, thread_id: str) -> str | None:
    query = select(t.runs.c.id).where(t.runs.c.thread_id == thread_id, t.runs.c.status.in_(ACTIVE_STATUSES)).limit(1)
    return (await conn.execute(query)).scalar()


async def transition(
    conn: Connection, run_id: str, from_statuses: Iterable[str], to_status: str, **values: Any
) -> bool:
    """Move the run to `to_status` only if it is in one of `from_statuses`. True when it moved."""
    result = await conn.execute(
        update(t.runs)
        .where(t.runs.c.id == run_id, t.runs.c.status.in_(list(from_statuses)))
        .values(status=to_status, **values)
    )
    return bool(result.rowcount)


async def close_open_parts(
    conn: Connection, run_id: str, step_status: str, message_reason: str
) -> tuple[list[Row[Any]], list[Row[Any]]]:
    """A run ended early: its in-progress steps take the run's fate, its messages become incomplete.

    Returns the closed steps and messages, as they now are, for the stream's closing events.
    """
    at = int(time.time())
    stamp = {"cancelled": "cancelled_at", "failed": "failed_at", "expired": "expired_at"}[step_status]
    open_steps = select(t.run_steps.c.id).where(t.run_steps.c.run_id == run_id, t.run_steps.c.status == "in_progress")
    step_ids = list((await conn.execute(open_steps)).scalars())
    open_messages = select(t.messages.c.id).where(t.messages.c.run_id == run_id, t.messages.c.status == "in_progress")
    message_ids = list((await conn.execute(open_messages)).scalars())
    if step_ids:
        await conn.execute(
            update(t.run_steps).where(t.run_steps.c.id.in_(step_ids)).values(status=step_status, **{stamp: at})
        )
    if message_ids:
        await conn.execute(
            update(t.messages)
            .where(t.messages.c.id.in_(message_ids))
            .values(status="incomplete", incomplete_at=at, incomplete_details={"reason": message_reason})
        )
    steps = (await conn.execute(select(t.run_steps).where(t.run_steps.c.id.in_(step_ids)))).all() if step_ids else []
    messages = (
        (await conn.execute(select(t.messages).where(t.messages.c.id.in_(message_ids)))).all() if message_ids else []
    )
    return list(steps), list(messages)


def claimable(now: float) -> Any:
    return and_(
        t.runs.c.status == "queued",
        or_(t.runs.c.lease_owner.is_(None), t.runs.c.lease_expires_at < now),
    )


async def claim(conn: Connection, run_id: str, owner: str, lease_seconds: float) -> bool:
    now = time.time()
    result = await conn.execute(
        update(t.runs)
        .where(t.runs.c.id == run_id, claimable(now))
        .values(lease_owner=owner, lease_expires_at=now + lease_seconds)
    )
    return bool(result.rowcount)


def calls_of(steps: Sequence[Any], kind: str) -> list[dict[str, Any]]:
    """The run's tool calls of one type, in the order they were made."""
    return [
        call
        for step in steps
        if step.type == "tool_calls"
        for call in step.step_details["tool_calls"]
        if call["type"] == kind
    ]


async def run_resources(conn: Connection, run: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `tool_resources` of the run's assistant and of its thread (a run uses both, spec §10)."""
    assistant = (
        await conn.execute(select(t.assistants.c.tool_resources).where(t.assistants.c.id == run.assistant_id))
    ).scalar()
    thread = (await conn.execute(select(t.threads.c.tool_resources).where(t.threads.c.id == run.thread_id))).scalar()
    return assistant or {}, thread or {}
