"""The `thread.*` stream events' names (spec §6.2), and the two internal markers a stream reads.

A streaming response ends after a run's final event or `requires_action` (`RUN_END_EVENTS`).
"""

from __future__ import annotations

from pydantic import BaseModel

# Not a wire event: tells a stream that the executor returned (whatever it emitted before).
EXECUTION_OVER = "assistd.execution_over"
# Not a wire event: the run's rows are gone (its thread was deleted while it ran); the stream closes
# it with the last state it showed, as cancelled.
RUN_DELETED = "assistd.run_deleted"

# The events after which a run's stream ends: a final state, or a wait for tool outputs.
RUN_END_EVENTS = frozenset(
    {
        "thread.run.completed",
        "thread.run.failed",
        "thread.run.cancelled",
        "thread.run.expired",
        "thread.run.incomplete",
        "thread.run.requires_action",
    }
)


class RunDeleted(BaseModel):
    run_id: str
