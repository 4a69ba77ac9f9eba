"""The Assistants run as the loop's `Recorder`: a run's output becomes messages and run steps in the
thread, and `thread.*` stream events as it streams.

Per model call: answer text opens a message and its message_creation step (images the run's code
made since its last message are shown first); citation markers in the text become file_citation
annotations, `sandbox:` links file_path ones (tools/citations.py), and in the `auto` citations mode
sentences supported by the run's search results gain markers (tools/attribution.py); tool calls share
one tool_calls step whose details stream as deltas. Calls the engine refused (an unknown tool,
unusable arguments) are kept in the private part of the next step written (`"refused"`, tools/base.py),
never shown.
"""

from __future__ import annotations

import base64
import dataclasses
import mimetypes
import time
from dataclasses import dataclass, field

from pydantic import TypeAdapter

from assistd import ids
from assistd.adapters.assistants import to_message, to_step
from assistd.adapters.prompt import conversation, refused_items
from assistd.adapters.stream import assistants_stream
from assistd.db.database import Connection, Database
from assistd.engine.events import Emitter
from assistd.engine.items import Conversation
from assistd.engine.lifecycle import Parts, Shown
from assistd.engine.output import Recorder
from assistd.engine.usage import usage_counters
from assistd.protocol.events import (
    ImageFileRef,
    ImagePartDelta,
    MessageContentDelta,
    MessageDelta,
    MessageDeltaEvent,
    MessageEvent,
    MessageEventName,
    RunStepDelta,
    StepDeltaEvent,
    StepDetailsDelta,
    StepEvent,
    TextDelta,
    TextPartDelta,
    ToolCallDelta,
    ToolCallsDelta,
)
from assistd.providers.base import Usage
from assistd.retrieval.embedding import Embedder
from assistd.storage.blobs import BlobStore
from assistd.stores import messages as message_store
from assistd.stores import runs as run_store
from assistd.stores.messages import MessageRecord
from assistd.stores.runs import Json, RunRecord, StepRecord
from assistd.tools import Toolbox, code_interpreter, file_search
from assistd.tools.attribution import DEFAULT_THRESHOLD, AttributedStream, Attributor, Mode, sources
from assistd.tools.base import REFUSED, RefusedCall, ToolCall, stored_details
from assistd.tools.citations import CitationStream

MAX_INLINE_IMAGE = 20 * 1024 * 1024
# A tool's delta (tools/ speak JSON, below the wire models) checked into its typed wire form.
TOOL_CALL_DELTA: TypeAdapter[ToolCallDelta] = TypeAdapter(ToolCallDelta)


@dataclass
class _Call:
    """One model call's output as stored and shown."""

    citations: AttributedStream
    images: list[str]  # image files the run's code made, shown first
    message: MessageRecord | None = None  # as written: the message and the steps are not read back
    message_step: StepRecord | None = None
    text: list[str] = field(default_factory=list)
    tool_step: StepRecord | None = None
    refused: list[RefusedCall] = field(default_factory=list)  # kept with the tool step

    @property
    def message_id(self) -> str | None:
        return None if self.message is None else self.message.id

    @property
    def message_step_id(self) -> str | None:
        return None if self.message_step is None else self.message_step.id

    @property
    def tool_step_id(self) -> str | None:
        return None if self.tool_step is None else self.tool_step.id

    def content(self) -> list[Json]:
        """The message's content so far: images, then the text and the citations found in it."""
        parts: list[Json] = [{"type": "image_file", "image_file": {"file_id": f}} for f in self.images]
        if self.text or not parts:
            text = {"value": "".join(self.text), "annotations": list(self.citations.annotations)}
            parts.append({"type": "text", "text": text})
        return parts


class AssistantsAdapter:
    """Makes the recorder of each run (the engine's `RunAdapter`)."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        toolbox: Toolbox,
        *,
        citations: Mode = "auto",
        embedder: Embedder | None = None,
        citation_threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.toolbox = toolbox
        self.citations = citations  # ASSISTD_CITATIONS: model / auto / off (tools/attribution.py)
        self.embedder = embedder  # compares answer sentences with search results in `auto`
        self.citation_threshold = citation_threshold

    def recorder(self, run: RunRecord, emitter: Emitter) -> Recorder:
        return AssistantsRecorder(self, run, emitter)

    async def image_url(self, file_id: str) -> str | None:
        async with self.db.read() as conn:
            found = await run_store.image_file(conn, file_id)
        if found is None or found.bytes > MAX_INLINE_IMAGE:
            return None
        data = b"".join([chunk async for chunk in self.blobs.read(found.blob_key)])
        mime = mimetypes.guess_type(found.filename)[0] or "image/png"
        return f"data:{mime};base64,{base64.b64encode(data).decode()}"


class AssistantsRecorder:
    waits_for_outputs = True  # a run waits in requires_action for submit_tool_outputs

    def __init__(self, adapter: AssistantsAdapter, run: RunRecord, emitter: Emitter) -> None:
        self.db = adapter.db
        self.adapter = adapter
        self.run = run
        self.stream = assistants_stream(emitter)
        self.call = _Call(AttributedStream(CitationStream(lambda c, r: None), adapter.citations), [])
        self._next: _Call = self.call
        self._refused: list[RefusedCall] = []  # refused calls no step keeps yet
        self._answer: tuple[Parts, Shown] | None = None  # the answer, written with the run's end

    # --- the conversation ---------------------------------------------------------------------

    async def conversation(self, tool_output_tokens: int) -> Conversation:
        adapter = self.adapter
        async with self.db.read() as conn:
            steps = await run_store.run_steps(conn, self.run.id)
            items = await conversation(
                self.db, conn, self.run, steps, adapter.image_url, adapter.toolbox, tool_output_tokens
            )
        searches = file_search.calls_in_order(steps)
        written = code_interpreter.written_files(steps)
        attributor = None
        if adapter.citations == "auto":
            attributor = Attributor(sources(searches), adapter.embedder, adapter.citation_threshold)
        citations = AttributedStream(
            CitationStream(file_search.resolver(searches), written.get), adapter.citations, attributor
        )
        self._next = _Call(citations, code_interpreter.pending_images(steps))
        if self._refused:  # refused in the last model call, kept with no step yet: the model reads them last
            items = dataclasses.replace(items, turn=(*items.turn, *refused_items(self._refused)))
        return items

    async def begin_call(self) -> None:
        self.call = self._next

    # --- text -----------------------------------------------------------------------------------

    async def text(self, fragment: str) -> None:
        await self._emit_text(await self.call.citations.feed(fragment))

    async def end_text(self) -> None:
        await self._emit_text(await self.call.citations.flush())

    async def _emit_text(self, pieces: list[tuple[str, Json | None]]) -> None:
        """Text fragments as deltas; a citation marker goes whole, with its annotation, in one delta."""
        call = self.call
        for fragment, note in pieces:
            first = call.message_id is None
            if first:
                await self._open_message()
            call.text.append(fragment)
            if self.stream.quiet:
                continue
            text = TextDelta(value=fragment)
            if first:
                text.annotations = []
            if note is not None:
                index = next(i for i, a in enumerate(call.citations.annotations) if a is note)
                text.annotations = [{"index": index, **note}]
            await self._message_delta(TextPartDelta(index=len(call.images), text=text))

    async def _message_delta(self, part: TextPartDelta | ImagePartDelta) -> None:
        if self.stream.quiet:
            return
        assert self.call.message_id is not None
        delta = MessageDelta(id=self.call.message_id, delta=MessageContentDelta(content=[part]))
        await self.stream.send(MessageDeltaEvent(data=delta))

    async def _open_message(self) -> None:
        run, call = self.run, self.call
        at = int(time.time())
        message = MessageRecord(
            id=ids.new_id(ids.MESSAGE),
            thread_id=run.thread_id,
            created_at=at,
            role="assistant",
            status="in_progress",
            content=[],
            attachments=[],
            metadata={},
            incomplete_details=None,
            completed_at=None,
            incomplete_at=None,
            assistant_id=run.assistant_id,
            run_id=run.id,
        )
        details: Json = {"type": "message_creation", "message_creation": {"message_id": message.id}}
        step = self._step("message_creation", self._keep_refused(details))
        async with self.db.write() as conn:
            await run_store.insert_step(conn, _values(step))
            await message_store.insert_run_message(conn, _values(message))
        call.message, call.message_step = message, step
        if self.stream.quiet:  # nobody sees the events: none is built
            return
        await self._step_opened(step)
        opened = to_message(message)
        await self.stream.send(MessageEvent(event="thread.message.created", data=opened))
        await self.stream.send(MessageEvent(event="thread.message.in_progress", data=opened))
        for index, file_id in enumerate(call.images):
            await self._message_delta(ImagePartDelta(index=index, image_file=ImageFileRef(file_id=file_id)))

    async def _step_opened(self, step: StepRecord) -> None:
        if self.stream.quiet:
            return
        shown = to_step(step)
        await self.stream.send(StepEvent(event="thread.run.step.created", data=shown))
        await self.stream.send(StepEvent(event="thread.run.step.in_progress", data=shown))

    def _step(self, kind: str, details: Json) -> StepRecord:
        run = self.run
        return StepRecord(
            id=ids.new_id(ids.STEP),
            run_id=run.id,
            thread_id=run.thread_id,
            assistant_id=run.assistant_id,
            created_at=int(time.time()),
            type=kind,
            status="in_progress",
            step_details=details,
            last_error=None,
            expires_at=run.expires_at,
            expired_at=None,
            cancelled_at=None,
            failed_at=None,
            completed_at=None,
            metadata={},
            usage=None,
        )

    # --- tool calls -----------------------------------------------------------------------------

    async def tool_deltas(self, call: ToolCall, position: int, deltas: list[Json]) -> None:
        if self.call.tool_step_id is None:
            self.call.refused, self._refused = self._refused, []
            step = self._step("tool_calls", stored_details([], self.call.refused))
            async with self.db.write() as conn:
                await run_store.insert_step(conn, _values(step))
            self.call.tool_step = step
            await self._step_opened(step)
        if self.stream.quiet:
            return
        for delta in deltas:
            typed = TOOL_CALL_DELTA.validate_python({"index": position, **delta})
            details = StepDetailsDelta(step_details=ToolCallsDelta(tool_calls=[typed]))
            await self.stream.send(StepDeltaEvent(data=RunStepDelta(id=self.call.tool_step_id, delta=details)))

    async def refuse(self, calls: list[RefusedCall]) -> None:
        self._refused += calls

    def _keep_refused(self, details: Json) -> Json:
        """A new step's details, keeping the refused calls no step keeps yet."""
        if self._refused:
            details = {**details, "private": {REFUSED: [call.stored() for call in self._refused]}}
            self._refused = []
        return details

    def _tool_details(self, calls: list[ToolCall]) -> Json:
        """The tool step's details: its calls, and the refused calls it keeps (this model call's too)."""
        self.call.refused += self._refused
        self._refused = []
        return stored_details(calls, self.call.refused)

    async def tools_ran(self, calls: list[ToolCall], usage: Usage) -> None:
        if self.call.tool_step_id is None:  # every call was refused: the text before them completes
            if self.call.message_id is not None:
                await self._close_text_before_tools(usage)
            return
        if self.call.message_id is not None:
            await self._close_text_before_tools()
        values: Json = {
            "status": "completed",
            "completed_at": int(time.time()),
            "usage": usage_counters(usage),
            "step_details": self._tool_details(calls),
        }
        assert self.call.tool_step is not None
        async with self.db.write() as conn:
            await run_store.update_step(conn, self.call.tool_step.id, values)
        step = self.call.tool_step = dataclasses.replace(self.call.tool_step, **values)
        if self.stream.quiet:
            return
        await self.stream.send(StepEvent(event="thread.run.step.completed", data=to_step(step, include_content=True)))

    async def before_action(self) -> None:
        if self.call.message_id is not None:
            await self._close_text_before_tools()

    def required_action(self, calls: list[ToolCall]) -> Json:
        functions = [c for c in calls if c.type == "function"]  # the ones the client must answer
        shown = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.details["name"], "arguments": c.details["arguments"]},
            }
            for c in functions
        ]
        return {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": shown}}

    def keep_calls(self, calls: list[ToolCall], usage: Usage) -> Parts:
        step_id = self.call.tool_step_id
        details = self._tool_details(calls)

        async def keep(conn: Connection) -> None:
            assert step_id is not None
            await run_store.update_step(conn, step_id, {"step_details": details, "usage": usage_counters(usage)})

        return keep

    # --- the message ----------------------------------------------------------------------------

    def partial(self, usage: Usage | None = None) -> Parts:
        call = self.call
        step_id = call.tool_step_id or call.message_step_id  # the step that ends the model call

        async def save(conn: Connection) -> None:
            if call.message_id is not None and call.text:
                await message_store.update_run_message(conn, call.message_id, {"content": call.content()})
            if usage is not None and step_id is not None:
                await run_store.update_step(conn, step_id, {"usage": usage_counters(usage)})

        return save

    async def answered(self, usage: Usage, incomplete: bool) -> None:
        call = self.call
        at = int(time.time())
        if call.message is None:  # the model said nothing: still answer with an (empty) message
            await self._open_message()
        assert call.message is not None and call.message_step is not None
        values: Json = {"content": call.content()}
        if incomplete:
            values |= {"status": "incomplete", "incomplete_at": at, "incomplete_details": {"reason": "max_tokens"}}
        else:
            values |= {"status": "completed", "completed_at": at}
        step_values: Json = {"status": "completed", "completed_at": at, "usage": usage_counters(usage)}
        message = dataclasses.replace(call.message, **values)
        step = dataclasses.replace(call.message_step, **step_values)

        async def write(conn: Connection) -> None:
            await message_store.update_run_message(conn, message.id, values)
            await run_store.update_step(conn, step.id, step_values)

        async def show() -> None:
            if self.stream.quiet:
                return
            event: MessageEventName = "thread.message.incomplete" if incomplete else "thread.message.completed"
            await self.stream.send(MessageEvent(event=event, data=to_message(message)))
            await self.stream.send(StepEvent(event="thread.run.step.completed", data=to_step(step)))

        self._answer = (write, show)

    def answer(self) -> tuple[Parts, Shown]:
        assert self._answer is not None, "answer() follows answered()"
        return self._answer

    async def _close_text_before_tools(self, usage: Usage | None = None) -> None:
        call = self.call
        assert call.message is not None and call.message_step is not None
        at = int(time.time())
        step_values: Json = {"status": "completed", "completed_at": at}
        if usage is not None:  # no tool step: the message step ends the model call
            step_values["usage"] = usage_counters(usage)
        values: Json = {"content": call.content(), "status": "completed", "completed_at": at}
        async with self.db.write() as conn:
            await message_store.update_run_message(conn, call.message.id, values)
            await run_store.update_step(conn, call.message_step.id, step_values)
        message = call.message = dataclasses.replace(call.message, **values)
        step = call.message_step = dataclasses.replace(call.message_step, **step_values)
        if self.stream.quiet:
            return
        await self.stream.send(MessageEvent(event="thread.message.completed", data=to_message(message)))
        await self.stream.send(StepEvent(event="thread.run.step.completed", data=to_step(step)))


def _values(record: MessageRecord | StepRecord) -> Json:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}
