"""The executor: advances one run until it waits for tool outputs or ends.

Each model call streams; text becomes a message_creation step and a message, tool calls a
tool_calls step. Function calls stop the run at `requires_action`. A cancel, the run's expiry (a
timer, runs/control.py) or the deletion of its thread interrupts whatever the run waits for, a hung
model call included (runs/interrupt.py). Every terminal write (run, step, message) is one transaction.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import mimetypes
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import delete, select, update

from assistd import ids
from assistd.db import tables as t
from assistd.db.database import Connection, Database
from assistd.protocol.messages import Message
from assistd.protocol.runs import RunStep
from assistd.providers.base import Chunk, ProviderError, Usage
from assistd.providers.routing import ModelRouter, Resolved
from assistd.runs import code_interpreter, file_search, store, tokens
from assistd.runs.citations import CitationStream
from assistd.runs.code_tool import CodeResult, CodeTool
from assistd.runs.control import RunSignals
from assistd.runs.events import RUN_DELETED, EndWatch, EventSink, RunDeleted
from assistd.runs.interrupt import Interrupted, InterruptibleStream
from assistd.runs.prompt import Prompt, PromptTooLarge, build_prompt
from assistd.runs.searcher import FileSearcher, SearchFailed
from assistd.sandbox.base import MOUNT_POINT, InputFile, SandboxUnavailable
from assistd.services.threads import to_message
from assistd.storage.blobs import BlobStore
from assistd.stores.messages import MessageRecord

log = logging.getLogger("assistd.runs")

MAX_MODEL_CALLS = 16
MAX_INLINE_IMAGE = 20 * 1024 * 1024


class _Stop(Exception):
    def __init__(self, status: str) -> None:
        self.status = status  # "cancelled" | "expired"


@dataclass
class _Call:
    """One model call's output as it streams in."""

    message_id: str | None = None
    message_step_id: str | None = None
    text: list[str] = field(default_factory=list)
    tool_step_id: str | None = None
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)  # provider index → call
    finish_reason: str | None = None
    usage: Usage | None = None
    citations: CitationStream = field(default_factory=lambda: CitationStream(lambda c, r: None))
    images: list[str] = field(default_factory=list)  # image files the run's code made, shown first

    def content(self) -> list[dict[str, Any]]:
        """The message's content so far: images, then the text and the citations found in it."""
        parts: list[dict[str, Any]] = [{"type": "image_file", "image_file": {"file_id": f}} for f in self.images]
        if self.text or not parts:
            text = {"value": "".join(self.text), "annotations": list(self.citations.annotations)}
            parts.append({"type": "text", "text": text})
        return parts


def _arguments(tool_call: dict[str, Any]) -> str:
    if tool_call["type"] == "function":
        return str(tool_call["function"]["arguments"])
    return str(tool_call.get("_arguments", ""))


def _usage_dict(usage: Usage) -> dict[str, int]:
    return store.usage_counters(usage)


class Executor:
    def __init__(
        self,
        db: Database,
        router: ModelRouter,
        blobs: BlobStore,
        signals: RunSignals,
        lease_seconds: float,
        retriever: file_search.Retriever | None = None,
        code: CodeTool | None = None,
    ) -> None:
        self.searcher = FileSearcher(db, retriever)
        self.code = code
        self.db = db
        self.router = router
        self.blobs = blobs
        self.signals = signals
        self.lease_seconds = lease_seconds

    async def execute(self, run_id: str, owner: str, sink: EventSink) -> None:
        """Execute a run `owner` holds the lease of. The run worker's leased queue (engine/queue.py)
        renews that lease while this runs, passes on cancels made through other replicas, and
        releases it after."""
        cancel = self.signals.register(run_id)
        watch = EndWatch(sink)
        try:
            await self._execute(run_id, watch, cancel)
            if not watch.ended and await self._deleted(run_id):
                await self._close_deleted(run_id, watch)
        except Exception as exc:  # the run must end, whatever happened
            if await self._deleted(run_id):  # its thread was deleted under it: not an internal error
                await self._close_deleted(run_id, watch)
            else:
                log.exception("run execution failed", extra={"run_id": run_id})
                await self.fail(run_id, watch, "server_error", f"The run failed unexpectedly: {type(exc).__name__}.")
        finally:
            self.signals.unregister(run_id)

    async def _deleted(self, run_id: str) -> bool:
        async with self.db.read() as conn:
            return (await conn.execute(select(t.runs.c.id).where(t.runs.c.id == run_id))).first() is None

    async def _close_deleted(self, run_id: str, watch: EndWatch) -> None:
        """The run's thread was deleted while it ran (its rows went with it): drop what the run wrote
        after the deletion, and let its stream close it."""
        if watch.thread_id is not None:  # else the run had not started: it wrote nothing
            async with self.db.write() as conn:
                await conn.execute(
                    delete(t.messages).where(t.messages.c.thread_id == watch.thread_id, t.messages.c.run_id == run_id)
                )
                await conn.execute(delete(t.run_steps).where(t.run_steps.c.run_id == run_id))
        log.info("run ended: its thread was deleted", extra={"run_id": run_id})
        if not watch.ended:
            await watch.emit(RUN_DELETED, RunDeleted(run_id=run_id))

    async def _execute(self, run_id: str, sink: EventSink, cancel: asyncio.Event) -> None:
        async with self.db.write() as conn:
            run = await store.load_run(conn, run_id)
            if run is None:
                return
            if run.status == "queued":
                moved = await store.transition(
                    conn, run_id, ["queued"], "in_progress", started_at=run.started_at or int(time.time())
                )
                run = await store.load_run(conn, run_id)
                assert run is not None
            else:
                moved = False
        if run.status == "cancelling":
            await self.end_early(run_id, sink, "cancelled")
            return
        if not moved:
            return
        self.signals.expire_at(run_id, run.expires_at)  # an in_progress run expires whatever it waits for
        await sink.emit("thread.run.in_progress", store.to_run(run))
        resolved = self.router.resolve(run.model)
        if resolved is None:
            await self.fail(run_id, sink, "invalid_prompt", f"No model backend serves the model '{run.model}'.")
            return
        totals = store.usage_totals(run.usage)
        code_inputs: list[InputFile] = []
        code_function = None
        if any(tool["type"] == code_interpreter.NAME for tool in run.tools):
            if self.code is not None:
                code_inputs = await self.code.inputs(run)
                code_function = self.code.function(code_inputs)
            else:
                code_function = code_interpreter.function(MOUNT_POINT, [])
        for _ in range(MAX_MODEL_CALLS):
            if cancel.is_set():
                await self.end_early(run_id, sink, self.signals.stop_reason(run_id))
                return
            try:
                async with self.db.read() as conn:
                    prompt = await build_prompt(
                        conn,
                        run,
                        upstream_model=resolved.model,
                        context_window=resolved.provider.context_window,
                        prompt_tokens_used=totals["prompt_tokens"],
                        completion_tokens_used=totals["completion_tokens"],
                        load_image=self._image_url,
                        code_function=code_function,
                    )
                    steps = await store.run_steps(conn, run_id)
                    searches = file_search.calls_in_order(steps)
            except PromptTooLarge:
                await self._finish(
                    run_id, sink, "incomplete", totals, incomplete_details={"reason": "max_prompt_tokens"}
                )
                return
            written = code_interpreter.written_files(steps)
            call = _Call(
                citations=CitationStream(file_search.resolver(searches), written.get),
                images=code_interpreter.pending_images(steps),
            )
            try:
                await self._call_model(run, resolved, prompt, call, sink, cancel)
            except _Stop as stop:
                await self.end_early(run_id, sink, stop.status, call)
                return
            except ProviderError as exc:
                await self.fail(run_id, sink, exc.code, exc.message, call)
                return
            usage = call.usage or Usage(
                prompt.tokens,
                tokens.count_text("".join(call.text))
                + sum(tokens.count_text(_arguments(c)) for c in call.tool_calls.values()),
            )
            store.add_usage(totals, usage)
            if call.tool_calls:
                kinds = {c["type"] for c in call.tool_calls.values()}
                if file_search.NAME in kinds and not await self._search(run, call, totals, sink, cancel):
                    return
                if code_interpreter.NAME in kinds and not await self._run_code(
                    run, call, totals, sink, code_inputs, cancel
                ):
                    return
                if cancel.is_set():  # during a tool: the step keeps what the tool did, and ends with the run
                    async with self.db.write() as conn:
                        await self._store_tool_calls(conn, call, usage)
                    await self.end_early(run_id, sink, self.signals.stop_reason(run_id), call)
                    return
                if "function" not in kinds:
                    await self._complete_tool_step(run, call, usage, sink)
                    continue  # the model answers with the results in view
                await self._require_action(run, call, usage, totals, sink)
                return
            hit_limit = call.finish_reason == "length" and run.max_completion_tokens is not None
            await self._complete_message(run, call, usage, totals, sink, incomplete=hit_limit)
            return
        await self.fail(run_id, sink, "server_error", f"The run made more than {MAX_MODEL_CALLS} model calls.")

    # --- one model call -------------------------------------------------------------------------

    async def _call_model(
        self, run: Any, resolved: Resolved, prompt: Prompt, call: _Call, sink: EventSink, cancel: asyncio.Event
    ) -> None:
        request = dataclasses.replace(prompt.request, deadline=run.expires_at)  # no retry waits past expiry
        # A cancel or the expiry timer (both set `cancel`) interrupts the call wherever it waits.
        stream: InterruptibleStream[Chunk] = InterruptibleStream(resolved.provider.complete(request), cancel)
        try:
            async for chunk in stream:
                if chunk.text:
                    await self._on_text(run, call, chunk.text, sink)
                for delta in chunk.tool_calls:
                    await self._on_tool_delta(run, call, delta.index, delta.id, delta.name, delta.arguments, sink)
                if chunk.finish_reason:
                    call.finish_reason = chunk.finish_reason
                if chunk.usage:
                    call.usage = chunk.usage
            await self._emit_text(run, call, call.citations.flush(), sink)
        except Interrupted:
            raise _Stop(self.signals.stop_reason(run.id)) from None
        finally:
            await stream.aclose()

    async def _on_text(self, run: Any, call: _Call, text: str, sink: EventSink) -> None:
        await self._emit_text(run, call, call.citations.feed(text), sink)

    async def _emit_text(
        self, run: Any, call: _Call, pieces: list[tuple[str, dict[str, Any] | None]], sink: EventSink
    ) -> None:
        """Text fragments as deltas; a citation marker goes whole, with its annotation, in one delta."""
        for fragment, note in pieces:
            first = call.message_id is None
            if first:
                await self._open_message(run, call, sink)
            call.text.append(fragment)
            part: dict[str, Any] = {"index": len(call.images), "type": "text", "text": {"value": fragment}}
            if first:
                part["text"]["annotations"] = []
            if note is not None:
                part["text"]["annotations"] = [{"index": len(call.citations.annotations) - 1, **note}]
            await sink.emit(
                "thread.message.delta",
                {"id": call.message_id, "object": "thread.message.delta", "delta": {"content": [part]}},
            )

    async def _open_message(self, run: Any, call: _Call, sink: EventSink) -> None:
        at = int(time.time())
        message = {
            "id": ids.new_id(ids.MESSAGE),
            "thread_id": run.thread_id,
            "created_at": at,
            "role": "assistant",
            "status": "in_progress",
            "content": [],
            "attachments": [],
            "metadata": {},
            "incomplete_details": None,
            "completed_at": None,
            "incomplete_at": None,
            "assistant_id": run.assistant_id,
            "run_id": run.id,
        }
        step = self._step_row(
            run, "message_creation", {"type": "message_creation", "message_creation": {"message_id": message["id"]}}
        )
        async with self.db.write() as conn:
            await conn.execute(t.run_steps.insert().values(**step))
            await conn.execute(t.messages.insert().values(**message))
        call.message_id, call.message_step_id = message["id"], step["id"]
        step_obj = RunStep(**step)
        await sink.emit("thread.run.step.created", step_obj)
        await sink.emit("thread.run.step.in_progress", step_obj)
        await sink.emit("thread.message.created", Message(**message))
        await sink.emit("thread.message.in_progress", Message(**message))
        for index, file_id in enumerate(call.images):
            image = {"index": index, "type": "image_file", "image_file": {"file_id": file_id}}
            await sink.emit(
                "thread.message.delta",
                {"id": message["id"], "object": "thread.message.delta", "delta": {"content": [image]}},
            )

    async def _on_tool_delta(
        self, run: Any, call: _Call, index: int, call_id: str | None, name: str | None, args: str, sink: EventSink
    ) -> None:
        if call.tool_step_id is None:
            step = self._step_row(run, "tool_calls", {"type": "tool_calls", "tool_calls": []})
            async with self.db.write() as conn:
                await conn.execute(t.run_steps.insert().values(**step))
            call.tool_step_id = step["id"]
            step_obj = RunStep(**step)
            await sink.emit("thread.run.step.created", step_obj)
            await sink.emit("thread.run.step.in_progress", step_obj)
        slot = call.tool_calls.get(index)
        if slot is None and name == file_search.NAME:
            # The built-in tool: typed file_search for clients; the queries stay private to the step.
            _, ranking = file_search.settings_of(run.tools)
            slot = {
                "id": ids.new_id(ids.CALL),
                "type": file_search.NAME,
                file_search.NAME: {"ranking_options": ranking, "results": []},
                "_arguments": args,
            }
            call.tool_calls[index] = slot
            delta: dict[str, Any] = {
                "index": len(call.tool_calls) - 1,
                "id": slot["id"],
                "type": file_search.NAME,
                file_search.NAME: {"ranking_options": ranking, "results": []},
            }
        elif slot is not None and slot["type"] == file_search.NAME:
            slot["_arguments"] += args
            return
        elif slot is None and name == code_interpreter.NAME:
            slot = {
                "id": ids.new_id(ids.CALL),
                "type": code_interpreter.NAME,
                code_interpreter.NAME: {"input": "", "outputs": []},
                "_arguments": "",
            }
            call.tool_calls[index] = slot
            first = {"input": "", "outputs": []}
            opening = {"id": slot["id"], "type": code_interpreter.NAME, "code_interpreter": first}
            await self._emit_tool_delta(call, opening, index, sink)
            await self._stream_code(call, index, args, sink)
            return
        elif slot is not None and slot["type"] == code_interpreter.NAME:
            await self._stream_code(call, index, args, sink)
            return
        elif slot is None:
            # Our own ids: upstream ids vary by backend and are never shown to clients.
            slot = {
                "id": ids.new_id(ids.CALL),
                "type": "function",
                "function": {"name": name or "", "arguments": "", "output": None},
            }
            call.tool_calls[index] = slot
            slot["function"]["arguments"] += args
            delta = {
                "index": len(call.tool_calls) - 1,
                "id": slot["id"],
                "type": "function",
                "function": {"name": slot["function"]["name"], "arguments": args, "output": None},
            }
        else:
            if name and not slot["function"]["name"]:
                slot["function"]["name"] = name
            slot["function"]["arguments"] += args
            if not args:
                return
            position = list(call.tool_calls).index(index)
            delta = {"index": position, "type": "function", "function": {"arguments": args}}
        await self._sink_tool_delta(call, delta, sink)

    async def _emit_tool_delta(self, call: _Call, delta: dict[str, Any], index: int, sink: EventSink) -> None:
        await self._sink_tool_delta(call, {"index": list(call.tool_calls).index(index), **delta}, sink)

    async def _sink_tool_delta(self, call: _Call, delta: dict[str, Any], sink: EventSink) -> None:
        await sink.emit(
            "thread.run.step.delta",
            {
                "id": call.tool_step_id,
                "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": [delta]}},
            },
        )

    async def _stream_code(self, call: _Call, index: int, args: str, sink: EventSink) -> None:
        """The code streams as `input` fragments, decoded from the JSON arguments as they arrive."""
        slot = call.tool_calls[index]
        slot["_arguments"] += args
        await self._extend_input(call, index, code_interpreter.partial_code(slot["_arguments"]), sink)

    async def _extend_input(self, call: _Call, index: int, code: str, sink: EventSink) -> None:
        details = call.tool_calls[index][code_interpreter.NAME]
        sent = details["input"]
        if len(code) > len(sent) and code.startswith(sent):
            details["input"] = code
            fragment = {"type": code_interpreter.NAME, "code_interpreter": {"input": code[len(sent) :]}}
            await self._emit_tool_delta(call, fragment, index, sink)

    def _step_row(self, run: Any, kind: str, details: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": ids.new_id(ids.STEP),
            "run_id": run.id,
            "thread_id": run.thread_id,
            "assistant_id": run.assistant_id,
            "created_at": int(time.time()),
            "type": kind,
            "status": "in_progress",
            "step_details": details,
            "last_error": None,
            "expires_at": run.expires_at,
            "expired_at": None,
            "cancelled_at": None,
            "failed_at": None,
            "completed_at": None,
            "metadata": {},
            "usage": None,
        }

    async def _image_url(self, file_id: str) -> str | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(t.files).where(t.files.c.id == file_id))).first()
        if row is None or row.bytes > MAX_INLINE_IMAGE:
            return None
        data = b"".join([chunk async for chunk in self.blobs.read(row.blob_key)])
        mime = mimetypes.guess_type(row.filename)[0] or "image/png"
        return f"data:{mime};base64,{base64.b64encode(data).decode()}"

    # --- outcomes -------------------------------------------------------------------------------

    async def _save_partial(self, conn: Connection, call: _Call | None) -> None:
        if call is not None and call.message_id is not None and call.text:
            content = call.content()
            await conn.execute(update(t.messages).where(t.messages.c.id == call.message_id).values(content=content))

    async def _complete_message(
        self, run: Any, call: _Call, usage: Usage, totals: dict[str, int], sink: EventSink, *, incomplete: bool
    ) -> None:
        at = int(time.time())
        if call.message_id is None:  # the model said nothing: still answer with an (empty) message
            await self._open_message(run, call, sink)
        content = call.content()
        message_values: dict[str, Any] = {"content": content}
        if incomplete:
            message_values |= {
                "status": "incomplete",
                "incomplete_at": at,
                "incomplete_details": {"reason": "max_tokens"},
            }
        else:
            message_values |= {"status": "completed", "completed_at": at}
        async with self.db.write() as conn:
            await conn.execute(update(t.messages).where(t.messages.c.id == call.message_id).values(**message_values))
            await conn.execute(
                update(t.run_steps)
                .where(t.run_steps.c.id == call.message_step_id)
                .values(status="completed", completed_at=at, usage=_usage_dict(usage))
            )
            message = (await conn.execute(select(t.messages).where(t.messages.c.id == call.message_id))).one()
            step = (await conn.execute(select(t.run_steps).where(t.run_steps.c.id == call.message_step_id))).one()
        await sink.emit(
            "thread.message.incomplete" if incomplete else "thread.message.completed",
            to_message(MessageRecord.from_row(message)),
        )
        await sink.emit("thread.run.step.completed", store.to_step(step))
        if incomplete:
            await self._finish(
                run.id, sink, "incomplete", totals, incomplete_details={"reason": "max_completion_tokens"}
            )
        else:
            await self._finish(run.id, sink, "completed", totals)

    async def _search(
        self, run: Any, call: _Call, totals: dict[str, int], sink: EventSink, cancel: asyncio.Event
    ) -> bool:
        """Run the model's file_search calls; False when the run had to end instead."""
        slots = [slot for slot in call.tool_calls.values() if slot["type"] == file_search.NAME]
        try:
            await self.searcher.search(run, slots, cancel)
        except SearchFailed as exc:
            await self.fail(run.id, sink, exc.code, str(exc), call, totals)
            return False
        return True

    async def _run_code(
        self,
        run: Any,
        call: _Call,
        totals: dict[str, int],
        sink: EventSink,
        inputs: list[InputFile],
        cancel: asyncio.Event,
    ) -> bool:
        """Run the model's code_interpreter calls in the thread's sandbox; False when the run had to end.
        A cancel interrupts the running cell (the run then ends cancelled, the session keeps its state)."""
        for index, slot in call.tool_calls.items():
            if slot["type"] != code_interpreter.NAME:
                continue
            code = code_interpreter.code_of(slot["_arguments"])
            await self._extend_input(call, index, code, sink)
            slot[code_interpreter.NAME]["input"] = code
            try:
                if self.code is None:
                    raise SandboxUnavailable("code_interpreter is not configured on this server.")
                result = await self._cancellable(self.code.run(run, slot["id"], code, inputs), run, cancel)
            except SandboxUnavailable as exc:
                await self.fail(run.id, sink, "server_error", str(exc), call, totals)
                return False
            slot[code_interpreter.NAME]["outputs"] = result.outputs
            slot["_files"] = result.files
            if result.outputs:
                outputs = [{"index": k, **output} for k, output in enumerate(result.outputs)]
                await self._emit_tool_delta(
                    call, {"type": code_interpreter.NAME, "code_interpreter": {"outputs": outputs}}, index, sink
                )
        return True

    async def _cancellable(self, work: Coroutine[Any, Any, CodeResult], run: Any, cancel: asyncio.Event) -> CodeResult:
        """Await a cell; when the run is cancelled meanwhile, interrupt it (it then returns promptly)."""
        assert self.code is not None
        task = asyncio.create_task(work)
        cancelled = asyncio.create_task(cancel.wait())
        try:
            await asyncio.wait({task, cancelled}, return_when=asyncio.FIRST_COMPLETED)
            while not task.done():  # asked again until it lands: the session may still be starting
                await self.code.sandbox.interrupt(run.thread_id)
                await asyncio.wait({task}, timeout=0.5)
            return await task
        finally:
            cancelled.cancel()

    async def _complete_tool_step(self, run: Any, call: _Call, usage: Usage, sink: EventSink) -> None:
        at = int(time.time())
        if call.message_id is not None:
            await self._close_text_before_tools(run, call, sink)
        calls = [call.tool_calls[i] for i in call.tool_calls]
        async with self.db.write() as conn:
            await conn.execute(
                update(t.run_steps)
                .where(t.run_steps.c.id == call.tool_step_id)
                .values(
                    status="completed",
                    completed_at=at,
                    usage=_usage_dict(usage),
                    step_details={"type": "tool_calls", "tool_calls": calls},
                )
            )
            step = (await conn.execute(select(t.run_steps).where(t.run_steps.c.id == call.tool_step_id))).one()
        await sink.emit("thread.run.step.completed", store.to_step(step, include_content=True))

    async def _require_action(
        self, run: Any, call: _Call, usage: Usage, totals: dict[str, int], sink: EventSink
    ) -> None:
        offered = {tool["function"]["name"] for tool in run.tools if tool["type"] == "function"}
        everything = [call.tool_calls[i] for i in call.tool_calls]
        calls = [c for c in everything if c["type"] == "function"]  # the ones the client must answer
        for tool_call in calls:
            fn = tool_call["function"]
            if fn["name"] not in offered:
                await self.fail(
                    run.id,
                    sink,
                    "server_error",
                    f"The model called a function that is not offered: '{fn['name']}'.",
                    call,
                    totals,
                )
                return
            try:
                orjson.loads(fn["arguments"] or "{}")
            except orjson.JSONDecodeError:
                await self.fail(
                    run.id,
                    sink,
                    "server_error",
                    f"The model produced invalid JSON arguments for '{fn['name']}'.",
                    call,
                    totals,
                )
                return
        if call.message_id is not None:
            await self._close_text_before_tools(run, call, sink)
        required = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {
                "tool_calls": [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]},
                    }
                    for c in calls
                ]
            },
        }
        async with self.db.write() as conn:
            await self._store_tool_calls(conn, call, usage)
            moved = await store.transition(
                conn, run.id, ["in_progress"], "requires_action", required_action=required, usage=totals
            )
            row = await store.load_run(conn, run.id)
        assert row is not None
        if moved:
            await sink.emit("thread.run.requires_action", store.to_run(row))
        elif row.status == "cancelling":
            await self.end_early(run.id, sink, "cancelled")

    async def _store_tool_calls(self, conn: Connection, call: _Call, usage: Usage) -> None:
        calls = [call.tool_calls[i] for i in call.tool_calls]
        await conn.execute(
            update(t.run_steps)
            .where(t.run_steps.c.id == call.tool_step_id)
            .values(step_details={"type": "tool_calls", "tool_calls": calls}, usage=_usage_dict(usage))
        )

    async def _close_text_before_tools(self, run: Any, call: _Call, sink: EventSink) -> None:
        at = int(time.time())
        content = call.content()
        async with self.db.write() as conn:
            await conn.execute(
                update(t.messages)
                .where(t.messages.c.id == call.message_id)
                .values(content=content, status="completed", completed_at=at)
            )
            await conn.execute(
                update(t.run_steps)
                .where(t.run_steps.c.id == call.message_step_id)
                .values(status="completed", completed_at=at)
            )
            message = (await conn.execute(select(t.messages).where(t.messages.c.id == call.message_id))).one()
            step = (await conn.execute(select(t.run_steps).where(t.run_steps.c.id == call.message_step_id))).one()
        await sink.emit("thread.message.completed", to_message(MessageRecord.from_row(message)))
        await sink.emit("thread.run.step.completed", store.to_step(step))

    async def _finish(self, run_id: str, sink: EventSink, status: str, totals: dict[str, int], **values: Any) -> None:
        extra = {"completed_at": int(time.time())} if status == "completed" else {}
        async with self.db.write() as conn:
            moved = await store.transition(conn, run_id, ["in_progress"], status, usage=totals, **extra, **values)
            if not moved:  # a cancel won the race
                row = await store.load_run(conn, run_id)
                if row is not None and row.status == "cancelling":
                    moved = await store.transition(
                        conn, run_id, ["cancelling"], status, usage=totals, **extra, **values
                    )
            row = await store.load_run(conn, run_id)
        if moved and row is not None:
            await sink.emit(f"thread.run.{status}", store.to_run(row))

    async def fail(
        self,
        run_id: str,
        sink: EventSink,
        code: str,
        message: str,
        call: _Call | None = None,
        totals: dict[str, int] | None = None,
    ) -> None:
        """`totals`: the run's usage including the call that failed, when it produced any."""
        error = {"code": code, "message": message}
        usage = {"usage": totals} if totals is not None else {}
        async with self.db.write() as conn:
            await self._save_partial(conn, call)
            await conn.execute(
                update(t.run_steps)
                .where(t.run_steps.c.run_id == run_id, t.run_steps.c.status == "in_progress")
                .values(last_error=error)
            )
            steps, messages = await store.close_open_parts(conn, run_id, "failed", "run_failed")
            moved = await store.transition(
                conn,
                run_id,
                ["queued", "in_progress", "cancelling"],
                "failed",
                failed_at=int(time.time()),
                last_error=error,
                required_action=None,
                **usage,
            )
            row = await store.load_run(conn, run_id)
        if moved:  # the one line an operator sees per failed run
            log.warning("run failed", extra={"run_id": run_id, "code": code, "error": message})
        if moved and row is not None:
            await self._emit_closed(sink, steps, messages, "failed")
            await sink.emit("thread.run.failed", store.to_run(row))

    async def _emit_closed(self, sink: EventSink, steps: list[Any], messages: list[Any], step_status: str) -> None:
        """The open message and steps end with the run: the stream says so before the run's last event."""
        for message in messages:
            await sink.emit("thread.message.incomplete", to_message(message))
        for step in steps:
            await sink.emit(f"thread.run.step.{step_status}", store.to_step(step))

    async def end_early(self, run_id: str, sink: EventSink, status: str, call: _Call | None = None) -> None:
        """Cancelled or expired: close the run's open steps and messages with it."""
        at = int(time.time())
        reason = {"cancelled": "run_cancelled", "expired": "run_expired"}[status]
        sources = ["cancelling", "in_progress", "queued", "requires_action"]
        async with self.db.write() as conn:
            await self._save_partial(conn, call)
            steps, messages = await store.close_open_parts(conn, run_id, status, reason)
            run_values = {"cancelled_at": at} if status == "cancelled" else {}
            moved = await store.transition(conn, run_id, sources, status, required_action=None, **run_values)
            row = await store.load_run(conn, run_id)
        if moved and row is not None:
            await self._emit_closed(sink, steps, messages, status)
            await sink.emit(f"thread.run.{status}", store.to_run(row))
