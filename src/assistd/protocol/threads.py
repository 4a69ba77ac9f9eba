"""Thread requests and the Thread object."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from assistd.protocol.common import Metadata, RequestModel, WireModel
from assistd.protocol.messages import MessageCreate
from assistd.protocol.tools import ToolResources, ToolResourcesUpdate

# Not an OpenAI limit: a cap so one request cannot insert without bound (docs/threads.md).
THREAD_MAX_MESSAGES_ON_CREATE = 10_000


class ThreadCreate(RequestModel):
    messages: list[MessageCreate] | None = Field(default=None, max_length=THREAD_MAX_MESSAGES_ON_CREATE)
    tool_resources: ToolResources | None = None
    metadata: Metadata | None = None


class ThreadUpdate(RequestModel):
    tool_resources: ToolResourcesUpdate | None = None
    metadata: Metadata | None = None


class Thread(WireModel):
    id: str
    object: Literal["thread"] = "thread"
    created_at: int
    tool_resources: dict[str, Any]
    metadata: dict[str, str]
