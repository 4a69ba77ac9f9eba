"""The Conversations protocol over the Assistants store: threads, messages and run steps as items.

One store, two views (docs/conversations.md). Here, and only here, stored records become conversation
items, and input items become thread messages (what has an Assistants form) or stored items (the rest):

- a thread message is a `message` item with its id; user text → `input_text`, assistant text →
  `output_text` with Responses annotations (`file_citation` with file_id/filename/index, `file_path`),
  images → `input_image`, attachments → `input_file`;
- a tool-call step gives items derived from its calls, with ids `<prefix><step id's tail>_<k>`:
  `fc_`/`fco_` (a function call and, once submitted, its output), `fs_` (file_search), `ci_`
  (code_interpreter);
- other items (`function_call` and `function_call_output` given by a client, system and developer
  messages, messages with parts Assistants has no form for) are stored as given, under new ids.

Items sort by the time-ordered tail of their ids (ids.py), then by their place in their step: the
`SortKey` below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import TypeAdapter

from assistd import ids
from assistd.protocol.conversations import (
    CodeInterpreterCallItem,
    Conversation,
    ConversationItem,
    FileCitation,
    FilePath,
    FileSearchCallItem,
    FunctionCallIn,
    FunctionCallItem,
    FunctionCallOutputIn,
    FunctionCallOutputItem,
    InputImage,
    InputText,
    MessageIn,
    MessageItem,
    OutputText,
)
from assistd.stores.common import Json
from assistd.stores.conversations import ItemRecord
from assistd.stores.messages import MessageRecord
from assistd.stores.runs import StepRecord
from assistd.stores.threads import ThreadRecord

# (time-ordered id tail, place within a step): the order of a conversation's items.
SortKey = tuple[str, int]

FUNCTION_CALL = "fc_"
FUNCTION_OUTPUT = "fco_"
FILE_SEARCH = "fs_"
CODE_INTERPRETER = "ci_"
STORED_PREFIXES = {"message": ids.MESSAGE, "function_call": FUNCTION_CALL, "function_call_output": FUNCTION_OUTPUT}
# A step's function outputs follow all its calls (as a client sends them back after the model's calls).
OUTPUT_OFFSET = 500

_ITEM: TypeAdapter[ConversationItem] = TypeAdapter(ConversationItem)


def to_conversation(thread: ThreadRecord) -> Conversation:
    return Conversation(id=thread.id, created_at=thread.created_at, metadata=thread.metadata)


def tail(object_id: str) -> str:
    """The part of an id after its prefix (`msg_`, `step_`, `fc_`, ...)."""
    return object_id.split("_", 1)[1] if "_" in object_id else object_id


def step_item_ref(item_id: str) -> tuple[str, str, int] | None:
    """(prefix, step id, call index) of an item derived from a run step, or None for any other id."""
    prefix, sep, rest = item_id.partition("_")
    if not sep or "_" not in rest:
        return None
    step_tail, _, index = rest.rpartition("_")
    if prefix + "_" not in (FUNCTION_CALL, FUNCTION_OUTPUT, FILE_SEARCH, CODE_INTERPRETER) or not index.isdigit():
        return None
    return prefix + "_", "step_" + step_tail, int(index)


def cursor_key(item_id: str) -> SortKey:
    """Where an item id sorts (a cursor need not name an item that still exists)."""
    ref = step_item_ref(item_id)
    if ref is None:
        return tail(item_id), 0
    prefix, step_id, index = ref
    return tail(step_id), index + (OUTPUT_OFFSET if prefix == FUNCTION_OUTPUT else 0)


# --- thread messages as message items -----------------------------------------------------------------


def linked_container_files(messages: Iterable[MessageRecord]) -> list[str]:
    """The container files (`cfile_`) a response's answers link to (`sandbox:/mnt/data/...`)."""
    found: list[str] = []
    for message in messages:
        for part in message.content:
            if part.get("type") == "text":
                for note in part["text"].get("annotations") or []:
                    if note.get("type") == "file_path" and note["file_path"]["file_id"].startswith(ids.CONTAINER_FILE):
                        found.append(note["file_path"]["file_id"])
    return found


def cited_files(messages: Iterable[MessageRecord]) -> list[str]:
    found: list[str] = []
    for message in messages:
        for part in message.content:
            if part.get("type") == "text":
                for note in part["text"].get("annotations") or []:
                    if note.get("type") == "file_citation":
                        found.append(note["file_citation"]["file_id"])
    return found


# A container file an answer links to: (container id, path under /mnt/data).
ContainerFiles = Mapping[str, tuple[str, str]]


def container_citation(note: Json, containers: ContainerFiles) -> Json | None:
    """A link to a file the code wrote in a container, as a `container_file_citation` (None otherwise)."""
    found = containers.get(note["file_path"]["file_id"]) if note.get("type") == "file_path" else None
    if found is None:
        return None
    container_id, path = found
    return {
        "type": "container_file_citation",
        "container_id": container_id,
        "file_id": note["file_path"]["file_id"],
        "filename": path.rsplit("/", 1)[-1],
        "start_index": note["start_index"],
        "end_index": note["end_index"],
    }


def _annotation(note: Json, names: dict[str, str], containers: ContainerFiles) -> Json | None:
    cited = container_citation(note, containers)
    if cited is not None:
        return cited
    if note.get("type") == "file_citation":
        file_id = note["file_citation"]["file_id"]
        return {
            "type": "file_citation",
            "file_id": file_id,
            "filename": names.get(file_id, ""),
            "index": note["start_index"],
        }
    if note.get("type") == "file_path":
        return {"type": "file_path", "file_id": note["file_path"]["file_id"], "index": note["start_index"]}
    return None


def _image(part: Json, include: frozenset[str]) -> Json:
    if part["type"] == "image_file":
        ref = part["image_file"]
        return {
            "type": "input_image",
            "detail": ref.get("detail") or "auto",
            "file_id": ref["file_id"],
            "image_url": None,
        }
    ref = part["image_url"]
    url = ref["url"] if "message.input_image.image_url" in include else None
    return {"type": "input_image", "detail": ref.get("detail") or "auto", "file_id": None, "image_url": url}


def message_item(
    message: MessageRecord, names: dict[str, str], include: frozenset[str], containers: ContainerFiles | None = None
) -> MessageItem:
    content: list[Json] = []
    for part in message.content:
        if part["type"] != "text":
            content.append(_image(part, include))
        elif message.role == "user":
            content.append({"type": "input_text", "text": part["text"]["value"]})
        else:
            notes = [_annotation(note, names, containers or {}) for note in part["text"].get("annotations") or []]
            content.append(
                {
                    "type": "output_text",
                    "text": part["text"]["value"],
                    "annotations": [note for note in notes if note is not None],
                    "logprobs": [],
                }
            )
    for attachment in message.attachments or []:
        content.append({"type": "input_file", "file_id": attachment["file_id"]})
    return MessageItem(id=message.id, status=message.status, role=message.role, content=content)


# --- run steps as tool-call items ---------------------------------------------------------------------


def _call_status(step: StepRecord) -> str:
    if step.status == "in_progress":
        return "in_progress"
    return "completed" if step.status == "completed" else "incomplete"


def _search_results(details: Json, attributes: Json) -> list[Json]:
    return [
        {
            "file_id": r["file_id"],
            "filename": r.get("file_name", ""),
            "score": r.get("score", 0.0),
            "text": "".join(c.get("text", "") for c in r.get("content") or []),
            "attributes": attributes.get(r["file_id"]) or {},
        }
        for r in details.get("results") or []
    ]


def _code_outputs(details: Json, file_url: Callable[[str], str]) -> list[Json]:
    outputs: list[Json] = []
    for output in details.get("outputs") or []:
        if output["type"] == "logs":
            outputs.append({"type": "logs", "logs": output["logs"]})
        elif output["type"] == "image":
            outputs.append({"type": "image", "url": file_url(output["image"]["file_id"])})
    return outputs


def step_items(
    step: StepRecord, include: frozenset[str], file_url: Callable[[str], str]
) -> list[tuple[SortKey, ConversationItem]]:
    """The items of one tool-call step: each call, and each function call's output once submitted."""
    key = tail(step.id)
    status = _call_status(step)
    private: dict[str, Json] = step.step_details.get("private") or {}
    found: list[tuple[SortKey, ConversationItem]] = []
    for k, call in enumerate(step.step_details.get("tool_calls") or []):
        details: Json = call.get(call["type"]) or {}
        name = f"{key}_{k:03d}"
        if call["type"] == "function":
            item: ConversationItem = FunctionCallItem(
                id=FUNCTION_CALL + name,
                call_id=call["id"],
                name=details["name"],
                arguments=details.get("arguments") or "",
                status=status,
            )
            found.append(((key, k), item))
            if details.get("output") is not None:
                output = FunctionCallOutputItem(
                    id=FUNCTION_OUTPUT + name, call_id=call["id"], output=details["output"], status="completed"
                )
                found.append(((key, OUTPUT_OFFSET + k), output))
        elif call["type"] == "file_search":
            queries = (private.get(call["id"]) or {}).get("queries") or call.get("_queries") or []
            own = private.get(call["id"]) or {}
            results = (
                _search_results(details, own.get("attributes") or {}) if "file_search_call.results" in include else None
            )
            failed = step.status == "failed"
            item = FileSearchCallItem(
                id=FILE_SEARCH + name,
                status="failed" if failed else status,
                queries=[str(q) for q in queries],
                results=results,
            )
            found.append(((key, k), item))
        elif call["type"] == "code_interpreter":
            outputs = _code_outputs(details, file_url) if "code_interpreter_call.outputs" in include else None
            item = CodeInterpreterCallItem(
                id=CODE_INTERPRETER + name,
                status="failed" if step.status == "failed" else status,
                container_id=(private.get(call["id"]) or {}).get("container_id") or step.thread_id,
                code=details.get("input"),
                outputs=outputs,
            )
            found.append(((key, k), item))
    return found


def stored_item(record: ItemRecord) -> ConversationItem:
    return _ITEM.validate_python(record.item)


# --- input items: a thread message when Assistants has one, else a stored item -----------------------


def _assistants_annotation(note: Any) -> Json | None:
    if isinstance(note, FileCitation):
        kind, ref = "file_citation", {"file_id": note.file_id}
    elif isinstance(note, FilePath):
        kind, ref = "file_path", {"file_id": note.file_id}
    else:
        return None
    return {"type": kind, "text": "", "start_index": note.index, "end_index": note.index, kind: ref}


def thread_content(item: MessageIn) -> list[Json] | None:
    """The Assistants content of a message item, or None when it has none (then it is stored as given):
    user messages of text and images, assistant messages of text citing files."""
    if item.role not in ("user", "assistant"):
        return None
    if isinstance(item.content, str):
        return [{"type": "text", "text": {"value": item.content, "annotations": []}}]
    content: list[Json] = []
    for part in item.content:
        if isinstance(part, InputText):
            content.append({"type": "text", "text": {"value": part.text, "annotations": []}})
        elif isinstance(part, OutputText) and item.role == "assistant":
            notes = [_assistants_annotation(note) for note in part.annotations]
            if any(note is None for note in notes):
                return None
            content.append({"type": "text", "text": {"value": part.text, "annotations": notes}})
        elif isinstance(part, InputImage) and item.role == "user" and part.file_id is not None:
            content.append({"type": "image_file", "image_file": {"file_id": part.file_id, "detail": part.detail}})
        elif isinstance(part, InputImage) and item.role == "user" and part.image_url is not None:
            content.append({"type": "image_url", "image_url": {"url": part.image_url, "detail": part.detail}})
        else:
            return None
    return content


def stored_form(item: MessageIn | FunctionCallIn | FunctionCallOutputIn, item_id: str) -> Json:
    """An item as stored and listed back: what the client gave, with our id and a status."""
    body = item.model_dump(exclude_none=True, exclude={"id", "status"})
    body["type"] = item.type
    if isinstance(item, MessageIn):
        if isinstance(item.content, str):
            kind = "output_text" if item.role == "assistant" else "input_text"
            part: Json = {"type": kind, "text": item.content}
            if kind == "output_text":
                part.update(annotations=[], logprobs=[])
            body["content"] = [part]
        else:
            for part in body["content"]:
                if part["type"] == "output_text":
                    part.setdefault("logprobs", [])
                elif part["type"] == "input_image":
                    part.setdefault("file_id", None)
                    part.setdefault("image_url", None)
    return {"id": item_id, **body, "status": "completed"}
