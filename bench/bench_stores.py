"""What records built from rows cost the read paths: services called in-process on SQLite, two trees compared.

    python bench/bench_stores.py --before /tmp/main/src        # e.g. `git archive main | tar -x -C /tmp/main`
    python bench/bench_stores.py --before /tmp/main/src --rounds 5 --calls 300

Each round runs one child process per tree (interleaved, so load on the machine hits both alike); a child
builds the services over a fresh SQLite file (migrations, one thread of 1,000 messages, 100 assistants)
and times, after a warm-up, `--calls` calls of each operation (CPU time of the process, per call).
The table shows the median over rounds, in microseconds per call, and after/before.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


async def child(calls: int) -> dict[str, float]:
    from assistd.db import migrate
    from assistd.db.database import Database, create_engine
    from assistd.protocol.assistants import AssistantCreate
    from assistd.protocol.common import ListParams
    from assistd.protocol.messages import MessageCreate
    from assistd.protocol.threads import ThreadCreate
    from assistd.services.assistants import AssistantService
    from assistd.services.files import FileService
    from assistd.services.threads import ThreadService
    from assistd.services.vector_stores import VectorStoreService
    from assistd.storage.blobs import DirectoryBlobStore

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        engine = create_engine(url, pool_size=1)
        await migrate.upgrade(engine)
        await engine.dispose()
        db = Database(url)
        files = FileService(db, DirectoryBlobStore(Path(tmp) / "blobs"))
        stores = VectorStoreService(db, files, notify=lambda: None)
        threads = ThreadService(db, files, stores)
        assistants = AssistantService(db, files, stores)
        project = "proj_default"
        messages = [MessageCreate(role="user", content=f"message {i} " + "text " * 20) for i in range(1000)]
        thread = await threads.create(project, ThreadCreate(messages=messages))
        for i in range(100):
            await assistants.create(project, AssistantCreate(model="m", name=f"a{i}", metadata={"k": str(i)}))
        one = await threads.create_message(project, thread.id, MessageCreate(role="user", content="the one to get"))
        # Trees since issue 18 list messages as JSON bytes (`list_messages_json`); older ones built models.
        listing = getattr(threads, "list_messages_json", None) or threads.list_messages
        operations = {
            "list 20 messages": lambda: listing(project, thread.id, ListParams(limit=20), None),
            "list 100 messages": lambda: listing(project, thread.id, ListParams(limit=100), None),
            "get message": lambda: threads.get_message(project, thread.id, one.id),
            "list 100 assistants": lambda: assistants.list(project, ListParams(limit=100)),
            "create message": lambda: threads.create_message(
                project, thread.id, MessageCreate(role="user", content="hello")
            ),
        }
        timings: dict[str, float] = {}
        for name, call in operations.items():
            for _ in range(max(10, calls // 10)):
                await call()
            started = time.process_time()
            for _ in range(calls):
                await call()
            timings[name] = (time.process_time() - started) / calls * 1e6
        await db.dispose()
        return timings


def run_child(src: Path, calls: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, __file__, "--child", "--calls", str(calls)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, help="the src/ directory of the tree to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.calls))))
        return
    after_src = Path(__file__).resolve().parents[1] / "src"
    trees = {"after": after_src} | ({"before": args.before} if args.before else {})
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, src in trees.items():
            samples[name].append(run_child(src, args.calls))
    operations = list(samples["after"][0])
    print(f"load average {os.getloadavg()[0]:.1f}; {args.rounds} rounds x {args.calls} calls; CPU µs per call (median)")
    print("| operation | " + " | ".join(trees) + (" | after/before |" if "before" in trees else " |"))
    print("|---|" + "---:|" * (len(trees) + ("before" in trees)))
    for op in operations:
        medians = {name: statistics.median(s[op] for s in samples[name]) for name in trees}
        cells = " | ".join(f"{medians[name]:.0f}" for name in trees)
        ratio = f" | {medians['after'] / medians['before']:.2f} |" if "before" in trees else " |"
        print(f"| {op} | {cells}{ratio}")


if __name__ == "__main__":
    main()
