"""Running a code_interpreter call: the thread's files in, the sandbox's logs, images and files out.

Inputs are the assistant's and the thread's `tool_resources.code_interpreter.file_ids` (message
attachments for code_interpreter join the thread's). Outputs become Files with purpose
`assistants_output`: each image, and each file the code wrote or changed under the data directory.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from assistd.db.database import Database
from assistd.runs import code_interpreter
from assistd.runs.store import run_resources
from assistd.sandbox.base import MOUNT_POINT, InputFile, Sandbox
from assistd.sandbox.files import safe_name
from assistd.storage.blobs import BlobStore
from assistd.stores import files as file_store

OUTPUT_PURPOSE = "assistants_output"


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


class CodeTool:
    def __init__(self, sandbox: Sandbox, db: Database, blobs: BlobStore) -> None:
        self.sandbox = sandbox
        self.db = db
        self.blobs = blobs

    async def inputs(self, run: Any) -> list[InputFile]:
        async with self.db.read() as conn:
            assistant, thread = await run_resources(conn, run)
            wanted = list(dict.fromkeys(_file_ids(assistant) + _file_ids(thread)))
            rows = await file_store.of_project(conn, run.project_id, wanted)
        names = input_names([(r.id, r.filename) for r in rows])
        return [InputFile(r.id, names[r.id], self._reader(r.blob_key)) for r in rows]

    def _reader(self, key: str) -> Callable[[], AsyncIterator[bytes]]:
        return lambda: self.blobs.read(key)

    def function(self, inputs: list[InputFile]) -> dict[str, Any]:
        return code_interpreter.function(self.sandbox.data_path, [f.name for f in inputs])

    async def run(self, run: Any, call_id: str, code: str, inputs: list[InputFile]) -> CodeResult:
        execution = await self.sandbox.execute(run.thread_id, code, inputs)
        result = CodeResult()
        logs = execution.logs
        if execution.notice:  # the user and the model both read it with the output
            separator = "\n" if logs and not logs.endswith("\n") else ""
            logs = f"{logs}{separator}{execution.notice}\n"
        if logs:
            result.outputs.append({"type": "logs", "logs": logs})
        for k, image in enumerate(execution.images):
            file_id = await self._store(run.project_id, f"{call_id}-{k}.png", image)
            result.outputs.append({"type": "image", "image": {"file_id": file_id}})
        for written in execution.files:
            filename = f"{MOUNT_POINT}/{written.path}"
            result.files[written.path] = await self._store(run.project_id, filename, written.data)
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


def _file_ids(resources: Any) -> list[str]:
    return list(((resources or {}).get(code_interpreter.NAME) or {}).get("file_ids") or [])
