"""Import throughput (issue 17): an assistants-thread-export/v1 folder of N threads x M messages
(OpenAI-style random ids, one completed run with a step per thread) imported into SQLite and PostgreSQL.

    python bench/bench_import.py                       # 100 threads x 100 messages, both backends
    python bench/bench_import.py --threads 20 --messages 500 --backends sqlite

In-process, as `assistd import` runs it (migrations, then read the folder, then one transaction per
thread), on a fresh database each. Times are wall clock; "read" is parsing the folder, "import" the
writes, "again" a second import of the same folder (every id already there: nothing written), and
"export" writing it all back out with `assistd export`'s exporter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import string
import tempfile
import time
from pathlib import Path
from typing import Any

ALPHABET = string.ascii_letters + string.digits


def make_export(out: Path, threads: int, messages: int, seed: int = 17) -> int:
    rng = random.Random(seed)

    def new(prefix: str) -> str:
        return prefix + "".join(rng.choice(ALPHABET) for _ in range(24))

    t0 = 1_730_000_000
    asst = {
        "id": new("asst_"),
        "object": "assistant",
        "created_at": t0,
        "name": "bench",
        "description": None,
        "model": "gpt-4o",
        "instructions": "Be brief.",
        "tools": [],
        "tool_resources": {},
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "response_format": "auto",
    }
    (out / "threads").mkdir(parents=True)
    (out / "assistants.json").write_text(json.dumps([asst]))
    for t in range(threads):
        thread_id = new("thread_")
        at = t0 + t * 1000
        msgs: list[dict[str, Any]] = []
        for i in range(messages):
            role = "user" if i % 2 == 0 else "assistant"
            msgs.append(
                {
                    "id": new("msg_"),
                    "object": "thread.message",
                    "created_at": at + i // 2,
                    "assistant_id": asst["id"] if role == "assistant" else None,
                    "thread_id": thread_id,
                    "run_id": None,
                    "role": role,
                    "content": [{"type": "text", "text": {"value": f"message {i} " + "word " * 30, "annotations": []}}],
                    "attachments": [],
                    "metadata": {},
                    "status": "completed",
                    "incomplete_details": None,
                    "completed_at": None,
                    "incomplete_at": None,
                }
            )
        run_id = new("run_")
        run = {
            "id": run_id,
            "object": "thread.run",
            "created_at": at + messages,
            "assistant_id": asst["id"],
            "thread_id": thread_id,
            "status": "completed",
            "started_at": at + messages,
            "expires_at": None,
            "cancelled_at": None,
            "failed_at": None,
            "completed_at": at + messages + 1,
            "required_action": None,
            "last_error": None,
            "model": "gpt-4o",
            "instructions": "Be brief.",
            "tools": [],
            "metadata": {},
            "incomplete_details": None,
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            "temperature": 1.0,
            "top_p": 1.0,
            "max_prompt_tokens": None,
            "max_completion_tokens": None,
            "truncation_strategy": {"type": "auto", "last_messages": None},
            "response_format": "auto",
            "tool_choice": "auto",
            "parallel_tool_calls": True,
            "steps": [
                {
                    "id": new("step_"),
                    "object": "thread.run.step",
                    "created_at": at + messages,
                    "run_id": run_id,
                    "assistant_id": asst["id"],
                    "thread_id": thread_id,
                    "type": "message_creation",
                    "status": "completed",
                    "cancelled_at": None,
                    "completed_at": at + messages + 1,
                    "expired_at": None,
                    "failed_at": None,
                    "last_error": None,
                    "step_details": {"type": "message_creation", "message_creation": {"message_id": msgs[-1]["id"]}},
                    "usage": None,
                    "metadata": {},
                }
            ],
        }
        record = {
            "export_schema": "assistants-thread-export/v1",
            "thread_id": thread_id,
            "exported_at": "2026-08-20T10:00:00+00:00",
            "thread": {"id": thread_id, "object": "thread", "created_at": at, "tool_resources": {}, "metadata": {}},
            "messages": msgs,
            "runs": [run],
            "files": {},
            "errors": [],
        }
        (out / "threads" / f"{thread_id}.json").write_text(json.dumps(record))
    manifest = {"export_schema": "assistants-export-manifest/v1", "threads_failed": []}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return threads * messages


async def measure(url: str, folder: Path, blobs_dir: Path, out: Path) -> dict[str, float]:
    from assistd.db import migrate
    from assistd.db.database import Database, create_engine
    from assistd.migrate import bundle
    from assistd.migrate.exporter import Exporter
    from assistd.migrate.importer import Importer
    from assistd.storage.blobs import DirectoryBlobStore

    engine = create_engine(url, pool_size=1)
    await migrate.upgrade(engine)
    await engine.dispose()
    db = Database(url)
    blobs = DirectoryBlobStore(blobs_dir)
    from assistd.services.keys import KeyService

    await KeyService(db).ensure_default_project()
    importer = Importer(db, blobs, "proj_default", "default")
    started = time.perf_counter()
    found = bundle.read(folder)
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    report = await importer.run(found)
    import_s = time.perf_counter() - started
    assert report.ok, report.lines()
    started = time.perf_counter()
    again = await importer.run(bundle.read(folder))
    again_s = time.perf_counter() - started
    assert sum(again.written.values()) == 0, again.lines()
    started = time.perf_counter()
    await Exporter(db, blobs, "proj_default").run(out)
    export_s = time.perf_counter() - started
    await db.dispose()
    return {"read": read_s, "import": import_s, "again": again_s, "export": export_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=100)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        total = make_export(root / "export", args.threads, args.messages)
        for backend in args.backends.split(","):
            pg = None
            if backend == "sqlite":
                url = f"sqlite:///{root / 'bench.db'}"
            else:
                from assistd.testing.postgres import TestPostgres

                pg = TestPostgres()
                url = pg.new_database()
            try:
                times = asyncio.run(measure(url, root / "export", root / f"blobs-{backend}", root / f"out-{backend}"))
            finally:
                if pg is not None:
                    pg.close()
            rows.append((backend, times))
    shape = f"{args.threads} threads x {args.messages} messages ({total} messages, 1 run + 1 step per thread)"
    print(f"\nimport of {shape}")
    print(f"{'backend':<10} {'read s':>8} {'import s':>9} {'messages/s':>11} {'again s':>8} {'export s':>9}")
    for backend, t in rows:
        rate = total / t["import"]
        times = f"{t['read']:>8.2f} {t['import']:>9.2f} {rate:>11.0f} {t['again']:>8.2f} {t['export']:>9.2f}"
        print(f"{backend:<10} {times}")


if __name__ == "__main__":
    main()
