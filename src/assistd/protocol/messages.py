"""Message requests and the Message object."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, Tag

from assistd.protocol.common import Metadata, RequestModel, WireModel, type_tag, union_tag

MAX_TEXT = 256_000


class ImageFileRef(RequestModel):
    file_id: str = Field(min_length=1, max_length=64)
    detail: Literal["auto", "low", "high"] | None = None


class ImageUrlRef(RequestModel):
    url: str = Field(min_length=1, max_length=2_000_000)
    detail: Literal["auto", "low", "high"] | None = None


class TextPart(RequestModel):
    type: Literal["text"]
    text: str = Field(max_length=MAX_TEXT)


class ImageFilePart(RequestModel):
    type: Literal["image_file"]
    image_file: ImageFileRef


class ImageUrlPart(RequestModel):
    type: Literal["image_url"]
    image_url: ImageUrlRef


ContentPart = Annotated[
    Annotated[TextPart, Tag("~text")]
    | Annotated[ImageFilePart, Tag("~image_file")]
    | Annotated[ImageUrlPart, Tag("~image_url")],
    union_tag(type_tag, "Invalid '{param}': expected a content part of type 'text', 'image_file' or 'image_url'."),
]


def _content_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "~string"
    if isinstance(value, list):
        return "~parts"
    return None


Content = Annotated[
    Annotated[str, Field(max_length=MAX_TEXT), Tag("~string")]
    | Annotated[list[ContentPart], Field(min_length=1, max_length=100), Tag("~parts")],
    union_tag(_content_tag, "Invalid type for '{param}': expected a string or an array of content parts."),
]


class CodeInterpreterType(RequestModel):
    type: Literal["code_interpreter"]


class FileSearchType(RequestModel):
    type: Literal["file_search"]


AttachmentTool = Annotated[
    Annotated[CodeInterpreterType, Tag("~code_interpreter")] | Annotated[FileSearchType, Tag("~file_search")],
    union_tag(type_tag, "Invalid '{param}': expected a tool of type 'code_interpreter' or 'file_search'."),
]


class Attachment(RequestModel):
    file_id: str = Field(min_length=1, max_length=64)
    tools: list[AttachmentTool] = Field(default_factory=list, max_length=2)


class MessageCreate(RequestModel):
    role: Literal["user", "assistant"]
    content: Content
    attachments: list[Attachment] | None = Field(default=None, max_length=100)
    metadata: Metadata | None = None


class MessageUpdate(RequestModel):
    metadata: Metadata | None = None


class Message(WireModel):
    id: str
    object: Literal["thread.message"] = "thread.message"
    created_at: int
    thread_id: str
    status: Literal["in_progress", "incomplete", "completed"]
    incomplete_details: dict[str, Any] | None
    completed_at: int | None
    incomplete_at: int | None
    role: Literal["user", "assistant"]
    content: list[dict[str, Any]]
    assistant_id: str | None
    run_id: str | None
    attachments: list[dict[str, Any]] | None
    metadata: dict[str, str]


def stored_content(content: str | list[TextPart | ImageFilePart | ImageUrlPart]) -> list[dict[str, Any]]:
    """A string becomes one text part; request text parts become `{value, annotations}`."""
    if isinstance(content, str):
        return [{"type": "text", "text": {"value": content, "annotations": []}}]
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": {"value": part.text, "annotations": []}})
        elif isinstance(part, ImageFilePart):
            parts.append({"type": "image_file", "image_file": part.image_file.model_dump(exclude_none=True)})
        else:
            parts.append({"type": "image_url", "image_url": part.image_url.model_dump(exclude_none=True)})
    return parts
