"""Raw Assistants API objects (as OpenAI, Azure or assistd returned them) → the records assistd stores,
with their ids and times kept; and the checks that refuse what assistd could not serve back.

Each `*_record` function takes one wire object (a JSON object already parsed) and returns its record,
or raises `Refused` saying why it cannot be taken. Nothing here touches the database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from assistd import ids
from assistd.engine.lifecycle import TERMINAL
from assistd.stores.assistants import AssistantRecord
from assistd.stores.files import FileRecord
from assistd.stores.messages import MessageRecord
from assistd.stores.runs import RunRecord, StepRecord
from assistd.stores.threads import ThreadRecord

Json = dict[str, Any]

# Ids are kept as they came: any that fits the id columns (64 characters), the API's paths and the
# console's routes (letters, digits, '_' and '-', as OpenAI's and Azure's ids are).
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}")
PREFIX = {
    "assistant": ids.ASSISTANT,
    "thread": ids.THREAD,
    "thread.message": ids.MESSAGE,
    "thread.run": ids.RUN,
    "thread.run.step": ids.STEP,
}
CONTENT_TYPES = {"text", "image_file", "image_url", "refusal"}
ANNOTATION_TYPES = {"file_citation", "file_path"}
TOOL_CALL_TYPES = {"code_interpreter", "file_search", "function"}
MESSAGE_STATUSES = {"in_progress", "incomplete", "completed"}
RUN_STATUSES = {"queued", "in_progress", "requires_action", "cancelling", *TERMINAL}
STEP_STATUSES = {"in_progress", "cancelled", "failed", "completed", "expired"}
DEFAULT_TRUNCATION: Json = {"type": "auto", "last_messages": None}


class Refused(Exception):
    """An object assistd cannot take, and why (the import's report lists each)."""

    def __init__(self, kind: str, object_id: str, reason: str) -> None:
        super().__init__(f"{kind} {object_id}: {reason}")
        self.kind = kind
        self.object_id = object_id
        self.reason = reason


def _b62(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, rem = divmod(value, 62)
        chars.append(ids.ALPHABET[rem])
    return "".join(reversed(chars))


def sort_key(prefix: str, created_at: int, position: int, object_id: str) -> str:
    """Where an imported object sorts among the objects of its list: by its creation second, then by its
    place in the export (which lists oldest first), then by id. The prefix and the 8 time characters
    are those of ids made here (ids.py), so objects created here later sort after it."""
    return f"{prefix}{_b62(max(created_at, 0) * 1000, 8)}{_b62(position, 6)}.{object_id}"


def object_id(obj: Mapping[str, Any], kind: str) -> str:
    """The object's id, checked: what the API would route to, with the prefix its kind has."""
    value = obj.get("id")
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise Refused(
            kind, repr(value)[:80], "the id is missing or not a valid id (letters, digits, '_' and '-'; at most 64)"
        )
    prefix = PREFIX.get(kind)
    if prefix is not None and not value.startswith(prefix):
        raise Refused(kind, value, f"a {kind} id starts with '{prefix}'")
    return value


def _kind(obj: Mapping[str, Any], kind: str, oid: str) -> None:
    if obj.get("object", kind) != kind:
        raise Refused(kind, oid, f"its 'object' is {obj.get('object')!r}, not {kind!r}")


def _int(obj: Mapping[str, Any], field: str, kind: str, oid: str, *, required: bool = False) -> int | None:
    value = obj.get(field)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Refused(kind, oid, f"'{field}' must be an integer (unix seconds), got {value!r}")
    return value


def _float(obj: Mapping[str, Any], field: str, kind: str, oid: str) -> float | None:
    value = obj.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Refused(kind, oid, f"'{field}' must be a number, got {value!r}")
    return float(value)


def _str(obj: Mapping[str, Any], field: str, kind: str, oid: str, *, required: bool = False) -> str | None:
    value = obj.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise Refused(kind, oid, f"'{field}' must be a string, got {value!r}")
    return value


def _linked_id(obj: Mapping[str, Any], field: str, kind: str, oid: str) -> str | None:
    value = obj.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise Refused(kind, oid, f"'{field}' is not a valid id: {value!r}")
    return value


def _metadata(obj: Mapping[str, Any], kind: str, oid: str) -> dict[str, str]:
    value = obj.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise Refused(kind, oid, "'metadata' must be an object of strings")
    return dict(value)


def _object(obj: Mapping[str, Any], field: str, kind: str, oid: str) -> Json | None:
    value = obj.get(field)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Refused(kind, oid, f"'{field}' must be an object, got {type(value).__name__}")
    return value


def _list(obj: Mapping[str, Any], field: str, kind: str, oid: str) -> list[Any] | None:
    value = obj.get(field)
    if value is None:
        return None
    if not isinstance(value, list):
        raise Refused(kind, oid, f"'{field}' must be an array, got {type(value).__name__}")
    return value


def _tools(obj: Mapping[str, Any], kind: str, oid: str) -> list[Json]:
    tools = _list(obj, "tools", kind, oid) or []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type") not in TOOL_CALL_TYPES:
            # "retrieval" (v1) and any tool assistd does not have: refuse rather than serve a tool list it cannot run.
            found = tool.get("type") if isinstance(tool, dict) else tool
            raise Refused(kind, oid, f"tool {found!r} is not one of code_interpreter, file_search, function")
    return tools


def assistant_record(obj: Mapping[str, Any], project_id: str, position: int) -> AssistantRecord:
    oid = object_id(obj, "assistant")
    _kind(obj, "assistant", oid)
    created_at = _int(obj, "created_at", "assistant", oid, required=True)
    assert created_at is not None
    model = _str(obj, "model", "assistant", oid, required=True)
    assert model is not None
    return AssistantRecord(
        id=oid,
        project_id=project_id,
        created_at=created_at,
        name=_str(obj, "name", "assistant", oid),
        description=_str(obj, "description", "assistant", oid),
        model=model,
        instructions=_str(obj, "instructions", "assistant", oid),
        tools=_tools(obj, "assistant", oid),
        tool_resources=_object(obj, "tool_resources", "assistant", oid) or {},
        metadata=_metadata(obj, "assistant", oid),
        temperature=_float(obj, "temperature", "assistant", oid),
        top_p=_float(obj, "top_p", "assistant", oid),
        response_format=obj.get("response_format", "auto"),
        reasoning_effort=_str(obj, "reasoning_effort", "assistant", oid),
        sort_key=sort_key(ids.ASSISTANT, created_at, position, oid),
    )


def thread_record(obj: Mapping[str, Any], project_id: str, position: int) -> ThreadRecord:
    oid = object_id(obj, "thread")
    _kind(obj, "thread", oid)
    created_at = _int(obj, "created_at", "thread", oid, required=True)
    assert created_at is not None
    return ThreadRecord(
        id=oid,
        project_id=project_id,
        created_at=created_at,
        tool_resources=_object(obj, "tool_resources", "thread", oid) or {},
        metadata=_metadata(obj, "thread", oid),
        sort_key=sort_key(ids.THREAD, created_at, position, oid),
    )


def _check_content(parts: list[Any], oid: str) -> None:
    kind = "thread.message"
    for i, part in enumerate(parts):
        if not isinstance(part, dict) or part.get("type") not in CONTENT_TYPES:
            found = part.get("type") if isinstance(part, dict) else part
            raise Refused(kind, oid, f"content[{i}] has type {found!r} (not text, image_file, image_url or refusal)")
        ptype = part["type"]
        body = part.get(ptype)
        if ptype == "refusal":
            if not isinstance(body, str):
                raise Refused(kind, oid, f"content[{i}].refusal must be a string")
            continue
        if not isinstance(body, dict):
            raise Refused(kind, oid, f"content[{i}].{ptype} must be an object")
        if ptype == "text":
            if not isinstance(body.get("value"), str):
                raise Refused(kind, oid, f"content[{i}].text.value must be a string")
            for j, note in enumerate(body.get("annotations") or []):
                if not isinstance(note, dict) or note.get("type") not in ANNOTATION_TYPES:
                    raise Refused(kind, oid, f"content[{i}].text.annotations[{j}] is not a file_citation or file_path")
                if not isinstance(note.get(note["type"]), dict):
                    raise Refused(kind, oid, f"content[{i}].text.annotations[{j}].{note['type']} must be an object")
        elif ptype == "image_file" and not isinstance(body.get("file_id"), str):
            raise Refused(kind, oid, f"content[{i}].image_file.file_id must be a string")
        elif ptype == "image_url" and not isinstance(body.get("url"), str):
            raise Refused(kind, oid, f"content[{i}].image_url.url must be a string")


def message_record(obj: Mapping[str, Any], thread_id: str, position: int) -> MessageRecord:
    kind = "thread.message"
    oid = object_id(obj, kind)
    _kind(obj, kind, oid)
    if obj.get("thread_id", thread_id) != thread_id:
        raise Refused(kind, oid, f"it belongs to thread {obj.get('thread_id')!r}, not {thread_id}")
    created_at = _int(obj, "created_at", kind, oid, required=True)
    assert created_at is not None
    role = obj.get("role")
    if role not in ("user", "assistant"):
        raise Refused(kind, oid, f"'role' must be user or assistant, got {role!r}")
    status = obj.get("status") or "completed"
    if status not in MESSAGE_STATUSES:
        raise Refused(kind, oid, f"'status' {status!r} is not one of {sorted(MESSAGE_STATUSES)}")
    content = _list(obj, "content", kind, oid)
    if content is None:
        raise Refused(kind, oid, "'content' is missing")
    _check_content(content, oid)
    attachments = _list(obj, "attachments", kind, oid)
    for i, attachment in enumerate(attachments or []):
        if not isinstance(attachment, dict) or not isinstance(attachment.get("file_id"), str):
            raise Refused(kind, oid, f"attachments[{i}] has no file_id")
    return MessageRecord(
        id=oid,
        thread_id=thread_id,
        created_at=created_at,
        role=role,
        status=status,
        content=content,
        attachments=attachments,
        metadata=_metadata(obj, kind, oid),
        incomplete_details=_object(obj, "incomplete_details", kind, oid),
        completed_at=_int(obj, "completed_at", kind, oid),
        incomplete_at=_int(obj, "incomplete_at", kind, oid),
        assistant_id=_linked_id(obj, "assistant_id", kind, oid),
        run_id=_linked_id(obj, "run_id", kind, oid),
        sort_key=sort_key(ids.MESSAGE, created_at, position, oid),
    )


def stored_usage(value: Any, kind: str, oid: str) -> dict[str, int] | None:
    """The wire usage (with its token details) as the flat counters the stores keep."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Refused(kind, oid, "'usage' must be an object")
    prompt = value.get("prompt_tokens_details") or {}
    completion = value.get("completion_tokens_details") or {}
    counters = {
        "prompt_tokens": value.get("prompt_tokens") or 0,
        "completion_tokens": value.get("completion_tokens") or 0,
        "total_tokens": value.get("total_tokens") or 0,
        "cached_tokens": prompt.get("cached_tokens") or 0 if isinstance(prompt, dict) else 0,
        "reasoning_tokens": completion.get("reasoning_tokens") or 0 if isinstance(completion, dict) else 0,
    }
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in counters.values()):
        raise Refused(kind, oid, "'usage' counters must be integers")
    return counters


def run_record(obj: Mapping[str, Any], project_id: str, thread_id: str, position: int) -> tuple[RunRecord, str | None]:
    """The run as history, and a note when its status had to change: a run exported while it was still
    going cannot go on here (its model call, its tool outputs are gone), so it is kept as `expired`."""
    kind = "thread.run"
    oid = object_id(obj, kind)
    _kind(obj, kind, oid)
    if obj.get("thread_id", thread_id) != thread_id:
        raise Refused(kind, oid, f"it belongs to thread {obj.get('thread_id')!r}, not {thread_id}")
    created_at = _int(obj, "created_at", kind, oid, required=True)
    assert created_at is not None
    assistant_id = _linked_id(obj, "assistant_id", kind, oid)
    if assistant_id is None:
        raise Refused(kind, oid, "'assistant_id' is missing")
    status = obj.get("status")
    if status not in RUN_STATUSES:
        raise Refused(kind, oid, f"'status' {status!r} is not a run status")
    note = None
    if status not in TERMINAL:
        note = f"run {oid} was {status} when exported; imported as expired (it cannot continue here)"
        status = "expired"
    tool_choice = obj.get("tool_choice")
    response_format = obj.get("response_format")
    parallel = obj.get("parallel_tool_calls")
    record = RunRecord(
        id=oid,
        project_id=project_id,
        thread_id=thread_id,
        assistant_id=assistant_id,
        created_at=created_at,
        status=status,
        model=_str(obj, "model", kind, oid) or "",
        instructions=_str(obj, "instructions", kind, oid),
        tools=_tools(obj, kind, oid),
        metadata=_metadata(obj, kind, oid),
        temperature=_float(obj, "temperature", kind, oid),
        top_p=_float(obj, "top_p", kind, oid),
        max_prompt_tokens=_int(obj, "max_prompt_tokens", kind, oid),
        max_completion_tokens=_int(obj, "max_completion_tokens", kind, oid),
        truncation_strategy=_object(obj, "truncation_strategy", kind, oid) or dict(DEFAULT_TRUNCATION),
        tool_choice=tool_choice if tool_choice is not None else "auto",
        parallel_tool_calls=parallel if isinstance(parallel, bool) else True,
        response_format=response_format if response_format is not None else "auto",
        reasoning_effort=_str(obj, "reasoning_effort", kind, oid),
        required_action=None,
        last_error=_object(obj, "last_error", kind, oid),
        incomplete_details=_object(obj, "incomplete_details", kind, oid),
        usage=stored_usage(obj.get("usage"), kind, oid),
        expires_at=None,
        started_at=_int(obj, "started_at", kind, oid),
        cancelled_at=_int(obj, "cancelled_at", kind, oid),
        failed_at=_int(obj, "failed_at", kind, oid),
        completed_at=_int(obj, "completed_at", kind, oid),
        lease_owner=None,
        lease_expires_at=None,
        sort_key=sort_key(ids.RUN, created_at, position, oid),
    )
    return record, note


def _check_details(details: Json, oid: str) -> None:
    kind = "thread.run.step"
    dtype = details.get("type")
    if dtype == "message_creation":
        creation = details.get("message_creation")
        if not isinstance(creation, dict) or not isinstance(creation.get("message_id"), str):
            raise Refused(kind, oid, "step_details.message_creation.message_id is missing")
        return
    if dtype != "tool_calls" or not isinstance(details.get("tool_calls"), list):
        raise Refused(kind, oid, f"step_details has type {dtype!r} (not message_creation or tool_calls)")
    for i, call in enumerate(details["tool_calls"]):
        if not isinstance(call, dict) or call.get("type") not in TOOL_CALL_TYPES:
            found = call.get("type") if isinstance(call, dict) else call
            raise Refused(
                kind, oid, f"tool_calls[{i}] has type {found!r} (not code_interpreter, file_search, function)"
            )
        if not isinstance(call.get("id"), str) or not isinstance(call.get(call["type"]), dict):
            raise Refused(kind, oid, f"tool_calls[{i}] needs an id and its {call['type']} object")


def step_record(obj: Mapping[str, Any], run: RunRecord, position: int) -> StepRecord:
    kind = "thread.run.step"
    oid = object_id(obj, kind)
    _kind(obj, kind, oid)
    for field, expected in (("run_id", run.id), ("thread_id", run.thread_id)):
        if obj.get(field, expected) != expected:
            raise Refused(kind, oid, f"its {field} is {obj.get(field)!r}, not {expected}")
    created_at = _int(obj, "created_at", kind, oid, required=True)
    assert created_at is not None
    stype = obj.get("type")
    details = _object(obj, "step_details", kind, oid)
    if details is None or not isinstance(stype, str) or stype != details.get("type"):
        raise Refused(kind, oid, "'type' and step_details.type must agree (message_creation or tool_calls)")
    _check_details(details, oid)
    status = obj.get("status")
    if status not in STEP_STATUSES:
        raise Refused(kind, oid, f"'status' {status!r} is not a step status")
    expired_at = _int(obj, "expired_at", kind, oid)
    if status == "in_progress":  # its run is history now (see run_record): so is the step
        status, expired_at = "expired", expired_at or run.created_at
    return StepRecord(
        id=oid,
        run_id=run.id,
        thread_id=run.thread_id,
        assistant_id=_linked_id(obj, "assistant_id", kind, oid) or run.assistant_id,
        created_at=created_at,
        type=stype,
        status=status,
        step_details=details,
        last_error=_object(obj, "last_error", kind, oid),
        expires_at=None,
        expired_at=expired_at,
        cancelled_at=_int(obj, "cancelled_at", kind, oid),
        failed_at=_int(obj, "failed_at", kind, oid),
        completed_at=_int(obj, "completed_at", kind, oid),
        metadata=_metadata(obj, kind, oid),
        usage=stored_usage(obj.get("usage"), kind, oid),
        sort_key=sort_key(ids.STEP, created_at, position, oid),
    )


def file_record(obj: Mapping[str, Any], project_id: str, blob_key: str, size: int, position: int) -> FileRecord:
    kind = "file"
    oid = object_id(obj, kind)
    created_at = _int(obj, "created_at", kind, oid, required=True)
    assert created_at is not None
    return FileRecord(
        id=oid,
        project_id=project_id,
        created_at=created_at,
        filename=_str(obj, "filename", kind, oid) or oid,
        purpose=_str(obj, "purpose", kind, oid) or "assistants",
        bytes=size,
        status="processed",
        expires_at=_int(obj, "expires_at", kind, oid),
        blob_key=blob_key,
        sort_key=sort_key(ids.FILE, created_at, position, oid),
    )
