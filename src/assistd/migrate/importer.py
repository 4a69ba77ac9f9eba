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

import time
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
from assistd.protocol.vector_stores import static_chunking
from assistd.storage.blobs import BlobStore
from assistd.stores import transfer
from assistd.stores import vector_stores as vector_store_store
from assistd.stores.files import FileRecord
from assistd.stores.messages import MessageRecord
from assistd.stores.runs import RunRecord, StepRecord
from assistd.stores.threads import ThreadRecord
from assistd.stores.transfer import MissingFileRecord
from assistd.stores.vector_stores import THREAD_STORE_EXPIRY, FileEntry, VectorStoreRecord

Progress = Callable[[int, int], None]  # (threads done, threads in all)

TAKEN_ELSEWHERE = "this id is already used in another project"
CHUNK_BYTES = 1 << 20

# What the report calls each table's objects.
NAMES = {
    "assistants": "assistants",
    "threads": "threads",
    "messages": "messages",
    "runs": "runs",
    "run_steps": "run steps",
    "files": "files",
    "vector_stores": "vector stores",
    "store_files": "files in vector stores",
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
class _StoreWanted:
    """A vector store an imported assistant or thread names, to recreate with its id (`--reindex`)."""

    owner: str  # "assistant asst_..." or "thread thread_..."
    created_at: int
    for_thread: bool
    file_ids: list[str] = field(default_factory=list)


def _store_ids(resources: dict[str, Any]) -> list[str]:
    search = resources.get("file_search") or {}
    ids = search.get("vector_store_ids") if isinstance(search, dict) else None
    return [i for i in ids or [] if isinstance(i, str) and convert.ID_PATTERN.fullmatch(i)]


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
        self.stores: dict[str, _StoreWanted] = {}  # vector stores named by what was imported (or was here)

    async def run(
        self,
        bundle: Bundle,
        *,
        dry_run: bool = False,
        files_dir: Path | None = None,
        reindex: bool = False,
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
        if reindex:
            await self._reindex(report)
        elif self.stores:
            report.notes.append(
                f"{len(self.stores)} vector stores are named by imported assistants or threads; "
                "--reindex recreates them with their ids and ingests the files known to be in them"
            )
        return report

    async def _reindex(self, report: Report) -> None:
        """Recreate each named vector store with its id, and ingest the files known to belong to it: for
        a thread's store, the files its messages attached for file_search (as OpenAI added them). Which
        files an assistant's store held is not in any export: its store comes back empty, and is noted.
        The running server's ingestion worker parses, chunks and embeds the files (status in_progress)."""
        at = int(time.time())
        async with self._transaction(report.dry_run) as conn:
            taken = await transfer.owners(conn, "vector_stores", list(self.stores))
            wanted_files = [f for want in self.stores.values() for f in want.file_ids]
            have_files = await transfer.owners(conn, "files", wanted_files)
            for store_id, want in self.stores.items():
                owner = taken.get(store_id)
                if owner is not None and owner != self.project_id:
                    report.refused.append(Problem(f"vector store {store_id} ({want.owner})", TAKEN_ELSEWHERE))
                    continue
                if owner is None:
                    expiry = dict(THREAD_STORE_EXPIRY) if want.for_thread else None
                    record = VectorStoreRecord(store_id, self.project_id, want.created_at, "", None, expiry, at, {}, 0)
                    if not report.dry_run:
                        await vector_store_store.insert_store(conn, record)
                    report.written["vector_stores"] += 1
                else:
                    report.present["vector_stores"] += 1
                present = set() if owner is None else await transfer.store_file_ids(conn, store_id)
                files = [f for f in dict.fromkeys(want.file_ids) if have_files.get(f) == self.project_id]
                new = [f for f in files if f not in present]
                skipped = [f for f in dict.fromkeys(want.file_ids) if have_files.get(f) != self.project_id]
                if skipped:
                    report.notes.append(
                        f"vector store {store_id}: files without bytes not ingested: {', '.join(skipped)}"
                    )
                if owner is None and not want.for_thread:
                    report.notes.append(
                        f"vector store {store_id} ({want.owner}) recreated; the export does not say which files "
                        "it held: add them with the API (POST /v1/vector_stores/{id}/files)"
                    )
                if new and not report.dry_run:
                    chunking = static_chunking(None)
                    entries = [FileEntry(f, chunking, {}) for f in new]
                    await vector_store_store.attach_files(
                        conn, self.project_id, store_id, entries, batch_id=None, at=at
                    )
                report.written["store_files"] += len(new)
                report.present["store_files"] += len(files) - len(new)

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
                    report.refused.append(Problem(f"assistant {record.id}", TAKEN_ELSEWHERE))
                else:
                    new.append(record)
            if not report.dry_run:
                await transfer.insert(conn, "assistants", new)
            report.written["assistants"] += len(new)
        for record in records:
            if taken.get(record.id) in (None, self.project_id):
                for store_id in _store_ids(record.tool_resources):
                    self.stores.setdefault(store_id, _StoreWanted(f"assistant {record.id}", record.created_at, False))

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
        referenced_by: dict[str, str] = {}
        for tb in bundle.threads.values():
            for file_id in tb.files:
                referenced_by.setdefault(file_id, tb.thread_id)
        records: list[FileRecord] = []
        missing: list[MissingFileRecord] = []
        for position, meta in enumerate(_oldest_first(metas)):
            try:
                file_id = convert.object_id(meta, "file")
            except Refused as exc:
                report.refused.append(Problem(f"file {exc.object_id}", exc.reason))
                continue
            owner = taken.get(file_id)
            if owner == self.project_id:
                report.present["files"] += 1
                continue
            if owner is not None:
                report.refused.append(Problem(f"file {file_id}", TAKEN_ELSEWHERE))
                continue
            found = _find_bytes(files_dir, file_id, meta.get("filename"))
            if found is None:
                report.missing_files.append(f"{file_id} ({meta.get('filename')})")
                size, created = meta.get("bytes"), meta.get("created_at")
                missing.append(
                    MissingFileRecord(
                        project_id=self.project_id,
                        id=file_id,
                        filename=str(meta.get("filename") or file_id),
                        bytes=size if isinstance(size, int) and not isinstance(size, bool) else None,
                        created_at=created if isinstance(created, int) and not isinstance(created, bool) else None,
                        thread_id=referenced_by.get(file_id),
                        recorded_at=int(time.time()),
                    )
                )
                continue
            try:
                convert.file_record(meta, self.project_id, "", 0, position)  # checks before any byte is stored
            except Refused as exc:
                report.refused.append(Problem(f"file {exc.object_id}", exc.reason))
                continue
            if report.dry_run:
                report.written["files"] += 1
                continue
            key, size = await self._store_bytes(found)
            records.append(convert.file_record(meta, self.project_id, key, size, position))
        if report.dry_run:
            return
        async with self.db.write() as conn:
            await transfer.insert(conn, "files", records)
            await transfer.clear_missing(conn, self.project_id, [r.id for r in records])
            await transfer.record_missing(conn, missing)
        report.written["files"] += len(records)

    async def _store_bytes(self, path: Path) -> tuple[str, int]:
        """The file's bytes into the blob store, a chunk at a time (files can be large)."""
        writer = self.blobs.writer()
        size = 0
        try:
            with path.open("rb") as source:
                while chunk := source.read(CHUNK_BYTES):
                    await writer.write(chunk)
                    size += len(chunk)
            return await writer.commit(), size
        except BaseException:
            await writer.abort()
            raise

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
        if converted.thread is not None:
            searched = [
                a["file_id"]
                for m in converted.messages
                for a in m.attachments or []
                if any(isinstance(tool, dict) and tool.get("type") == "file_search" for tool in a.get("tools") or [])
            ]
            for store_id in _store_ids(converted.thread.tool_resources):
                want = self.stores.setdefault(
                    store_id, _StoreWanted(f"thread {tb.thread_id}", converted.thread.created_at, True)
                )
                want.file_ids.extend(searched)

    async def _write_thread(
        self, conn: Connection, thread_id: str, data: _Thread, written: Counter[str], present: Counter[str], dry: bool
    ) -> None:
        problems: list[Problem] = []
        groups: tuple[tuple[str, Sequence[MessageRecord | RunRecord | StepRecord]], ...] = (
            ("messages", data.messages),
            ("runs", data.runs),
            ("run_steps", data.steps),
        )
        # Which of the thread's ids are already here, and where: one query for the four tables.
        taken_in = await transfer.owners_of(
            conn, {"threads": [thread_id], **{table: [r.id for r in records] for table, records in groups}}
        )
        owner = taken_in["threads"].get(thread_id)
        if owner is not None and owner != self.project_id:
            raise _Abort([Problem(f"thread {thread_id}", TAKEN_ELSEWHERE)])
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
        for table, records in groups:
            taken = taken_in[table]
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
