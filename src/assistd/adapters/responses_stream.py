"""A response's stream: the run's output as the Responses API's semantic events.

`ResponsesStream` is what the response's recorder (adapters/responses.py, an Assistants recorder
underneath) sends its `thread.*` events to, and the engine's `Emitter` for the run: it turns them into
`response.*` events, each with the next `sequence_number`, on the wire sink. The message the run writes
is an output item with one `output_text` part; each tool call is an item of its own (a function call's
arguments stream as deltas once checked, engine/loop.py). The items still open when the run ends
(function calls end a response) are closed from the stored output, then the final event carries the
whole response.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from assistd import ids
from assistd.adapters.conversations import CODE_INTERPRETER, FILE_SEARCH, FUNCTION_CALL, container_citation, tail
from assistd.adapters.responses import file_content_url, load_response
from assistd.adapters.stream import AssistantsStream, EventSink
from assistd.db.database import Database
from assistd.engine.events import ExecutionOver, LifecycleEvent, MessageClosed, RunChanged, RunDeleted, StepClosed
from assistd.protocol import events as wire
from assistd.protocol.conversations import (
    CodeInterpreterCallItem,
    ConversationItem,
    FileSearchCallItem,
    FunctionCallItem,
    MessageItem,
)
from assistd.protocol.events import (
    CodeInterpreterCallDelta,
    FileSearchCallDelta,
    FunctionCallDelta,
    MessageDeltaEvent,
    MessageEvent,
    StepDeltaEvent,
    StepEvent,
    StreamEvent,
    TextPartDelta,
    ToolCallsDelta,
)
from assistd.protocol.responses import (
    AnnotationAddedEvent,
    ArgumentsDeltaEvent,
    ArgumentsDoneEvent,
    CodeDeltaEvent,
    CodeDoneEvent,
    CodeInterpreterCallEvent,
    ContentPartEvent,
    FileSearchCallEvent,
    OutputItemEvent,
    Response,
    ResponseEvent,
    TextDeltaEvent,
    TextDoneEvent,
)
from assistd.stores import containers as container_store
from assistd.stores import conversations as conversation_store
from assistd.stores.responses import ResponseRecord

_END = {
    "completed": "response.completed",
    "requires_action": "response.completed",
    "incomplete": "response.incomplete",
    "failed": "response.failed",
    "expired": "response.failed",
    "cancelled": "response.failed",
}


@dataclass
class _Open:
    """An output item that was added and is not done yet."""

    id: str
    index: int
    kind: str  # message, function_call, file_search_call, code_interpreter_call
    name: str = ""
    text: list[str] = field(default_factory=list)
    annotations: int = 0
    ran: bool = False  # a code_interpreter call whose code is done (its `interpreting` event was sent)


class ResponsesStream(AssistantsStream):
    def __init__(
        self, db: Database, record: ResponseRecord, sink: EventSink | None = None, include: frozenset[str] = frozenset()
    ) -> None:
        super().__init__(sink)
        self.db = db
        self.record = record
        self.include = include
        self.sequence = 0
        self.opened: dict[str, _Open] = {}  # by item id, in the order added
        self.outputs = 0
        self.created: Response | None = None  # the response as the stream opened with it

    def _next(self) -> int:
        number = self.sequence
        self.sequence += 1
        return number

    async def _put(
        self,
        event: ResponseEvent
        | OutputItemEvent
        | ContentPartEvent
        | TextDeltaEvent
        | TextDoneEvent
        | AnnotationAddedEvent
        | ArgumentsDeltaEvent
        | ArgumentsDoneEvent
        | FileSearchCallEvent
        | CodeInterpreterCallEvent
        | CodeDeltaEvent
        | CodeDoneEvent,
    ) -> None:
        await self.sink.emit(event.type, event)

    async def opened_with(self, response: Response) -> None:
        """The stream's first event: the response as created."""
        self.created = response
        await self._put(ResponseEvent(type="response.created", response=response, sequence_number=self._next()))

    async def queued(self) -> None:
        """A background response's second event: it waits for a worker."""
        if self.created is not None:
            await self._put(ResponseEvent(type="response.queued", response=self.created, sequence_number=self._next()))

    # --- thread.* events from the recorder ---------------------------------------------------------

    async def send(self, event: StreamEvent) -> None:
        match event:
            case MessageEvent(event="thread.message.created", data=message):
                await self._add(
                    _Open(message.id, 0, "message"),
                    MessageItem(id=message.id, status="in_progress", role="assistant", content=[]),
                )
                added = self.opened[message.id]
                empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                await self._put(
                    ContentPartEvent(
                        type="response.content_part.added",
                        item_id=added.id,
                        output_index=added.index,
                        content_index=0,
                        part=empty,
                        sequence_number=self._next(),
                    )
                )
            case MessageDeltaEvent(data=delta):
                target = self.opened.get(delta.id)
                if target is None:
                    return
                for piece in delta.delta.content:
                    if isinstance(piece, TextPartDelta):
                        await self._text(target, piece.text.value, piece.text.annotations or [])
            case MessageEvent(event="thread.message.completed" | "thread.message.incomplete", data=message):
                await self._close(message.id)
            case StepDeltaEvent(data=delta):
                details = delta.delta.step_details
                if isinstance(details, ToolCallsDelta):
                    for call in details.tool_calls:
                        await self._tool_delta(delta.id, call)
            case StepEvent(
                event="thread.run.step.completed"
                | "thread.run.step.failed"
                | "thread.run.step.cancelled"
                | "thread.run.step.expired",
                data=step,
            ):
                if step.type == "tool_calls":
                    for item_id in [i for i in self.opened if _in_step(i, step.id)]:
                        await self._close(item_id)
            case _:
                return

    async def _add(self, item: _Open, shown: ConversationItem) -> None:
        item.index = self.outputs
        self.outputs += 1
        self.opened[item.id] = item
        await self._put(
            OutputItemEvent(
                type="response.output_item.added", output_index=item.index, item=shown, sequence_number=self._next()
            )
        )

    async def _text(self, item: _Open, value: str, notes: list[dict[str, object]]) -> None:
        if value:
            item.text.append(value)
            await self._put(
                TextDeltaEvent(
                    item_id=item.id, output_index=item.index, content_index=0, delta=value, sequence_number=self._next()
                )
            )
        for note in notes:
            shown = _annotation(note)
            if shown is None:
                continue
            if str(shown["file_id"]).startswith(ids.CONTAINER_FILE):  # a file the code wrote in a container
                async with self.db.read() as conn:
                    found = await container_store.cited(conn, self.record.project_id, [str(shown["file_id"])])
                shown = container_citation(note, found) or shown
            if shown["type"] == "file_citation":  # the Responses shape names the file
                async with self.db.read() as conn:
                    names = await conversation_store.file_names(conn, self.record.project_id, [str(shown["file_id"])])
                shown["filename"] = names.get(str(shown["file_id"]), "")
            await self._put(
                AnnotationAddedEvent(
                    item_id=item.id,
                    output_index=item.index,
                    content_index=0,
                    annotation_index=item.annotations,
                    annotation=shown,
                    sequence_number=self._next(),
                )
            )
            item.annotations += 1

    async def _tool_delta(self, step_id: str, call: object) -> None:
        if isinstance(call, FunctionCallDelta):
            item_id = f"{FUNCTION_CALL}{tail(step_id)}_{call.index:03d}"
            if item_id not in self.opened:
                name = (call.function.name if call.function else None) or ""
                shown = FunctionCallItem(
                    id=item_id, call_id=call.id or "", name=name, arguments="", status="in_progress"
                )
                await self._add(_Open(item_id, 0, "function_call", name=name), shown)
            item = self.opened[item_id]
            fragment = call.function.arguments if call.function else None
            if fragment:
                item.text.append(fragment)
                await self._put(
                    ArgumentsDeltaEvent(
                        item_id=item_id, output_index=item.index, delta=fragment, sequence_number=self._next()
                    )
                )
        elif isinstance(call, CodeInterpreterCallDelta):
            await self._code_delta(step_id, call)
        elif isinstance(call, FileSearchCallDelta):
            item_id = f"{FILE_SEARCH}{tail(step_id)}_{call.index:03d}"
            if item_id not in self.opened:
                shown_fs = FileSearchCallItem(id=item_id, status="in_progress", queries=[], results=None)
                await self._add(_Open(item_id, 0, "file_search_call"), shown_fs)
                for kind in ("response.file_search_call.in_progress", "response.file_search_call.searching"):
                    await self._put(
                        FileSearchCallEvent(
                            type=kind,
                            item_id=item_id,
                            output_index=self.opened[item_id].index,
                            sequence_number=self._next(),
                        )
                    )

    async def _code_delta(self, step_id: str, call: CodeInterpreterCallDelta) -> None:
        """A code_interpreter call: its code streams as the model writes it; once its outputs come (the cell
        ran) its code is done."""
        item_id = f"{CODE_INTERPRETER}{tail(step_id)}_{call.index:03d}"
        if item_id not in self.opened:
            shown = CodeInterpreterCallItem(
                id=item_id, status="in_progress", container_id=self._container(), code="", outputs=None
            )
            await self._add(_Open(item_id, 0, "code_interpreter_call"), shown)
            await self._put(
                CodeInterpreterCallEvent(
                    type="response.code_interpreter_call.in_progress",
                    item_id=item_id,
                    output_index=self.opened[item_id].index,
                    sequence_number=self._next(),
                )
            )
        item = self.opened[item_id]
        fragment = call.code_interpreter.input
        if fragment and not item.ran:
            item.text.append(fragment)
            await self._put(
                CodeDeltaEvent(item_id=item_id, output_index=item.index, delta=fragment, sequence_number=self._next())
            )
        if call.code_interpreter.outputs:  # (the call's opening delta has empty outputs)
            await self._code_done(item)

    async def _code_done(self, item: _Open) -> None:
        if item.ran:
            return
        item.ran = True
        await self._put(
            CodeDoneEvent(
                item_id=item.id, output_index=item.index, code="".join(item.text), sequence_number=self._next()
            )
        )
        await self._put(
            CodeInterpreterCallEvent(
                type="response.code_interpreter_call.interpreting",
                item_id=item.id,
                output_index=item.index,
                sequence_number=self._next(),
            )
        )

    def _container(self) -> str:
        for tool in self.record.request.get("tools") or []:
            if tool.get("type") == "code_interpreter":
                return str(tool.get("container") or "")
        return ""

    async def _close(self, item_id: str) -> None:
        """The item is done: its final form is read back from the store."""
        item = self.opened.pop(item_id, None)
        if item is None:
            return
        final = await self._stored(item_id)
        if item.kind == "message":
            text = "".join(item.text)
            part: dict[str, object] = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            if isinstance(final, MessageItem) and final.content:
                part = final.content[-1]
                text = str(part.get("text", text))
            await self._put(
                TextDoneEvent(
                    item_id=item_id, output_index=item.index, content_index=0, text=text, sequence_number=self._next()
                )
            )
            await self._put(
                ContentPartEvent(
                    type="response.content_part.done",
                    item_id=item_id,
                    output_index=item.index,
                    content_index=0,
                    part=part,
                    sequence_number=self._next(),
                )
            )
            shown: ConversationItem = (
                final
                if final is not None
                else MessageItem(id=item_id, status="completed", role="assistant", content=[part])
            )
        elif item.kind == "function_call":
            arguments = final.arguments if isinstance(final, FunctionCallItem) else "".join(item.text)
            await self._put(
                ArgumentsDoneEvent(
                    item_id=item_id,
                    output_index=item.index,
                    name=item.name,
                    arguments=arguments,
                    sequence_number=self._next(),
                )
            )
            shown = (
                final
                if final is not None
                else FunctionCallItem(id=item_id, call_id="", name=item.name, arguments=arguments, status="completed")
            )
        elif item.kind == "code_interpreter_call":
            await self._code_done(item)
            await self._put(
                CodeInterpreterCallEvent(
                    type="response.code_interpreter_call.completed",
                    item_id=item_id,
                    output_index=item.index,
                    sequence_number=self._next(),
                )
            )
            shown = (
                final
                if final is not None
                else CodeInterpreterCallItem(
                    id=item_id,
                    status="completed",
                    container_id=self._container(),
                    code="".join(item.text),
                    outputs=None,
                )
            )
        else:
            await self._put(
                FileSearchCallEvent(
                    type="response.file_search_call.completed",
                    item_id=item_id,
                    output_index=item.index,
                    sequence_number=self._next(),
                )
            )
            shown = (
                final
                if final is not None
                else FileSearchCallItem(id=item_id, status="completed", queries=[], results=None)
            )
        await self._put(
            OutputItemEvent(
                type="response.output_item.done", output_index=item.index, item=shown, sequence_number=self._next()
            )
        )

    async def _stored(self, item_id: str) -> ConversationItem | None:
        response = await self._response()
        if response is None:
            return None
        return next((i for i in response.output if i.id == item_id), None)

    async def _response(self) -> Response | None:
        async with self.db.read() as conn:
            return await load_response(conn, self.record, self.include, file_content_url)

    # --- lifecycle events from the engine ----------------------------------------------------------

    async def emit(self, event: LifecycleEvent) -> None:
        match event:
            case RunChanged(run=run):
                if run.status == "in_progress":
                    # Nothing but the status changed since it was created (no store read before the first token).
                    started = self.created.model_copy(update={"status": "in_progress"}) if self.created else None
                    response = started or await self._response()
                    if response is not None:
                        await self._put(
                            ResponseEvent(type="response.in_progress", response=response, sequence_number=self._next())
                        )
                elif run.status in _END:
                    for item_id in list(self.opened):
                        await self._close(item_id)
                    response = await self._response()
                    if response is not None:
                        self.ended = True
                        await self._put(
                            ResponseEvent(type=_END[run.status], response=response, sequence_number=self._next())
                        )
            case StepClosed(step=step):
                for item_id in [i for i in self.opened if _in_step(i, step.id)]:
                    await self._close(item_id)
            case MessageClosed(message=message):
                await self._close(message.id)
            case RunDeleted(run_id=run_id):
                await self.sink.emit(wire.RUN_DELETED, wire.RunDeleted(run_id=run_id))
            case ExecutionOver():
                await self.sink.emit(wire.EXECUTION_OVER, {})


def _in_step(item_id: str, step_id: str) -> bool:
    return item_id.rpartition("_")[0].split("_", 1)[-1] == tail(step_id)


def _annotation(note: dict[str, object]) -> dict[str, object] | None:
    """An Assistants annotation delta in the Responses shape (the file's name is in the done event)."""
    kind = note.get("type")
    ref = note.get(str(kind))
    if kind in ("file_citation", "file_path") and isinstance(ref, dict):
        shown: dict[str, object] = {"type": kind, "file_id": ref.get("file_id"), "index": note.get("start_index", 0)}
        if kind == "file_citation":
            shown["filename"] = ""
        return shown
    return None
