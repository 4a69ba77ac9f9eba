"""stores/messages.py: token counts kept with messages (a run's prompt, adapters/prompt.py), on a real
SQLite database: kept for finished messages only, and cleared when a message's content changes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.schema import CreateTable

from assistd.db import tables as t
from assistd.db.database import Database
from assistd.stores import messages as store
from assistd.stores.messages import HistoryRow, MessageRecord


def message(message_id: str, status: str, text: str) -> MessageRecord:
    return MessageRecord(
        id=message_id,
        thread_id="thread_1",
        created_at=1,
        role="assistant",
        status=status,
        content=[{"type": "text", "text": {"value": text, "annotations": []}}],
        attachments=[],
        metadata={},
        incomplete_details=None,
        completed_at=None,
        incomplete_at=None,
        assistant_id=None,
        run_id="run_1",
    )


def scenario(tmp_path: Path) -> tuple[list[HistoryRow], list[HistoryRow]]:
    async def main() -> tuple[list[HistoryRow], list[HistoryRow]]:
        db = Database(f"sqlite:///{tmp_path / 'counts.db'}")
        try:
            async with db.write() as conn:
                await conn.execute(CreateTable(t.messages))
                await store.insert_messages(
                    conn, [message("msg_1", "completed", "done"), message("msg_2", "in_progress", "wri")]
                )
                await store.keep_token_counts(conn, [("msg_1", 7, "k"), ("msg_2", 5, "k")])
            async with db.reader() as reader:
                kept = await store.history_page(reader, "thread_1", "run_2", None, 10)
            async with db.write() as conn:  # the run goes on writing msg_2, and a later one rewrites msg_1
                await store.update_run_message(conn, "msg_2", {"content": [], "status": "completed"})
                await store.update_run_message(conn, "msg_1", {"content": []})
            async with db.reader() as reader:
                changed = await store.history_page(reader, "thread_1", "run_2", None, 10)
            return kept, changed
        finally:
            await db.dispose()

    return asyncio.run(main())


def test_counts_are_kept_for_finished_messages_and_cleared_when_the_content_changes(tmp_path: Path) -> None:
    kept, changed = scenario(tmp_path)
    counts = {row.id: (row.token_count, row.token_counter) for row in kept}
    assert counts == {"msg_1": (7, "k"), "msg_2": (None, None)}, "a message still being written keeps no count"
    assert [row.id for row in kept] == ["msg_2", "msg_1"], "newest first"
    assert {row.id: (row.token_count, row.token_counter) for row in changed} == {
        "msg_1": (None, None),
        "msg_2": (None, None),
    }
