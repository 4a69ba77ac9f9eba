"""Tool outputs submitted the instant a run asks for them (non-streamed) must not wait for a lease.

The executor that moves a run to `requires_action` used to keep its lease until its job wound down;
outputs submitted before that queued the run again with that lease still on it, and no worker could
claim the run until the lease lapsed (ASSISTD_LEASE_SECONDS, 30 s by default): the SDK's
`submit_tool_outputs_and_poll` waited that long.

Through the network that moment lasts a millisecond or two and these tries rarely hit it (they did not
on either backend before the fix): tests/integration/test_tool_outputs_lease.py holds it open every
time. These check the client's view: outputs sent as fast as a client can send them, on the run's
`requires_action` event or on the poll that first sees it, complete in well under the lease.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from assistd.testing.fake_upstream import FakeUpstream, Reply

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TRIES = 6
BOUND = 5.0  # seconds; the lease is 30 s
ROUNDS = (Reply.call("get_weather", {"city": "Oslo"}), Reply.say("Mild."))


def test_outputs_submitted_on_the_requires_action_event_complete_at_once(client: Any, fake: FakeUpstream) -> None:
    """The run is streamed; the outputs go in (not streamed) as soon as its `requires_action` event
    arrives, while its executor is still winding down."""
    model = f"m-{uuid.uuid4().hex[:8]}"
    fake.script(model, *ROUNDS * TRIES)
    assistant = client.beta.assistants.create(model=model, tools=[WEATHER])
    took: list[float] = []
    for _ in range(TRIES):
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Oslo?"}])
        with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
            for event in stream:
                if event.event == "thread.run.requires_action":
                    run = event.data
                    (call,) = run.required_action.submit_tool_outputs.tool_calls
                    started = time.monotonic()
                    client.beta.threads.runs.submit_tool_outputs(
                        run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "8C"}]
                    )
                    break
        run = client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=20)
        took.append(time.monotonic() - started)
        assert run.status == "completed", run
    assert max(took) < BOUND, [round(t, 2) for t in took]


def test_outputs_submitted_when_a_poll_sees_requires_action_complete_at_once(client: Any, fake: FakeUpstream) -> None:
    model = f"m-{uuid.uuid4().hex[:8]}"
    fake.script(model, *ROUNDS * TRIES)
    assistant = client.beta.assistants.create(model=model, tools=[WEATHER])
    took: list[float] = []
    for _ in range(TRIES):
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Oslo?"}])
        run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        while run.status != "requires_action":
            assert run.status in ("queued", "in_progress"), run
            run = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
        (call,) = run.required_action.submit_tool_outputs.tool_calls
        started = time.monotonic()
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "8C"}]
        )
        took.append(time.monotonic() - started)
        assert run.status == "completed", run
    assert max(took) < BOUND, [round(t, 2) for t in took]
