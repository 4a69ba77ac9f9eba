"""`assistd import`: write what a bundle holds into a project, with the original ids and times.

- Idempotent: an object whose id is already here, in the same place, is left as it is; importing the
  same export twice writes nothing the second time (and a later export of the same thread adds only
  what is new).
- Per thread, all or nothing: a thread, its messages, runs and steps are written in one transaction,
  and a thread with any object assistd cannot take is not written at all (the report says why).
- An id already used elsewhere (another project, another thread) is a conflict, never overwritten.
- A dry run does every check and reports what would be written, in a read-only transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistd.db.database import Connection, Database
from assistd.migrate import convert
from assistd.migrate.bundle import Bundle, Problem, ThreadBundle
from assistd.migrate.convert import Refused
from assistd.storage.blobs import BlobStore
from assistd.stores import transfer
from assistd.stores.files import FileRecord
from assistd.stores.messages import MessageRecord
from assistd.stores.runs import RunRecord, StepRecord
from assistd.stores.threads import ThreadRecord

Progress = Callable[[int, int], None]  # (threads done, threads in all)

# What the report calls each table's objects.
NAMES = {
    "assistants": "assistants",
    "threads": "threads",
    "messages": "messages",
    "runs": "runs",
    "run_steps": "run steps",
    "files": "files",
}


@dataclass
class Report:
    project: str
    dry_run: bool
    written: Counter[str] = field(default_factory=Counter)  # table → objects written (or that would be)
    present: Counter[str] = field(default_factory=Counter)  # table → objects already here, left unchanged
    refused: list[Problem] = field(default_factory=list)  # what could not be read or taken
    threads_refused: list[str] = field(default_factory=list)  # threads not written at all
    missing_files: list[str] = field(default_factory=list)  # files referenced whose bytes were not supplied
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused

    def lines(self) -> list[str]:
        verb = "would write" if self.dry_run else "wrote"
        out = [f"import into project '{self.project}'{' (dry run: nothing written)' if self.dry_run else ''}"]
        for table, name in NAMES.items():
            if self.written[table] or self.present[table]:
                out.append(f"  {name:<11} {verb} {self.written[table]}, already here {self.present[table]}")
        if self.missing_files:
            out.append(f"  files without bytes ({len(self.missing_files)}), recorded as missing:")
            out.extend(f"    {entry}" for entry in self.missing_files)
        out.extend(f"  note: {note}" for note in self.notes)
        if self.threads_refused:
            out.append(f"  threads not imported ({len(self.threads_refused)}): {', '.join(self.threads_refused)}")
        if self.refused:
            out.append(f"  cannot take ({len(self.refused)}):")
            out.extend(f"    {p.where}: {p.reason}" for p in self.refused)
        return out


class _Abort(Exception):
    """Roll the thread's transaction back: it cannot be written whole."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


def _oldest_first(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stable by created_at (objects without one keep their place and are refused when converted);
    the first of any repeated id wins."""
    seen: set[Any] = set()
    unique = []
    for item in items:
        if item.get("id") in seen:
            continue
        seen.add(item.get("id"))
        unique.append(item)
    return sorted(unique, key=lambda o: o["created_at"] if isinstance(o.get("created_at"), int) else 0)


@dataclass
class _Thread:
    thread: ThreadRecord | None
    messages: list[MessageRecord]
    runs: list[RunRecord]
    steps: list[StepRecord]


class Importer:
    def __init__(self, db: Database, blobs: BlobStore, project_id: str, project_name: str) -> None:
        self.db = db
        self.blobs = blobs
        self.project_id = project_id
        self.project_name = project_name

    async def run(
        self,
        bundle: Bundle,
        *,
        dry_run: bool = False,
        files_dir: Path | None = None,
        progress: Progress | None = None,
    ) -> Report:
        report = Report(self.project_name, dry_run)
        report.refused.extend(bundle.problems)
        await self._assistants(bundle, report)
        await self._files(bundle, files_dir or bundle.files_dir, report)
        threads = list(bundle.threads.values())
        for done, tb in enumerate(threads, start=1):
            await self._thread(tb, done - 1, report)
            if progress is not None:
                progress(done, len(threads))
        return report

    async def _assistants(self, bundle: Bundle, report: Report) -> None:
        records = []
        for position, obj in enumerate(_oldest_first(bundle.assistants)):
            try:
                records.append(convert.assistant_record(obj, self.project_id, position))
            except Refused as exc:
                report.refused.append(Problem(f"assistant {exc.object_id}", exc.reason))
        if not records:
            return
        async with self._transaction(report.dry_run) as conn:
            taken = await transfer.owners(conn, "assistants", [r.id for r in records])
            new = []
            for record in records:
                owner = taken.get(record.id)
                if owner == self.project_id:
                    report.present["assistants"] += 1
                elif owner is not None:
                    report.refused.append(
                        Problem(f"assistant {record.id}", "this id is already used in another project")
                    )
                else:
                    new.append(record)
            if not report.dry_run:
                await transfer.insert(conn, "assistants", new)
            report.written["assistants"] += len(new)

    def _transaction(self, dry_run: bool) -> AbstractAsyncContextManager[Connection]:
        return self.db.read() if dry_run else self.db.write()

    async def _files(self, bundle: Bundle, files_dir: Path | None, report: Report) -> None:
        """File objects referenced by the export: with their bytes (found in `files_dir` under the
        file's id or its original filename) they are stored under their ids; without, reported missing."""
        if not bundle.files:
            return
        metas = list(bundle.files.values())
        async with self.db.read() as conn:
            taken = await transfer.owners(conn, "files", [str(m.get("id")) for m in metas])
        records: list[FileRecord] = []
        for position, meta in enumerate(_oldest_first(metas)):
            file_id = str(meta.get("id"))
            owner = taken.get(file_id)
            if owner == self.project_id:
                report.present["files"] += 1
                continue
            if owner is not None:
                report.refused.append(Problem(f"file {file_id}", "this id is already used in another project"))
                continue
            found = _find_bytes(files_dir, file_id, meta.get("filename"))
            if found is None:
                report.missing_files.append(f"{file_id} ({meta.get('filename')})")
                continue
            try:
                convert.file_record(meta, self.project_id, "", 0, position)  # checks before any byte is stored
            except Refused as exc:
                report.refused.append(Problem(f"file {exc.object_id}", exc.reason))
                continue
            if report.dry_run:
                report.written["files"] += 1
                continue
            data = found.read_bytes()
            writer = self.blobs.writer()
            await writer.write(data)
            key = await writer.commit()
            records.append(convert.file_record(meta, self.project_id, key, len(data), position))
        if records:
            async with self.db.write() as conn:
                await transfer.insert(conn, "files", records)
            report.written["files"] += len(records)

    def _convert(self, tb: ThreadBundle, position: int, report: Report) -> _Thread | list[Problem]:
        problems = [Problem(f"thread {tb.thread_id} ({tb.source})", reason) for reason in tb.problems]
        thread = None
        if tb.thread is not None:
            try:
                thread = convert.thread_record(tb.thread, self.project_id, position)
                if thread.id != tb.thread_id:
                    raise Refused("thread", thread.id, f"its record names thread {tb.thread_id}")
            except Refused as exc:
                problems.append(Problem(f"thread {exc.object_id}", exc.reason))
        messages: list[MessageRecord] = []
        for i, obj in enumerate(_oldest_first(tb.messages)):
            try:
                messages.append(convert.message_record(obj, tb.thread_id, i))
            except Refused as exc:
                problems.append(Problem(f"message {exc.object_id} (thread {tb.thread_id})", exc.reason))
        runs: list[RunRecord] = []
        steps: list[StepRecord] = []
        for i, obj in enumerate(_oldest_first(tb.runs)):
            try:
                run, note = convert.run_record(obj, self.project_id, tb.thread_id, i)
            except Refused as exc:
                problems.append(Problem(f"run {exc.object_id} (thread {tb.thread_id})", exc.reason))
                continue
            if note:
                report.notes.append(note)
            runs.append(run)
            raw_steps = obj.get("steps") or []
            if not isinstance(raw_steps, list):
                problems.append(Problem(f"run {run.id} (thread {tb.thread_id})", "'steps' is not an array"))
                continue
            for j, step in enumerate(_oldest_first([s for s in raw_steps if isinstance(s, dict)])):
                try:
                    steps.append(convert.step_record(step, run, j))
                except Refused as exc:
                    problems.append(Problem(f"step {exc.object_id} (run {run.id})", exc.reason))
        if problems:
            return problems
        return _Thread(thread, messages, runs, steps)

    async def _thread(self, tb: ThreadBundle, position: int, report: Report) -> None:
        converted = self._convert(tb, position, report)
        if isinstance(converted, list):
            report.refused.extend(converted)
            report.threads_refused.append(tb.thread_id)
            return
        written: Counter[str] = Counter()
        present: Counter[str] = Counter()
        try:
            async with self._transaction(report.dry_run) as conn:
                await self._write_thread(conn, tb.thread_id, converted, written, present, report.dry_run)
        except _Abort as abort:
            report.refused.extend(abort.problems)
            report.threads_refused.append(tb.thread_id)
            return
        report.written.update(written)
        report.present.update(present)

    async def _write_thread(
        self, conn: Connection, thread_id: str, data: _Thread, written: Counter[str], present: Counter[str], dry: bool
    ) -> None:
        problems: list[Problem] = []
        owner = (await transfer.owners(conn, "threads", [thread_id])).get(thread_id)
        if owner is not None and owner != self.project_id:
            raise _Abort([Problem(f"thread {thread_id}", "this id is already used in another project")])
        if owner is None and data.thread is None:
            raise _Abort(
                [
                    Problem(
                        f"thread {thread_id}", "its messages or runs came without the thread object, and it is not here"
                    )
                ]
            )
        plan: list[tuple[str, Sequence[ThreadRecord | MessageRecord | RunRecord | StepRecord]]] = []
        if owner is None and data.thread is not None:
            plan.append(("threads", [data.thread]))
        else:
            present["threads"] += 1
        groups: tuple[tuple[str, Sequence[MessageRecord | RunRecord | StepRecord]], ...] = (
            ("messages", data.messages),
            ("runs", data.runs),
            ("run_steps", data.steps),
        )
        for table, records in groups:
            taken = await transfer.owners(conn, table, [r.id for r in records])
            new = []
            for record in records:
                holder = taken.get(record.id)
                if holder is None:
                    new.append(record)
                elif holder == thread_id:
                    present[table] += 1
                else:
                    problems.append(
                        Problem(f"{NAMES[table][:-1]} {record.id}", f"this id is already used in thread {holder}")
                    )
            plan.append((table, new))
        if problems:
            raise _Abort(problems)
        for table, rows in plan:
            if not dry:
                await transfer.insert(conn, table, rows)
            written[table] += len(rows)


def _find_bytes(files_dir: Path | None, file_id: str, filename: Any) -> Path | None:
    if files_dir is None:
        return None
    candidates = [files_dir / file_id]
    if isinstance(filename, str) and filename and "/" not in filename and filename not in (".", ".."):
        candidates += [files_dir / file_id / filename, files_dir / filename]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
        if candidate.is_dir():
            inside = [p for p in candidate.iterdir() if p.is_file()]
            if len(inside) == 1:
                return inside[0]
    return None
