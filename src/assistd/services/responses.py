"""Responses: OpenAI's Responses API on the run engine (docs/responses.md).

A response is a run (`resp_` id) in a thread: the thread of its `conversation`, the thread of its
`previous_response_id`, or a new thread of its own. Its input becomes conversation items of that
thread (services/conversations.py `plan_items`), written with the run in one transaction; the run
worker executes it like any run, recorded by the Responses recorder (adapters/responses.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from assistd import ids
from assistd.adapters.conversations import cited_files, message_item, stored_item
from assistd.adapters.response_events import KeptEvents, kept
from assistd.adapters.responses import HISTORY_LIMIT, file_content_url, is_response, load_response
from assistd.adapters.responses_stream import ResponsesStream
from assistd.db.database import Connection, Database
from assistd.db.wakeups import RunQueued, announce
from assistd.engine.events import Emitter, ExecutionOver, LifecycleEvent, NullEmitter
from assistd.engine.executor import Executor
from assistd.engine.lifecycle import TERMINAL, RunStatus, active_run_id
from assistd.errors import InvalidRequest, NotFound, not_found
from assistd.protocol.conversations import ConversationItem, FunctionCallIn, FunctionCallOutputIn, ItemIn, MessageIn
from assistd.protocol.responses import (
    AutoContainer,
    CodeInterpreterToolIn,
    FileSearchToolIn,
    FormatJsonObject,
    FormatJsonSchema,
    FunctionChoice,
    FunctionToolIn,
    InputItemList,
    InputItemListParams,
    Response,
    ResponseCreate,
    ResponseDeleted,
    ResponseEvent,
    TextConfig,
    ToolIn,
)
from assistd.providers.routing import ModelRouter
from assistd.services.common import now
from assistd.services.containers import ContainerService
from assistd.services.conversations import ConversationService, plan_items, write_items
from assistd.services.vector_stores import VectorStoreService
from assistd.stores import assistants as assistant_store
from assistd.stores import conversations as conversation_store
from assistd.stores import responses as store
from assistd.stores import runs as run_store
from assistd.stores import threads as thread_store
from assistd.stores.assistants import AssistantRecord
from assistd.stores.responses import ResponseRecord
from assistd.stores.threads import ThreadRecord

KIND = "response"
CANCEL_WAIT = 5.0  # seconds a cancel waits for the response to end


class Finished:
    """An `Emitter` that tells a waiting request when the executor is done with the run."""

    def __init__(self) -> None:
        self.done = asyncio.Event()

    async def emit(self, event: LifecycleEvent) -> None:
        if isinstance(event, ExecutionOver):
            self.done.set()


def _tools(
    body: ResponseCreate, containers: dict[int, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """(the run's tools, the tools as the response echoes them, the vector stores file_search searches).
    `containers`: the container each code_interpreter tool (by its index) runs in."""
    run_tools: list[dict[str, Any]] = []
    shown: list[dict[str, Any]] = []
    stores: list[str] = []
    for i, tool in enumerate(body.tools or []):
        if isinstance(tool, CodeInterpreterToolIn):
            # The run's tool names its container (tools/code_interpreter.py `container_of`); the response
            # echoes the container it runs in, "auto" resolved.
            run_tools.append({"type": "code_interpreter", "code_interpreter": {"container": containers[i]}})
            shown.append({"type": "code_interpreter", "container": containers[i]})
            continue
        if isinstance(tool, FunctionToolIn):
            function: dict[str, Any] = {
                "name": tool.name,
                "parameters": tool.parameters or {"type": "object", "properties": {}},
                "strict": bool(tool.strict) if tool.strict is not None else True,
            }
            if tool.description is not None:
                function["description"] = tool.description
            run_tools.append({"type": "function", "function": function})
            shown.append(
                {
                    "type": "function",
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                    "strict": function["strict"],
                }
            )
        elif isinstance(tool, FileSearchToolIn):
            settings: dict[str, Any] = {"ranking_options": {"ranker": "auto", "score_threshold": 0.0}}
            if tool.ranking_options and tool.ranking_options.get("score_threshold") is not None:
                settings["ranking_options"]["score_threshold"] = float(tool.ranking_options["score_threshold"])
            if tool.max_num_results is not None:
                settings["max_num_results"] = tool.max_num_results
            settings["vector_store_ids"] = list(tool.vector_store_ids)
            if tool.filters is not None:
                settings["filters"] = tool.filters.model_dump()
            run_tools.append({"type": "file_search", "file_search": settings})
            shown.append(tool.model_dump(exclude_none=True))
            stores += tool.vector_store_ids
    return run_tools, shown, stores


def _tool_choice(body: ResponseCreate, run_tools: list[dict[str, Any]]) -> tuple[Any, Any]:
    """(the run's tool_choice, the response's)."""
    choice = body.tool_choice
    if choice is None:
        return "auto", "auto"
    if isinstance(choice, str):
        return choice, choice
    if isinstance(choice, FunctionChoice):
        if not any(t["type"] == "function" and t["function"]["name"] == choice.name for t in run_tools):
            raise InvalidRequest(
                f"Invalid 'tool_choice': the function '{choice.name}' is not in the response's tools.",
                param="tool_choice",
                code="invalid_value",
            )
        return {"type": "function", "function": {"name": choice.name}}, {"type": "function", "name": choice.name}
    if not any(t["type"] == choice.type for t in run_tools):
        raise InvalidRequest(
            f"Invalid 'tool_choice': the tool '{choice.type}' is not in the response's tools.",
            param="tool_choice",
            code="invalid_value",
        )
    return {"type": choice.type}, {"type": choice.type}


def _format(body: ResponseCreate) -> tuple[Any, dict[str, Any]]:
    """(the run's response_format, the response's `text`)."""
    fmt = body.text.format if body.text is not None else None
    text: dict[str, Any] = {"format": {"type": "text"}}
    if body.text is not None and body.text.verbosity is not None:
        text["verbosity"] = body.text.verbosity
    if isinstance(fmt, FormatJsonSchema):
        schema = {"name": fmt.name, "schema": fmt.schema_, "strict": fmt.strict}
        if fmt.description is not None:
            schema["description"] = fmt.description
        text["format"] = {"type": "json_schema", **schema}
        return {"type": "json_schema", "json_schema": schema}, text
    if isinstance(fmt, FormatJsonObject):
        text["format"] = {"type": "json_object"}
        return {"type": "json_object"}, text
    return {"type": "text"}, text


def _input(body: ResponseCreate) -> list[ItemIn]:
    if body.input is None:
        return []
    if isinstance(body.input, str):
        return [MessageIn(role="user", content=body.input)]
    return list(body.input)


async def _check_outputs(conn: Connection, thread_id: str, items: list[ItemIn]) -> None:
    """Every function_call_output answers a call of the conversation (or of the input before it)."""
    outputs = [(i, item) for i, item in enumerate(items) if isinstance(item, FunctionCallOutputIn)]
    if not outputs:
        return
    known = await store.function_call_ids(conn, thread_id, HISTORY_LIMIT)
    for i, item in enumerate(items):
        if isinstance(item, FunctionCallIn):
            known.add(item.call_id)
        elif isinstance(item, FunctionCallOutputIn) and item.call_id not in known:
            raise InvalidRequest(
                f"No tool call found for function call output with call_id {item.call_id}.",
                param=f"input[{i}].call_id",
                code="invalid_value",
            )


def _assistant_tools(assistant: AssistantRecord) -> list[ToolIn]:
    """An assistant's tools as a response's, with its tool_resources: file_search searches its vector
    stores, code_interpreter gets its files in an "auto" container."""
    resources = assistant.tool_resources or {}
    tools: list[ToolIn] = []
    for tool in assistant.tools:
        if tool["type"] == "function":
            fn = tool["function"]
            tools.append(
                FunctionToolIn(
                    type="function",
                    name=fn["name"],
                    description=fn.get("description"),
                    parameters=fn.get("parameters"),
                    strict=bool(fn.get("strict")),
                )
            )
        elif tool["type"] == "file_search":
            settings = tool.get("file_search") or {}
            threshold = (settings.get("ranking_options") or {}).get("score_threshold")
            stores = list((resources.get("file_search") or {}).get("vector_store_ids") or [])
            # model_construct: an assistant may have file_search without stores of its own (the thread's)
            tools.append(
                FileSearchToolIn.model_construct(
                    type="file_search",
                    vector_store_ids=stores,
                    max_num_results=settings.get("max_num_results"),
                    filters=None,
                    # the Assistants rankers are not the Responses ones: the threshold carries over
                    ranking_options={"score_threshold": threshold} if threshold is not None else None,
                )
            )
        elif tool["type"] == "code_interpreter":
            files = list((resources.get("code_interpreter") or {}).get("file_ids") or [])
            tools.append(
                CodeInterpreterToolIn(type="code_interpreter", container=AutoContainer(type="auto", file_ids=files))
            )
    return tools


def _merged_tools(own: list[ToolIn], given: list[ToolIn]) -> list[ToolIn]:
    """The assistant's tools, each replaced by a tool the request gives of its kind (a function by name)."""

    def kind(tool: ToolIn) -> str:
        return f"function:{tool.name}" if isinstance(tool, FunctionToolIn) else tool.type

    replaced = {kind(t) for t in given}
    return [t for t in own if kind(t) not in replaced] + given


def _assistant_text(assistant: AssistantRecord) -> TextConfig | None:
    fmt = assistant.response_format
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt["json_schema"]
        return TextConfig(
            format=FormatJsonSchema.model_validate(
                {"type": "json_schema", **{k: v for k, v in schema.items() if v is not None}}
            )
        )
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return TextConfig(format=FormatJsonObject(type="json_object"))
    return None


def _with_variables(text: str | None, variables: dict[str, str] | None) -> str | None:
    """`{{name}}` in the assistant's instructions replaced by the prompt's string variables."""
    if text is None or not variables:
        return text
    for name, value in variables.items():
        text = text.replace("{{" + name + "}}", value)
    return text


class ResponseService:
    def __init__(
        self,
        db: Database,
        conversations: ConversationService,
        vector_stores: VectorStoreService,
        containers: ContainerService,
        router: ModelRouter,
        executor: Executor,
        notify: Callable[[], None],  # wakes this process's run worker
        expires_seconds: int,
    ) -> None:
        self.db = db
        self.conversations = conversations
        self.vector_stores = vector_stores
        self.containers = containers
        self.router = router
        self.executor = executor
        self.notify = notify
        self.expires_seconds = expires_seconds

    # --- create -----------------------------------------------------------------------------------

    async def _apply_prompt(self, project_id: str, body: ResponseCreate) -> tuple[ResponseCreate, str]:
        """`prompt: {"id": "asst_…"}`: the request with the assistant's settings where it gives none (model,
        temperature, top_p, text format), the assistant's instructions followed by the request's, and the
        assistant's tools (with its tool_resources) joined by the request's; and the assistant's id."""
        prompt = body.prompt
        if prompt is None:
            return body, ""
        if not prompt.id.startswith(ids.ASSISTANT):
            raise InvalidRequest(
                "assistd serves prompts as assistants: 'prompt.id' must be an assistant id (asst_…); "
                "OpenAI's stored prompts (pmpt_…) are not served (docs/responses.md).",
                param="prompt.id",
                code="invalid_value",
            )
        async with self.db.read() as conn:
            try:
                assistant = await assistant_store.get(conn, project_id, prompt.id)
            except NotFound as exc:
                raise NotFound(exc.message, param="prompt.id") from None
        own = _with_variables(assistant.instructions, prompt.variables)
        instructions = "\n\n".join(t for t in (own, body.instructions) if t) or None
        changes: dict[str, Any] = {
            "model": body.model or assistant.model,
            "instructions": instructions,
            "tools": _merged_tools(_assistant_tools(assistant), list(body.tools or [])),
            "temperature": body.temperature if body.temperature is not None else assistant.temperature,
            "top_p": body.top_p if body.top_p is not None else assistant.top_p,
            "text": body.text if body.text is not None else _assistant_text(assistant),
        }
        return body.model_copy(update=changes), assistant.id

    async def create(
        self, project_id: str, body: ResponseCreate, *, owner: str | None
    ) -> tuple[ResponseRecord, Response]:
        """The response, queued: held by `owner` (this process executes it), or for any worker (None)."""
        body, assistant_id = await self._apply_prompt(project_id, body)
        if body.model is None:
            raise InvalidRequest(
                "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
            )
        if self.router.resolve(body.model) is None:
            raise InvalidRequest(
                f"The model `{body.model}` does not exist or you do not have access to it. No model backend is "
                "configured for it (docs/responses.md).",
                param="model",
                code="model_not_found",
            )
        if body.conversation is not None and body.previous_response_id is not None:
            raise InvalidRequest(
                "Mutually exclusive parameters: 'previous_response_id' and 'conversation' can't be used together.",
                param="conversation",
                code="mutually_exclusive_parameters",
            )
        if body.background and body.store is False:
            raise InvalidRequest(
                "A background response must be stored: background=true needs store=true.",
                param="background",
                code="invalid_value",
            )
        items = _input(body)
        if not items and body.previous_response_id is None and body.conversation is None:
            raise InvalidRequest(
                "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
            )
        await self.conversations.check_items(project_id, items, "input")
        for i, tool in enumerate(body.tools or []):
            if isinstance(tool, FileSearchToolIn):
                await self.vector_stores.require(project_id, tool.vector_store_ids, f"tools[{i}].vector_store_ids")
        code_tools = [(i, t) for i, t in enumerate(body.tools or []) if isinstance(t, CodeInterpreterToolIn)]
        if len(code_tools) > 1:
            raise InvalidRequest(
                "Only one code_interpreter tool can be given.", param=f"tools[{code_tools[1][0]}]", code="invalid_value"
            )
        containers = {i: await self._container(project_id, body, i, tool) for i, tool in code_tools}
        run_tools, shown_tools, stores = _tools(body, containers)
        run_choice, shown_choice = _tool_choice(body, run_tools)
        response_format, text = _format(body)
        conversation_id = (
            body.conversation
            if isinstance(body.conversation, str) or body.conversation is None
            else body.conversation.id
        )
        created = now()
        response_id = ids.new_id(ids.RESPONSE)
        truncation = body.truncation or "disabled"
        request: dict[str, Any] = {
            "tools": shown_tools,
            "tool_choice": shown_choice,
            "text": text,
            "truncation": truncation,
            "max_tool_calls": body.max_tool_calls,
            "top_logprobs": body.top_logprobs,
            "user": body.user,
            "vector_store_ids": stores,
        }
        run: dict[str, Any] = {
            "id": response_id,
            "project_id": project_id,
            "assistant_id": assistant_id,  # a response has none, unless its prompt is an assistant
            "created_at": created,
            "status": RunStatus.QUEUED.value,
            "model": body.model,
            "instructions": body.instructions,
            "tools": run_tools,
            "metadata": body.metadata or {},
            "temperature": body.temperature,
            "top_p": body.top_p,
            "max_prompt_tokens": None,
            "max_completion_tokens": body.max_output_tokens,
            "truncation_strategy": {"type": "auto", "last_messages": None},
            "tool_choice": run_choice,
            "parallel_tool_calls": body.parallel_tool_calls if body.parallel_tool_calls is not None else True,
            "response_format": response_format,
            "reasoning_effort": None,
            "expires_at": created + self.expires_seconds,
        }
        if owner is not None:
            run |= {"lease_owner": owner, "lease_expires_at": time.time() + self.executor.lease_seconds}
        async with self.db.write() as conn:
            thread_id = await self._thread(conn, project_id, body, conversation_id, created)
            active = await active_run_id(conn, thread_id)
            if active is not None:
                param = "conversation" if conversation_id else "previous_response_id"
                raise InvalidRequest(f"Another response or run ({active}) is in progress in {thread_id}.", param=param)
            await _check_outputs(conn, thread_id, items)
            planned = plan_items(thread_id, items, created)
            await write_items(conn, planned)
            await run_store.insert_run(conn, {**run, "thread_id": thread_id})
            record = ResponseRecord(
                id=response_id,
                project_id=project_id,
                thread_id=thread_id,
                created_at=created,
                previous_response_id=body.previous_response_id,
                conversation_id=conversation_id,
                store=body.store if body.store is not None else True,
                background=bool(body.background),
                input_ids=planned.order,
                request=request,
            )
            await store.insert(conn, record)
            if owner is None:
                await announce(self.db, conn, RunQueued(response_id))
            response = await load_response(conn, record, frozenset(), file_content_url)
            assert response is not None
            if owner is None and record.background:  # kept for `GET ?stream=true` (the stream's are kept by it)
                opened = [
                    ResponseEvent(type=kind, response=response, sequence_number=n)
                    for n, kind in enumerate(("response.created", "response.queued"))
                ]
                await store.add_events(conn, record.id, [kept(e.type, e) for e in opened])
        if owner is None:
            self.notify()
        return record, response

    async def _container(self, project_id: str, body: ResponseCreate, index: int, tool: CodeInterpreterToolIn) -> str:
        """The container a code_interpreter tool runs in. "auto" continues the container of the response
        it follows (`previous_response_id`) while that one is running, else makes a new one."""
        param = f"tools[{index}].container"
        file_ids = tool.container.file_ids if isinstance(tool.container, AutoContainer) else []
        policy = tool.container.network_policy if isinstance(tool.container, AutoContainer) else None
        if policy not in (None, {"type": "disabled"}):
            raise InvalidRequest(
                "Only network_policy {'type': 'disabled'} is supported: the sandbox has no network.",
                param=f"{param}.network_policy",
                code="invalid_value",
            )
        try:
            if isinstance(tool.container, str):
                return (await self.containers.open(project_id, tool.container, file_ids=file_ids)).id
            previous = await self._previous_container(project_id, body.previous_response_id)
            if previous is not None:
                with contextlib.suppress(InvalidRequest, NotFound):  # expired or gone: a new one
                    return (await self.containers.open(project_id, previous, file_ids=file_ids)).id
            return (await self.containers.open(project_id, "auto", file_ids=file_ids)).id
        except (InvalidRequest, NotFound) as exc:
            where = f"{param}.file_ids" if exc.param in ("file_ids", "file_id") else param
            raise type(exc)(exc.message, param=where, code=exc.code) from None

    async def _previous_container(self, project_id: str, previous_id: str | None) -> str | None:
        if previous_id is None:
            return None
        async with self.db.read() as conn:
            previous = await store.find(conn, project_id, previous_id)
        if previous is None:
            return None
        for tool in previous.request.get("tools") or []:
            if tool.get("type") == "code_interpreter" and isinstance(tool.get("container"), str):
                return str(tool["container"])
        return None

    async def _thread(
        self, conn: Connection, project_id: str, body: ResponseCreate, conversation_id: str | None, at: int
    ) -> str:
        """The thread the response goes in, locked (a new one is created)."""
        if conversation_id is not None:
            await conversation_store.get_conversation(conn, project_id, conversation_id)
            await run_store.lock_thread(conn, project_id, conversation_id)
            return conversation_id
        if body.previous_response_id is not None:
            previous = await store.find(conn, project_id, body.previous_response_id)
            if previous is None or not previous.store:
                raise InvalidRequest(
                    f"Previous response with id '{body.previous_response_id}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
            await run_store.lock_thread(conn, project_id, previous.thread_id)
            last = await store.last_in_thread(conn, previous.thread_id)
            if last != previous.id:
                raise InvalidRequest(
                    f"Response '{previous.id}' was already continued (by '{last}'): assistd continues a chain only "
                    "from its newest response (docs/responses.md).",
                    param="previous_response_id",
                    code="invalid_value",
                )
            return previous.thread_id
        thread = ThreadRecord(
            id=ids.new_id(ids.THREAD),
            project_id=project_id,
            created_at=at,
            tool_resources={},
            metadata={},
        )
        await thread_store.insert(conn, thread)
        return thread.id

    async def emitter_for(self, run_id: str) -> Emitter:
        """What a worker that claims or resumes a run sends its events to: a background response's stream,
        its events kept (adapters/response_events.py), numbered on from those kept already."""
        if not is_response(run_id):
            return NullEmitter()
        async with self.db.read() as conn:
            record = await store.get(conn, run_id)
            sequence = await store.next_sequence(conn, run_id)
        if record is None or not record.background:
            return NullEmitter()
        stream = ResponsesStream(self.db, record, KeptEvents(self.db, run_id))
        stream.sequence = sequence
        return stream

    async def streamable(self, project_id: str, response_id: str) -> ResponseRecord:
        """The response whose events `GET ?stream=true` replays: a background one."""
        async with self.db.read() as conn:
            record = await self._record(conn, project_id, response_id)
        if not record.background:
            raise InvalidRequest(
                "Only responses created with background=true can be streamed with GET (docs/responses.md).",
                param="stream",
                code="invalid_value",
            )
        return record

    # --- wait, read ---------------------------------------------------------------------------------

    async def _record(self, conn: Connection, project_id: str, response_id: str) -> ResponseRecord:
        record = await store.find(conn, project_id, response_id)
        if record is None or not record.store:
            raise not_found(KIND, response_id)
        return record

    async def get(self, project_id: str, response_id: str, include: frozenset[str] = frozenset()) -> Response:
        async with self.db.read() as conn:
            record = await self._record(conn, project_id, response_id)
            response = await load_response(conn, record, include, file_content_url)
        if response is None:
            raise not_found(KIND, response_id)
        return response

    async def result(self, record: ResponseRecord, include: frozenset[str] = frozenset()) -> Response:
        """The response as it is now (after its execution: a non-streaming request's answer)."""
        async with self.db.read() as conn:
            response = await load_response(conn, record, include, file_content_url)
        if response is None:
            raise not_found(KIND, record.id)
        return response

    async def delete(self, project_id: str, response_id: str) -> ResponseDeleted:
        async with self.db.write() as conn:
            record = await self._record(conn, project_id, response_id)
            run = await run_store.load_run(conn, response_id)
            if run is not None and run.status not in TERMINAL:
                raise InvalidRequest(f"Response {response_id} is in progress: cancel it, or wait for it to end.")
            await store.remove(conn, response_id)
        return ResponseDeleted(id=record.id)

    async def cancel(self, project_id: str, response_id: str) -> Response:
        async with self.db.read() as conn:
            record = await self._record(conn, project_id, response_id)
        if not record.background:
            raise InvalidRequest("Only responses created with background=true can be cancelled.", param="response_id")
        async with self.db.read() as conn:
            run = await run_store.load_run(conn, response_id)
        if run is not None and run.status not in TERMINAL:

            async def check(conn: Connection) -> None:
                return None

            with contextlib.suppress(InvalidRequest):  # it ended meanwhile: the response as it ended
                await self.executor.lifecycle.cancel(response_id, check, NullEmitter())
            # The executor ends it at its next step (a model call is interrupted at once): answer with the
            # response as it ended, as OpenAI does, unless that takes longer than CANCEL_WAIT.
            deadline = time.monotonic() + CANCEL_WAIT
            while time.monotonic() < deadline:
                async with self.db.read() as conn:
                    now_run = await run_store.load_run(conn, response_id)
                if now_run is None or now_run.status in TERMINAL:
                    break
                await asyncio.sleep(0.05)
        return await self.get(project_id, response_id)

    async def input_items(
        self, project_id: str, response_id: str, params: InputItemListParams, include: frozenset[str]
    ) -> InputItemList:
        async with self.db.read() as conn:
            record = await self._record(conn, project_id, response_id)
            messages, stored = await store.input_items(conn, record.thread_id, record.input_ids)
            names = await conversation_store.file_names(conn, project_id, cited_files(messages))
        by_id: dict[str, ConversationItem] = {m.id: message_item(m, names, include) for m in messages}
        by_id.update({r.id: stored_item(r) for r in stored})
        ordered = [by_id[i] for i in record.input_ids if i in by_id]
        if params.order == "desc":
            ordered.reverse()
        if params.after is not None:
            position = next((k for k, item in enumerate(ordered) if item.id == params.after), None)
            ordered = ordered[position + 1 :] if position is not None else []
        page = ordered[: params.limit]
        return InputItemList(
            data=page,
            first_id=page[0].id if page else None,
            last_id=page[-1].id if page else None,
            has_more=len(ordered) > params.limit,
        )
