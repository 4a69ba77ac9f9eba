"""api/streaming.py: every run stream ends with a final event (or an `error` event), then `[DONE]`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from assistd.api.streaming import QueueSink, _events
from assistd.protocol.events import EXECUTION_OVER, RUN_DELETED, RunDeleted
from assistd.protocol.runs import Run


def queued_run() -> Run:
    return Run(
        id="run_1",
        created_at=1_800_000_000,
        thread_id="thread_1",
        assistant_id="asst_1",
        status="queued",
        required_action=None,
        last_error=None,
        expires_at=1_800_000_600,
        started_at=None,
        cancelled_at=None,
        failed_at=None,
        completed_at=None,
        incomplete_details=None,
        model="m",
        instructions="",
        tools=[],
        metadata={},
        usage=None,
        temperature=None,
        top_p=None,
        max_prompt_tokens=None,
        max_completion_tokens=None,
        truncation_strategy={"type": "auto", "last_messages": None},
        tool_choice="auto",
        parallel_tool_calls=True,
        response_format="auto",
    )


def frames(*emitted: tuple[str, Any]) -> list[tuple[str, str]]:
    """The (event, data) frames of a stream whose prelude is a queued run and whose executor emitted `emitted`."""

    async def main() -> list[bytes]:
        sink = QueueSink()
        for event, data in emitted:
            await sink.emit(event, data)
        run = queued_run()
        return [chunk async for chunk in _events(sink, [("thread.run.created", run), ("thread.run.queued", run)], 5)]

    out = []
    for frame in b"".join(asyncio.run(main())).decode().split("\n\n")[:-1]:  # events queued together share a write
        head, data = frame.split("\n")
        out.append((head.removeprefix("event: "), data.removeprefix("data: ")))
    return out


def test_a_run_deleted_with_its_thread_ends_cancelled_then_done() -> None:
    out = frames((RUN_DELETED, RunDeleted(run_id="run_1")), (EXECUTION_OVER, {}))
    assert [name for name, _ in out] == ["thread.run.created", "thread.run.queued", "thread.run.cancelled", "done"]
    cancelled = json.loads(out[2][1])
    assert cancelled["id"] == "run_1" and cancelled["status"] == "cancelled"
    assert cancelled["cancelled_at"] is not None and cancelled["expires_at"] is None
    assert cancelled["usage"]["total_tokens"] == 0  # terminal runs always carry usage
    assert out[-1][1] == "[DONE]"


def test_a_stream_cut_short_ends_with_an_error_event_then_done() -> None:
    out = frames((EXECUTION_OVER, {}))
    assert [name for name, _ in out] == ["thread.run.created", "thread.run.queued", "error", "done"]
    error = json.loads(out[2][1])
    assert error["error"]["type"] == error["type"] == "server_error"
    assert "retrieve the run" in error["message"]


def test_events_queued_together_go_out_in_one_write() -> None:
    """A busy server's deltas pile up between two turns of the stream: one write for all of them, not one each."""

    async def main() -> list[bytes]:
        sink = QueueSink()
        run = queued_run()
        for status in ("in_progress", "completed"):
            await sink.emit(f"thread.run.{status}", run.model_copy(update={"status": status}))
        return [chunk async for chunk in _events(sink, [("thread.run.created", run), ("thread.run.queued", run)], 5)]

    (write,) = asyncio.run(main())
    names = [frame.split("\n")[0] for frame in write.decode().split("\n\n")[:-1]]
    assert names == [f"event: thread.run.{s}" for s in ("created", "queued", "in_progress", "completed")] + [
        "event: done"
    ]
