"""Runs waiting on the model do not wait for each other (issue 18): with the default settings, a burst of
polled runs whose model calls are slow all reach the model at once, instead of in batches of the old
32-run cap (ASSISTD_WORKER_CONCURRENCY; docs/configuration.md)."""

from __future__ import annotations

from typing import Any

from assistd.testing.fake_upstream import FakeUpstream, Reply

from .test_runs import make_assistant, new_model, wait_status, wait_until

RUNS = 40  # more than the old default cap
SLOW = 60.0  # seconds each model call takes before answering: the runs are cancelled long before


def test_a_burst_of_slow_polled_runs_reaches_the_model_at_once(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, *[Reply.say("late", delay=SLOW)] * RUNS)
    assistant = make_assistant(client, model)
    threads = [client.beta.threads.create(messages=[{"role": "user", "content": f"q{i}"}]) for i in range(RUNS)]
    runs = [client.beta.threads.runs.create(thread_id=t.id, assistant_id=assistant.id) for t in threads]
    try:
        # A run the cap holds back stays queued until a slow call ends: only then would it reach the model.
        wait_until(lambda: len(fake.requests(model)), lambda n: n == RUNS, timeout=30, what="every model call")
    finally:
        for thread, run in zip(threads, runs, strict=True):
            client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
        for thread, run in zip(threads, runs, strict=True):
            assert wait_status(client, thread.id, run.id, {"cancelled"}).status == "cancelled"
