"""Reading what is to be imported: an `assistants-thread-export/v1` folder, or loose API objects.

The export folder (written by the `assistants-api-export` tool, and by `assistd export`) holds
`manifest.json`, `assistants.json` (an array of assistant objects) and `threads/<thread_id>.json`, one
record per thread: the thread object, its messages oldest first, its runs oldest first each with its
`steps`, and the metadata of the files it references (`files`, by id). `assistd export` adds the files'
bytes under `files/<file_id>`.

Loose objects are JSON files holding what the API returned: an assistant, a thread, a message, a
run, a step, or a list page (`{"object": "list", "data": [...]}`) of any of them; or a thread record
on its own. Any mix of them, in one file or a folder of files, is gathered here per thread.

Nothing is checked against the database here, and nothing is refused but what cannot be read; the
objects themselves are checked when they are converted (convert.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

THREAD_SCHEMA = "assistants-thread-export/v1"
MANIFEST_SCHEMA = "assistants-export-manifest/v1"

Json = dict[str, Any]


@dataclass
class ThreadBundle:
    """One thread to import: its object (None when only its messages or runs came, for a thread that
    must already be here), its messages and runs in the order given (runs carry their `steps`)."""

    thread_id: str
    source: str
    thread: Json | None = None
    messages: list[Json] = field(default_factory=list)
    runs: list[Json] = field(default_factory=list)
    files: dict[str, Json] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # what made the thread unreadable as a whole


@dataclass
class Problem:
    """Something that could not be read or taken: where, and why."""

    where: str
    reason: str


@dataclass
class Bundle:
    assistants: list[Json] = field(default_factory=list)
    threads: dict[str, ThreadBundle] = field(default_factory=dict)
    files: dict[str, Json] = field(default_factory=dict)  # file objects referenced anywhere, by id
    files_dir: Path | None = None  # where file bytes are (the export's files/ folder, or --files)
    problems: list[Problem] = field(default_factory=list)
    steps: list[tuple[str, Json]] = field(default_factory=list)  # loose steps, joined to runs by run_id

    def thread(self, thread_id: str, source: str) -> ThreadBundle:
        if thread_id not in self.threads:
            self.threads[thread_id] = ThreadBundle(thread_id, source)
        return self.threads[thread_id]


def read(path: Path) -> Bundle:
    bundle = Bundle()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json") if p.is_file() and "files" not in p.relative_to(path).parts[:1])
        if not files:
            bundle.problems.append(Problem(str(path), "no .json files in this folder"))
        for file in files:
            if file.name == "manifest.json" and file.parent == path:
                _manifest(bundle, file)
            else:
                _file(bundle, file)
        if (path / "files").is_dir():
            bundle.files_dir = path / "files"
    elif path.is_file():
        _file(bundle, path)
    else:
        bundle.problems.append(Problem(str(path), "no such file or folder"))
    _join_steps(bundle)
    return bundle


def _load(bundle: Bundle, file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        bundle.problems.append(Problem(str(file), f"not readable JSON: {exc}"))
        return None


def _manifest(bundle: Bundle, file: Path) -> None:
    manifest = _load(bundle, file)
    if manifest is None:
        return
    if not isinstance(manifest, dict) or manifest.get("export_schema") != MANIFEST_SCHEMA:
        bundle.problems.append(Problem(str(file), f"not an {MANIFEST_SCHEMA} manifest"))
        return
    for failed in manifest.get("threads_failed") or []:
        if isinstance(failed, dict):
            reason = f"the export could not fetch it: {failed.get('error')}"
            bundle.problems.append(Problem(f"thread {failed.get('thread_id')}", reason))


def _file(bundle: Bundle, file: Path) -> None:
    data = _load(bundle, file)
    if data is not None:
        _take(bundle, data, str(file))


def _take(bundle: Bundle, data: Any, source: str) -> None:
    if isinstance(data, list):  # assistants.json, or any array of objects
        for i, item in enumerate(data):
            _take(bundle, item, f"{source}[{i}]")
        return
    if not isinstance(data, dict):
        bundle.problems.append(Problem(source, f"expected a JSON object or array, found {type(data).__name__}"))
        return
    if "export_schema" in data:
        _thread_record(bundle, data, source)
        return
    kind = data.get("object")
    if kind == "list" and isinstance(data.get("data"), list):
        _take(bundle, _oldest_first(data["data"]), f"{source}.data")
    elif kind == "assistant":
        bundle.assistants.append(data)
    elif kind == "thread" and isinstance(data.get("id"), str):
        tb = bundle.thread(data["id"], source)
        if tb.thread is None:
            tb.thread = data
    elif kind in ("thread.message", "thread.run") and isinstance(data.get("thread_id"), str):
        tb = bundle.thread(data["thread_id"], source)
        (tb.messages if kind == "thread.message" else tb.runs).append(data)
    elif kind == "thread.run.step" and isinstance(data.get("run_id"), str):
        bundle.steps.append((source, data))
    elif kind == "file" and isinstance(data.get("id"), str):
        bundle.files[data["id"]] = data
    else:
        bundle.problems.append(Problem(source, f"not an Assistants API object assistd can import (object: {kind!r})"))


def _oldest_first(items: list[Any]) -> list[Any]:
    """A list page as the API returned it is newest first unless `order=asc` was asked: oldest first here,
    so that objects created in the same second keep their order."""
    times: list[int] = [
        item["created_at"] for item in items if isinstance(item, dict) and isinstance(item.get("created_at"), int)
    ]
    descending = any(a > b for a, b in zip(times, times[1:], strict=False))
    ascending = any(a < b for a, b in zip(times, times[1:], strict=False))
    return list(reversed(items)) if descending and not ascending else items


def _thread_record(bundle: Bundle, record: Json, source: str) -> None:
    if record.get("export_schema") != THREAD_SCHEMA:
        bundle.problems.append(Problem(source, f"export_schema {record.get('export_schema')!r} is not {THREAD_SCHEMA}"))
        return
    thread_id = record.get("thread_id")
    thread = record.get("thread")
    if not isinstance(thread_id, str):
        thread_id = thread.get("id") if isinstance(thread, dict) else None
    if not isinstance(thread_id, str):
        bundle.problems.append(Problem(source, "a thread record with no thread_id"))
        return
    tb = bundle.thread(thread_id, source)
    if thread is None:
        errors = record.get("errors") or []
        why = errors[0].get("error") if errors and isinstance(errors[0], dict) else "no thread object"
        tb.problems.append(f"the export holds no thread object ({why})")
        return
    if not isinstance(thread, dict):
        tb.problems.append("'thread' is not an object")
        return
    tb.thread = thread
    for name in ("messages", "runs"):
        items = record.get(name)
        if items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            tb.problems.append(f"'{name}' is not an array of objects")
            continue
        getattr(tb, name).extend(items)
    files = record.get("files") or {}
    if isinstance(files, dict):
        for file_id, meta in files.items():
            if isinstance(meta, dict):
                tb.files[file_id] = meta
                bundle.files.setdefault(file_id, meta)
    for error in record.get("errors") or []:
        if isinstance(error, dict) and error.get("object") == "run_steps":
            bundle.problems.append(
                Problem(f"steps of run {error.get('id')}", f"missing from the export: {error.get('error')}")
            )


def _join_steps(bundle: Bundle) -> None:
    """Loose steps go to their run (found among the runs read); a step whose run never came is reported."""
    runs: dict[str, Json] = {}
    for tb in bundle.threads.values():
        for run in tb.runs:
            if isinstance(run.get("id"), str):
                runs[run["id"]] = run
    for source, step in bundle.steps:
        found = runs.get(step["run_id"])
        if found is None:
            bundle.problems.append(
                Problem(source, f"step {step.get('id')} of run {step['run_id']}, which is not in the import")
            )
            continue
        existing = found.setdefault("steps", [])
        if isinstance(existing, list) and all(s.get("id") != step.get("id") for s in existing if isinstance(s, dict)):
            existing.append(step)
    bundle.steps.clear()
