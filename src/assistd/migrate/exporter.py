"""`assistd export`: a project's data in the `assistants-thread-export/v1` layout (bundle.py), the wire
objects exactly as the API serves them, plus the bytes of every referenced file under `files/<id>`.

Unlike OpenAI, assistd can list its threads: all of them, those named, or those whose metadata has
given values. Steps are written with their file_search result content, so nothing is lost on the way
back in; `import(export(x))` reads back as `x`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from assistd import __version__
from assistd.adapters.assistants import to_message, to_run, to_step
from assistd.db.database import Database
from assistd.migrate.bundle import MANIFEST_SCHEMA, THREAD_SCHEMA
from assistd.services.assistants import to_assistant
from assistd.services.files import to_file
from assistd.services.threads import to_thread
from assistd.storage.blobs import BlobStore
from assistd.stores import transfer
from assistd.stores.messages import MessageRecord
from assistd.stores.runs import StepRecord

Json = dict[str, Any]
Progress = Callable[[int, int], None]


@dataclass
class ExportSummary:
    assistants: int
    threads: int
    messages: int
    runs: int
    files: int


def _wire(model: BaseModel) -> Json:
    """The object as the API's response body has it."""
    data: Json = json.loads(model.__pydantic_serializer__.to_json(model))
    return data


def _write(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def referenced_files(messages: Sequence[MessageRecord], steps: Sequence[StepRecord]) -> list[str]:
    """Every file id a thread's messages (attachments, images, annotations) and code_interpreter's
    image outputs name."""
    found: set[str] = set()
    for message in messages:
        for attachment in message.attachments or []:
            found.add(attachment["file_id"])
        for part in message.content:
            if part["type"] == "image_file":
                found.add(part["image_file"]["file_id"])
            elif part["type"] == "text":
                for note in part["text"].get("annotations") or []:
                    file_id = (note.get(note.get("type")) or {}).get("file_id")
                    if isinstance(file_id, str):
                        found.add(file_id)
    for step in steps:
        for call in step.step_details.get("tool_calls") or []:
            for output in (call.get("code_interpreter") or {}).get("outputs") or []:
                if output.get("type") == "image":
                    found.add(output["image"]["file_id"])
    return sorted(found)


class Exporter:
    def __init__(self, db: Database, blobs: BlobStore, project_id: str) -> None:
        self.db = db
        self.blobs = blobs
        self.project_id = project_id

    async def run(
        self,
        out: Path,
        *,
        thread_ids: Sequence[str] | None = None,
        metadata: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> ExportSummary:
        (out / "threads").mkdir(parents=True, exist_ok=True)
        async with self.db.read() as conn:
            assistants = [_wire(to_assistant(r)) for r in await transfer.assistants(conn, self.project_id)]
            threads = await transfer.threads(conn, self.project_id, thread_ids)
        if metadata:
            threads = [t for t in threads if all(t.metadata.get(k) == v for k, v in metadata.items())]
        _write(out / "assistants.json", assistants)
        failed = [] if thread_ids is None else sorted(set(thread_ids) - {t.id for t in threads})
        counts = ExportSummary(len(assistants), 0, 0, 0, 0)
        written_files: set[str] = set()
        for done, thread in enumerate(threads, start=1):
            async with self.db.read() as conn:
                messages = await transfer.messages(conn, thread.id)
                runs = await transfer.runs(conn, thread.id)
                steps = await transfer.steps(conn, thread.id)
                files = await transfer.files(conn, self.project_id, referenced_files(messages, steps))
            by_run: dict[str, list[Json]] = {}
            for step in steps:
                by_run.setdefault(step.run_id, []).append(_wire(to_step(step, include_content=True)))
            record = {
                "export_schema": THREAD_SCHEMA,
                "thread_id": thread.id,
                "exported_at": _now(),
                "thread": _wire(to_thread(thread)),
                "messages": [_wire(to_message(m)) for m in messages],
                "runs": [{**_wire(to_run(r)), "steps": by_run.get(r.id, [])} for r in runs],
                "files": {f.id: _wire(to_file(f)) for f in files},
                "errors": [],
            }
            _write(out / "threads" / f"{thread.id}.json", record)
            for f in files:
                if f.id not in written_files:
                    await self._copy_bytes(f.blob_key, out / "files" / f.id)
                    written_files.add(f.id)
            counts.threads += 1
            counts.messages += len(messages)
            counts.runs += len(runs)
            if progress is not None:
                progress(done, len(threads))
        counts.files = len(written_files)
        manifest = {
            "export_schema": MANIFEST_SCHEMA,
            "script_version": f"assistd {__version__}",
            "exported_at": _now(),
            "endpoint": "assistd",
            "base_url": None,
            "assistants_count": len(assistants),
            "threads_requested": len(thread_ids) if thread_ids is not None else len(threads),
            "threads_exported": len(threads),
            "threads_failed": [{"thread_id": tid, "error": "not_found"} for tid in failed],
            "notes": [
                f"Written by assistd at unix time {int(time.time())}; files/ holds the bytes of every file named."
            ],
        }
        _write(out / "manifest.json", manifest)
        return counts

    async def _copy_bytes(self, blob_key: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as sink:
            async for chunk in self.blobs.read(blob_key):
                sink.write(chunk)
