"""The File object and the files list query."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from assistd.protocol.common import WireModel

UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
EXPIRES_MIN_SECONDS = 3600
EXPIRES_MAX_SECONDS = 2_592_000


def _unset(value: object) -> bool:
    # The spec types expires_at and status_details as plain integer/string (not nullable): omitted, not null.
    return value is None


class FileObject(WireModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    expires_at: int | None = Field(exclude_if=_unset)
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"]
    status_details: str | None = Field(default=None, exclude_if=_unset)


class FileListParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(default=10_000, ge=1, le=10_000)
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    purpose: str | None = None
