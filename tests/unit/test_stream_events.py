"""protocol/events.py: the typed `thread.*` events serialise to the shapes the SDKs accumulate; a delta
carries only the optional keys it was built with (null included)."""

from __future__ import annotations

import orjson
from pydantic import TypeAdapter

from assistd.protocol.events import (
    MessageContentDelta,
    MessageDelta,
    MessageDeltaEvent,
    StepDeltaEvent,
    StreamEvent,
    TextDelta,
    TextPartDelta,
    ToolCallDelta,
)

EVENTS: TypeAdapter[StreamEvent] = TypeAdapter(StreamEvent)
TOOL: TypeAdapter[ToolCallDelta] = TypeAdapter(ToolCallDelta)


def wire(model: object) -> object:
    return orjson.loads(TypeAdapter(type(model)).dump_json(model))


def message_delta(text: TextDelta) -> MessageDelta:
    return MessageDelta(id="msg_1", delta=MessageContentDelta(content=[TextPartDelta(index=0, text=text)]))


def test_text_deltas_carry_annotations_only_when_given() -> None:
    first = message_delta(TextDelta(value="Hi", annotations=[]))
    later = message_delta(TextDelta(value="!"))
    assert wire(first) == {
        "id": "msg_1",
        "object": "thread.message.delta",
        "delta": {"content": [{"index": 0, "type": "text", "text": {"value": "Hi", "annotations": []}}]},
    }
    assert wire(later) == {
        "id": "msg_1",
        "object": "thread.message.delta",
        "delta": {"content": [{"index": 0, "type": "text", "text": {"value": "!"}}]},
    }
    assert MessageDeltaEvent(data=later).event == "thread.message.delta"


def test_tool_call_deltas_keep_an_explicit_null_and_drop_what_was_not_given() -> None:
    opening = TOOL.validate_python(
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "", "output": None}}
    )
    assert orjson.loads(TOOL.dump_json(opening))["function"] == {"name": "f", "arguments": "", "output": None}
    fragment = TOOL.validate_python({"index": 0, "type": "code_interpreter", "code_interpreter": {"input": "pri"}})
    assert orjson.loads(TOOL.dump_json(fragment)) == {
        "index": 0,
        "type": "code_interpreter",
        "code_interpreter": {"input": "pri"},
    }


def test_the_union_is_discriminated_by_the_event_name() -> None:
    step_delta = {
        "event": "thread.run.step.delta",
        "data": {
            "id": "step_1",
            "delta": {"step_details": {"tool_calls": [{"index": 0, "type": "file_search", "file_search": {}}]}},
        },
    }
    assert isinstance(EVENTS.validate_python(step_delta), StepDeltaEvent)
