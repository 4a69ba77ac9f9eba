"""Wire models of the admin API (/admin/v1): what the web console needs that OpenAI's API never had."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from assistd.protocol.common import ListParams, WireModel

THREAD_QUERY_MAX = 256


class ThreadSearchParams(ListParams):
    """`GET /admin/v1/threads`: the usual cursor pagination, and `q` matching a thread's id or a metadata value."""

    q: str | None = Field(default=None, max_length=THREAD_QUERY_MAX)

    @field_validator("after", "before")
    @classmethod
    def _thread_cursor(cls, value: str | None) -> str | None:
        # Cursors are thread ids (conv_ for threads made as conversations, docs/conversations.md); anything
        # else would page through an arbitrary slice silently.
        if value is not None and not value.startswith(("thread_", "conv_")):
            raise PydanticCustomError(
                "assistd_invalid_value",
                "Invalid '{param}': expected a thread id (thread_... or conv_...) as the cursor.",
            )
        return value


class ModelRoute(WireModel):
    """One entry of the routing table: an exact model name or a glob, and where it goes."""

    id: str  # the name (or glob) clients use
    object: Literal["model"] = "model"
    pattern: bool  # a glob such as `gpt-*` rather than one name
    backend: str
    upstream_model: str | None  # the name sent to the backend, when the route renames it


class DefaultModelRoute(WireModel):
    backend: str
    upstream_model: str | None


class ModelList(WireModel):
    object: Literal["list"] = "list"
    data: list[ModelRoute]
    default: DefaultModelRoute | None  # where any other name goes; None: unknown names are refused


class MissingFile(WireModel):
    """A file an import referenced (an attachment, an image, a citation) whose bytes it was not given."""

    id: str
    object: Literal["import.missing_file"] = "import.missing_file"
    filename: str
    bytes: int | None
    created_at: int | None
    thread_id: str | None  # a thread that references it
    recorded_at: int


class MissingFileList(WireModel):
    object: Literal["list"] = "list"
    data: list[MissingFile]
