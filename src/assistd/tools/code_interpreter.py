"""The code_interpreter tool as the model sees it, and its results as run steps and prompt text.

The model gets a function `code_interpreter({"code": str})`. Clients see a typed
`code_interpreter` tool call whose `input` streams as the code is generated (decoded from the
JSON arguments as they arrive) and whose `outputs` are logs and images. Files the code writes
become `assistants_output` Files; the answer links them as `sandbox:/mnt/data/<name>`.

Running a code_interpreter call: the thread's files in, the sandbox's logs, images and files out.

Inputs are the assistant's and the thread's `tool_resources.code_interpreter.file_ids` (message
attachments for code_interpreter join the thread's). Outputs become Files with purpose
`assistants_output`: each image, and each file the code wrote or changed under the data directory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from assistd.db.database import Database
from assistd.errors import APIError
from assistd.sandbox.base import MOUNT_POINT, Execution, InputFile, Sandbox, SandboxUnavailable
from assistd.sandbox.files import safe_name
from assistd.storage.blobs import BlobStore
from assistd.stores import files as file_store
from assistd.stores.runs import StepRecord, run_resources
from assistd.tools.arguments import Checked, check
from assistd.tools.base import DeltaSink, Json, ToolCall, ToolContext, ToolFailed, run_calls

NAME = "code_interpreter"
LINK_PREFIX = f"sandbox:{MOUNT_POINT}/"
MODEL_LOGS_CHARS = 8_000


def function(data_path: str, file_names: Sequence[str]) -> dict[str, Any]:
    """The function offered to the model; it names the files the code can read."""
    files = ", ".join(f"{data_path}/{n}" if data_path.startswith("/") else n for n in file_names)
    description = (
        "Run Python 3 code in a stateful sandbox (like a Jupyter notebook: variables persist between "
        "calls; numpy, pandas and matplotlib are installed; no internet). The last expression's value "
        "and anything printed is returned; plots shown with matplotlib are displayed to the user. "
        f"Files are in {data_path}. To give the user a file, save it there and link it in your answer "
        f"as {LINK_PREFIX}<name>."
    )
    if files:
        description += f" Files available: {files}."
    return {
        "type": "function",
        "function": {
            "name": NAME,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {"code": {"type": "string", "minLength": 1, "description": "The Python code to run."}},
                "required": ["code"],
            },
        },
    }


def code_of(arguments: str) -> str:
    """The code from the model's arguments, repaired when they are not quite JSON (tools/arguments.py);
    a model that sent bare code instead of JSON is understood."""
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        repaired = check(arguments)
        if isinstance(repaired, Checked) and isinstance(repaired.value.get("code"), str):
            return str(repaired.value["code"])
        return arguments
    if isinstance(parsed, dict) and isinstance(parsed.get("code"), str):
        return str(parsed["code"])
    return arguments if not isinstance(parsed, dict) else ""


_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def partial_code(arguments: str) -> str:
    """The part of `"code"`'s string value decodable so far from incomplete JSON arguments."""
    key = arguments.find('"code"')
    if key < 0:
        return ""
    i = key + len('"code"')
    n = len(arguments)
    while i < n and arguments[i] in " \t\r\n:":
        i += 1
    if i >= n or arguments[i] != '"':
        return ""
    i += 1
    out: list[str] = []
    while i < n:
        ch = arguments[i]
        if ch == '"':
            break
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= n:
            break
        esc = arguments[i + 1]
        if esc == "u":
            if i + 6 > n:
                break
            try:
                code = int(arguments[i + 2 : i + 6], 16)
            except ValueError:
                break
            if 0xD800 <= code < 0xDC00:  # a surrogate pair: wait for the low half
                if i + 12 > n:
                    break
                low = int(arguments[i + 8 : i + 12], 16) if arguments[i + 6 : i + 8] == "\\u" else 0
                out.append(chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)) if low else "\ufffd")
                i += 12 if low else 6
                continue
            out.append(chr(code))
            i += 6
            continue
        out.append(_ESCAPES.get(esc, esc))
        i += 2
    return "".join(out)


def model_output(call: ToolCall) -> str:
    """What the model reads as the tool's result."""
    details = call.details
    parts: list[str] = []
    logs = "".join(o["logs"] for o in details.get("outputs") or [] if o["type"] == "logs")
    if len(logs) > MODEL_LOGS_CHARS:
        logs = logs[: MODEL_LOGS_CHARS // 2] + "\n[… output cut …]\n" + logs[-MODEL_LOGS_CHARS // 2 :]
    if logs:
        parts.append(logs.rstrip("\n"))
    images = sum(1 for o in details.get("outputs") or [] if o["type"] == "image")
    if images:
        parts.append(f"[{images} image(s) displayed to the user]")
    written = call.private.get("files") or {}
    if written:
        parts.append("Files written: " + ", ".join(f"{LINK_PREFIX}{name}" for name in written))
    return "\n".join(parts) or "(no output)"


def written_files(steps: Sequence[StepRecord]) -> dict[str, str]:
    """Every file the run's code wrote, by path under the data directory → File id (newest wins)."""
    found: dict[str, str] = {}
    for call in run_calls(steps, NAME):
        found.update(call.private.get("files") or {})
    return found


def pending_images(steps: Sequence[StepRecord]) -> list[str]:
    """Images made since the run's last message: the next message shows them (as OpenAI's did)."""
    images: list[str] = []
    for step in steps:
        if step.type == "message_creation":
            images = []
            continue
        for call in step.step_details["tool_calls"]:
            if call["type"] == NAME:
                images += [o["image"]["file_id"] for o in call[NAME].get("outputs") or [] if o["type"] == "image"]
    return images


OUTPUT_PURPOSE = "assistants_output"


class WrittenFile(Protocol):
    """A container file the code wrote (services/containers.py `ContainerFile`)."""

    @property
    def id(self) -> str: ...

    @property
    def path(self) -> str: ...  # /mnt/data/...


class ContainerCell(Protocol):
    @property
    def execution(self) -> Execution: ...

    @property
    def files(self) -> Sequence[WrittenFile]: ...


class Containers(Protocol):
    """What the tool needs of the containers service (services/containers.py) for a response's
    code_interpreter with a `container`."""

    async def execute(self, project_id: str, container_id: str, code: str) -> ContainerCell: ...

    async def interrupt(self, container_id: str) -> None: ...

    async def files_of(self, project_id: str, container_id: str) -> Sequence[WrittenFile]: ...


def container_of(tools: Sequence[Json]) -> str | None:
    """The container a run's code_interpreter runs in (a response's, docs/responses.md); None: the
    thread's own session (an Assistants run)."""
    for tool in tools:
        if tool["type"] == NAME:
            container = (tool.get(NAME) or {}).get("container")
            return str(container) if container else None
    return None


@dataclass
class CodeResult:
    outputs: list[dict[str, Any]] = field(default_factory=list)  # the step's logs and images
    files: dict[str, str] = field(default_factory=dict)  # path under the data dir → File id


def input_names(rows: list[tuple[str, str]]) -> dict[str, str]:
    """File id → the name it gets in the data directory: its own name, unless taken or unsafe."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for file_id, filename in rows:
        name = safe_name(filename, file_id)
        if name in taken:
            name = f"{file_id}-{name}"
        taken.add(name)
        names[file_id] = name
    return names


class CodeInterpreterTool:
    """The built-in sandbox: the code streams as `input` (decoded from the JSON arguments as they
    arrive); logs and images come back as `outputs`; the files the code wrote stay private to the call
    (the answer links them)."""

    name = NAME
    client_side = False

    def __init__(
        self, sandbox: Sandbox | None, db: Database, blobs: BlobStore, containers: Containers | None = None
    ) -> None:
        self.sandbox = sandbox
        self.db = db
        self.blobs = blobs
        self.containers = containers

    async def schemas(self, context: ToolContext) -> list[Json]:
        """The function offered to the model when the run has the tool; it names the run's files."""
        if not any(tool["type"] == NAME for tool in context.tools):
            return []
        if self.sandbox is None:
            return [function(MOUNT_POINT, [])]
        container = container_of(context.tools)
        if container is not None and self.containers is not None:
            try:
                files = await self.containers.files_of(context.project_id, container)
            except APIError:  # deleted meanwhile: the call fails when it runs
                files = []
            names = [f.path.removeprefix(MOUNT_POINT + "/") for f in files]
            return [function(self.sandbox.data_path, names)]
        return [function(self.sandbox.data_path, [f.name for f in await self.inputs(context)])]

    def begin(self, call_id: str, name: str, arguments: str, context: ToolContext) -> tuple[ToolCall, list[Json]]:
        call = ToolCall(call_id, NAME, {"input": "", "outputs": []}, {"arguments": ""})
        opening: Json = {"id": call_id, "type": NAME, NAME: {"input": "", "outputs": []}}
        return call, [opening, *self.feed(call, name, arguments)]

    def feed(self, call: ToolCall, name: str | None, arguments: str) -> list[Json]:
        call.private["arguments"] = call.arguments + arguments
        return _extend_input(call, partial_code(call.arguments))

    def replay(self, call: ToolCall, number: int, budget: int) -> tuple[str, str] | None:
        return orjson.dumps({"code": call.details["input"]}).decode(), model_output(call)

    async def run(self, calls: list[ToolCall], context: ToolContext, delta: DeltaSink, cancel: asyncio.Event) -> None:
        """Run the calls in the thread's sandbox. A cancel interrupts the running cell (the run then ends
        cancelled, the session keeps its state)."""
        inputs: list[InputFile] | None = None
        container = container_of(context.tools)
        for call in calls:
            code = code_of(call.arguments)
            for fragment in _extend_input(call, code):
                await delta(call, fragment)
            call.details["input"] = code
            if self.sandbox is None:
                raise ToolFailed("server_error", "code_interpreter is not configured on this server.")
            try:
                if container is not None:
                    call.private["container_id"] = container
                    work = self._in_container(context, container, call.id, code)
                    result = await self._cancellable(work, container, cancel)
                else:
                    inputs = inputs if inputs is not None else await self.inputs(context)
                    work = self._execute(context, call.id, code, inputs)
                    result = await self._cancellable(work, context.thread_id, cancel)
            except SandboxUnavailable as exc:
                raise ToolFailed("server_error", str(exc)) from None
            except APIError as exc:  # the container was deleted or expired meanwhile
                raise ToolFailed("server_error", exc.message) from None
            call.details["outputs"] = result.outputs
            call.private["files"] = result.files
            if result.outputs:
                outputs = [{"index": k, **output} for k, output in enumerate(result.outputs)]
                await delta(call, {"type": NAME, NAME: {"outputs": outputs}})

    async def _cancellable(
        self, work: Coroutine[Any, Any, CodeResult], session: str, cancel: asyncio.Event
    ) -> CodeResult:
        """Await a cell; when the run is cancelled meanwhile, interrupt it (it then returns promptly).
        `session`: the thread's id, or the container's."""
        assert self.sandbox is not None
        task = asyncio.create_task(work)
        cancelled = asyncio.create_task(cancel.wait())
        try:
            await asyncio.wait({task, cancelled}, return_when=asyncio.FIRST_COMPLETED)
            while not task.done():  # asked again until it lands: the session may still be starting
                await self.sandbox.interrupt(session)
                await asyncio.wait({task}, timeout=0.5)
            return await task
        finally:
            cancelled.cancel()

    async def inputs(self, context: ToolContext) -> list[InputFile]:
        async with self.db.read() as conn:
            assistant, thread = await run_resources(conn, context.assistant_id, context.thread_id)
            wanted = list(dict.fromkeys(_file_ids(assistant) + _file_ids(thread)))
            rows = await file_store.of_project(conn, context.project_id, wanted)
        names = input_names([(r.id, r.filename) for r in rows])
        return [InputFile(r.id, names[r.id], self._reader(r.blob_key)) for r in rows]

    def _reader(self, key: str) -> Callable[[], AsyncIterator[bytes]]:
        return lambda: self.blobs.read(key)

    async def _in_container(self, context: ToolContext, container: str, call_id: str, code: str) -> CodeResult:
        """A cell in a response's container: the files it wrote are container files (their ids are what
        the answer's links resolve to: `container_file_citation`s); images are Files as in a thread."""
        assert self.containers is not None
        cell = await self.containers.execute(context.project_id, container, code)
        result = await self._outputs(context, call_id, cell.execution)
        for written in cell.files:
            result.files[written.path.removeprefix(MOUNT_POINT + "/")] = written.id
        return result

    async def _execute(self, context: ToolContext, call_id: str, code: str, inputs: list[InputFile]) -> CodeResult:
        assert self.sandbox is not None
        execution = await self.sandbox.execute(context.thread_id, code, inputs)
        result = await self._outputs(context, call_id, execution)
        for written in execution.files:
            filename = f"{MOUNT_POINT}/{written.path}"
            result.files[written.path] = await self._store(context.project_id, filename, written.data)
        return result

    async def _outputs(self, context: ToolContext, call_id: str, execution: Execution) -> CodeResult:
        """The step's logs (with the sandbox's notice) and images (stored as Files)."""
        result = CodeResult()
        logs = execution.logs
        if execution.notice:  # the user and the model both read it with the output
            separator = "\n" if logs and not logs.endswith("\n") else ""
            logs = f"{logs}{separator}{execution.notice}\n"
        if logs:
            result.outputs.append({"type": "logs", "logs": logs})
        for k, image in enumerate(execution.images):
            file_id = await self._store(context.project_id, f"{call_id}-{k}.png", image)
            result.outputs.append({"type": "image", "image": {"file_id": file_id}})
        return result

    async def _store(self, project_id: str, filename: str, data: bytes) -> str:
        writer = self.blobs.writer()
        try:
            await writer.write(data)
            key = await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        async with self.db.write() as conn:
            made = await file_store.create(
                conn,
                project_id,
                blob_key=key,
                size=len(data),
                filename=filename,
                purpose=OUTPUT_PURPOSE,
                expires_at=None,
                at=int(time.time()),
            )
        return made.id


def _extend_input(call: ToolCall, code: str) -> list[Json]:
    """The delta that brings the call's streamed `input` up to `code` (none when it is not an extension)."""
    sent = call.details["input"]
    if len(code) > len(sent) and code.startswith(sent):
        call.details["input"] = code
        return [{"type": NAME, NAME: {"input": code[len(sent) :]}}]
    return []


def _file_ids(resources: Any) -> list[str]:
    return list(((resources or {}).get(NAME) or {}).get("file_ids") or [])
