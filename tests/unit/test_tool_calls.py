"""tools/base.py ToolCall: private state (raw arguments, queries, written files) is stored beside the
public calls and never reaches the wire; steps stored before, with inline `_` keys, still read."""

from __future__ import annotations

import orjson

from assistd.adapters.assistants import public_details
from assistd.stores.runs import StepRecord
from assistd.tools import code_interpreter
from assistd.tools.base import ToolCall, calls_from_details, stored_details
from assistd.tools.file_search import FileSearchTool

LEGACY = {
    "type": "tool_calls",
    "tool_calls": [
        {
            "id": "call_s",
            "type": "file_search",
            "file_search": {"ranking_options": {"ranker": "auto", "score_threshold": 0.0}, "results": []},
            "_arguments": '{"queries": ["q"]}',
            "_queries": ["q"],
        },
        {
            "id": "call_c",
            "type": "code_interpreter",
            "code_interpreter": {"input": "open('a.csv','w')", "outputs": []},
            "_arguments": "{\"code\": \"open('a.csv','w')\"}",
            "_files": {"a.csv": "file_a"},
        },
    ],
}


def step(details: dict[str, object]) -> StepRecord:
    return StepRecord(
        "step_1", "run_1", "thread_1", "asst_1", 0, "tool_calls", "completed", dict(details),
        None, None, None, None, None, 0, {}, None,
    )  # fmt: skip


def test_legacy_private_keys_are_read_as_private_state() -> None:
    search, code = calls_from_details(LEGACY)
    assert search.private == {"arguments": '{"queries": ["q"]}', "queries": ["q"]}
    assert code.private["files"] == {"a.csv": "file_a"}
    assert not [key for key in search.public() if key.startswith("_")]
    assert '"_' not in orjson.dumps([search.public(), code.public()]).decode()
    assert code_interpreter.written_files([step(LEGACY)]) == {"a.csv": "file_a"}
    replayed = FileSearchTool.replay(FileSearchTool.__new__(FileSearchTool), search, 0, 100)
    assert replayed is not None and orjson.loads(replayed[0]) == {"queries": ["q"]}  # what the model sent


def test_private_state_is_stored_beside_the_calls_and_never_serialised() -> None:
    call = ToolCall("call_c", "code_interpreter", {"input": "x", "outputs": []}, {"files": {"b.png": "file_b"}})
    details = stored_details([call])
    assert details["private"] == {"call_c": {"files": {"b.png": "file_b"}}}
    assert calls_from_details(details)[0].private == call.private  # survives to the next model call
    assert code_interpreter.written_files([step(details)]) == {"b.png": "file_b"}
    for stored in (details, LEGACY):
        wire = orjson.dumps(public_details(stored, include_content=True)).decode()
        assert "private" not in wire and '"_' not in wire and "file_b" not in wire and "file_a" not in wire


def test_a_call_without_private_state_stores_no_private_part() -> None:
    call = ToolCall("call_f", "function", {"name": "f", "arguments": "{}", "output": None})
    assert stored_details([call]) == {"type": "tool_calls", "tool_calls": [call.public()]}
