"""Containers and container files (OpenAI's /v1/containers): wire objects, request bodies, list queries."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from assistd.protocol.common import ListParams, RequestModel, WireModel

DEFAULT_MINUTES = 20  # OpenAI's containers expire after 20 idle minutes
MEMORY_LIMITS = ("1g", "4g", "16g", "64g")


class ExpiresAfter(WireModel):
    anchor: Literal["last_active_at"] = "last_active_at"
    minutes: int


class Container(WireModel):
    id: str
    object: Literal["container"] = "container"
    name: str
    created_at: int
    status: Literal["running", "expired"]
    last_active_at: int
    expires_after: ExpiresAfter


class ContainerFile(WireModel):
    id: str
    object: Literal["container.file"] = "container.file"
    container_id: str
    created_at: int
    bytes: int
    path: str  # /mnt/data/<path under the data directory>
    source: Literal["user", "assistant"]


class ExpiresAfterParam(RequestModel):
    anchor: Literal["last_active_at"]
    minutes: int = Field(ge=1)  # the upper bound is ASSISTD_CONTAINER_MAX_MINUTES, checked by the service


class NetworkPolicyParam(RequestModel):
    type: Literal["disabled"]  # the sandbox has no network: an allowlist cannot be honoured


class ContainerCreate(RequestModel):
    name: str = Field(max_length=256)
    file_ids: list[str] = Field(default_factory=list, max_length=100)
    expires_after: ExpiresAfterParam | None = None
    memory_limit: Literal["1g", "4g", "16g", "64g"] | None = None  # accepted; the sandbox's own limit applies
    network_policy: NetworkPolicyParam | None = None


class ContainerFileCreate(RequestModel):
    """The JSON form of adding a file: an existing File's id (the multipart form uploads `file`)."""

    file_id: str = Field(min_length=1, max_length=64)


class ContainerListParams(ListParams):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
