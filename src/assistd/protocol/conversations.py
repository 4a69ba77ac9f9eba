"""Conversations (OpenAI's Conversations API): the requests clients send and the objects returned.

A conversation is a thread seen through another protocol (docs/conversations.md): the request models
here are the input items clients send (`message`, `function_call`, `function_call_output`), the wire
models are the conversation and the items a list returns. Content parts and annotations are kept as
the JSON the spec defines (as thread messages keep theirs).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, Tag

from assistd.protocol.common import Metadata, RequestModel, WireModel, type_tag, union_tag
from assistd.protocol.messages import MAX_TEXT

MAX_ITEMS = 20  # per create call, as on OpenAI
MAX_ARGUMENTS = 256_000

INCLUDES = (
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
)

ItemStatus = Literal["in_progress", "completed", "incomplete"]
Detail = Literal["auto", "low", "high"]

# --- requests: content parts ----------------------------------------------------------------------


class InputText(RequestModel):
    type: Literal["input_text"]
    text: str = Field(max_length=MAX_TEXT)


class InputImage(RequestModel):
    type: Literal["input_image"]
    detail: Detail = "auto"
    file_id: str | None = Field(default=None, min_length=1, max_length=64)
    image_url: str | None = Field(default=None, min_length=1, max_length=2_000_000)


class InputFile(RequestModel):
    type: Literal["input_file"]
    file_id: str | None = Field(default=None, min_length=1, max_length=64)
    filename: str | None = Field(default=None, max_length=512)
    file_data: str | None = Field(default=None, max_length=MAX_TEXT)
    file_url: str | None = Field(default=None, max_length=2_000_000)


class FileCitation(RequestModel):
    type: Literal["file_citation"]
    file_id: str = Field(min_length=1, max_length=64)
    index: int = Field(ge=0)
    filename: str = Field(max_length=512)


class FilePath(RequestModel):
    type: Literal["file_path"]
    file_id: str = Field(min_length=1, max_length=64)
    index: int = Field(ge=0)


class UrlCitation(RequestModel):
    type: Literal["url_citation"]
    url: str = Field(min_length=1, max_length=8192)
    start_index: int = Field(ge=0)
    end_index: int = Field(ge=0)
    title: str = Field(max_length=8192)


class ContainerFileCitation(RequestModel):
    type: Literal["container_file_citation"]
    container_id: str = Field(max_length=64)
    file_id: str = Field(min_length=1, max_length=64)
    start_index: int = Field(ge=0)
    end_index: int = Field(ge=0)
    filename: str = Field(max_length=512)


AnnotationIn = Annotated[
    Annotated[FileCitation, Tag("~file_citation")]
    | Annotated[FilePath, Tag("~file_path")]
    | Annotated[UrlCitation, Tag("~url_citation")]
    | Annotated[ContainerFileCitation, Tag("~container_file_citation")],
    union_tag(
        type_tag,
        "Invalid '{param}': expected an annotation of type 'file_citation', 'file_path', 'url_citation' or "
        "'container_file_citation'.",
    ),
]


class OutputText(RequestModel):
    type: Literal["output_text"]
    text: str = Field(max_length=MAX_TEXT)
    annotations: list[AnnotationIn] = Field(default_factory=list, max_length=1000)
    logprobs: list[dict[str, Any]] | None = None


class Refusal(RequestModel):
    type: Literal["refusal"]
    refusal: str = Field(max_length=MAX_TEXT)


PartIn = Annotated[
    Annotated[InputText, Tag("~input_text")]
    | Annotated[InputImage, Tag("~input_image")]
    | Annotated[InputFile, Tag("~input_file")]
    | Annotated[OutputText, Tag("~output_text")]
    | Annotated[Refusal, Tag("~refusal")],
    union_tag(
        type_tag,
        "Invalid '{param}': expected a content part of type 'input_text', 'input_image', 'input_file', "
        "'output_text' or 'refusal'.",
    ),
]


def _content_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "~string"
    if isinstance(value, list):
        return "~parts"
    return None


ContentIn = Annotated[
    Annotated[str, Field(max_length=MAX_TEXT), Tag("~string")]
    | Annotated[list[PartIn], Field(min_length=1, max_length=100), Tag("~parts")],
    union_tag(_content_tag, "Invalid type for '{param}': expected a string or an array of content parts."),
]

# --- requests: items ------------------------------------------------------------------------------


class MessageIn(RequestModel):
    """A message item (also OpenAI's "easy" form without `type`). A given `id`/`status` is not kept:
    items created here get new ids (what a client read back from a list may be sent again)."""

    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: ContentIn
    id: str | None = Field(default=None, max_length=128)
    status: ItemStatus | None = None


class FunctionCallIn(RequestModel):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=128)
    arguments: str = Field(max_length=MAX_ARGUMENTS)
    id: str | None = Field(default=None, max_length=128)
    status: ItemStatus | None = None


class FunctionCallOutputIn(RequestModel):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1, max_length=128)
    output: str | list[Annotated[InputText | InputImage | InputFile, Field(discriminator="type")]]
    id: str | None = Field(default=None, max_length=128)
    status: ItemStatus | None = None


def _item_tag(value: Any) -> str | None:
    if isinstance(value, dict) and "type" not in value and "role" in value:
        return "~message"  # the easy input message
    return type_tag(value)


ItemIn = Annotated[
    Annotated[MessageIn, Tag("~message")]
    | Annotated[FunctionCallIn, Tag("~function_call")]
    | Annotated[FunctionCallOutputIn, Tag("~function_call_output")],
    union_tag(
        _item_tag,
        "Invalid '{param}': expected an item of type 'message', 'function_call' or 'function_call_output' "
        "(assistd stores no other input item types).",
    ),
]


class ConversationCreate(RequestModel):
    items: list[ItemIn] | None = Field(default=None, max_length=MAX_ITEMS)
    metadata: Metadata | None = None


class ConversationUpdate(RequestModel):
    metadata: Metadata


class ItemsCreate(RequestModel):
    items: list[ItemIn] = Field(max_length=MAX_ITEMS)


class ItemListParams(BaseModel):
    """`include` is read from the query string apart (it repeats: api/conversations.py)."""

    model_config = ConfigDict(extra="ignore")

    limit: int = Field(default=20, ge=1, le=100)
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None


# --- objects --------------------------------------------------------------------------------------


class Conversation(WireModel):
    id: str
    object: Literal["conversation"] = "conversation"
    created_at: int
    metadata: dict[str, str]


class ConversationDeleted(WireModel):
    id: str
    object: Literal["conversation.deleted"] = "conversation.deleted"
    deleted: bool = True


class MessageItem(WireModel):
    type: Literal["message"] = "message"
    id: str
    status: ItemStatus
    role: Literal["user", "assistant", "system", "developer"]
    content: list[dict[str, Any]]


class FunctionCallItem(WireModel):
    type: Literal["function_call"] = "function_call"
    id: str
    call_id: str
    name: str
    arguments: str
    status: ItemStatus


class FunctionCallOutputItem(WireModel):
    type: Literal["function_call_output"] = "function_call_output"
    id: str
    call_id: str
    output: str | list[dict[str, Any]]
    status: ItemStatus


class FileSearchCallItem(WireModel):
    type: Literal["file_search_call"] = "file_search_call"
    id: str
    status: Literal["in_progress", "searching", "completed", "incomplete", "failed"]
    queries: list[str]
    results: list[dict[str, Any]] | None


class CodeInterpreterCallItem(WireModel):
    type: Literal["code_interpreter_call"] = "code_interpreter_call"
    id: str
    status: Literal["in_progress", "completed", "incomplete", "interpreting", "failed"]
    container_id: str
    code: str | None
    outputs: list[dict[str, Any]] | None


ConversationItem = Annotated[
    MessageItem | FunctionCallItem | FunctionCallOutputItem | FileSearchCallItem | CodeInterpreterCallItem,
    Field(discriminator="type"),
]


class ItemList(WireModel):
    object: Literal["list"] = "list"
    data: list[ConversationItem]
    first_id: str | None
    last_id: str | None
    has_more: bool


class ItemObject(RootModel[ConversationItem]):
    """One item, as retrieved (the union of the item objects)."""
