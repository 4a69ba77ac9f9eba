"""Tool resources given on assistants and threads: validated against this project's objects."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from assistd.errors import InvalidRequest
from assistd.protocol.tools import ToolResources, ToolResourcesUpdate, normalize_tool_resources
from assistd.protocol.validation import to_invalid_request
from assistd.protocol.vector_stores import VectorStoreCreate
from assistd.services.files import FileService
from assistd.services.vector_stores import VectorStoreService


async def check_tool_resources(
    files: FileService,
    stores: VectorStoreService,
    project_id: str,
    resources: ToolResources | ToolResourcesUpdate | None,
) -> dict[str, Any]:
    """Validate references, create stores given inline (`vector_stores`), and return the stored form."""
    if resources is None:
        return {}
    if resources.code_interpreter is not None:
        await files.require(project_id, resources.code_interpreter.file_ids, "tool_resources.code_interpreter.file_ids")
    stored = normalize_tool_resources(resources)
    search = resources.file_search
    if search is not None:
        ids = list(search.vector_store_ids or [])
        await stores.require(project_id, ids, "tool_resources.file_search.vector_store_ids")
        helpers = getattr(search, "vector_stores", None) or []
        if ids and helpers:
            raise InvalidRequest(
                "Give either 'vector_store_ids' or 'vector_stores' in 'tool_resources.file_search', not both.",
                param="tool_resources.file_search",
                code="invalid_value",
            )
        for i, helper in enumerate(helpers):
            try:
                body = VectorStoreCreate(
                    file_ids=helper.file_ids, chunking_strategy=helper.chunking_strategy, metadata=helper.metadata
                )
            except ValidationError as exc:
                raise to_invalid_request(exc, f"tool_resources.file_search.vector_stores[{i}]") from None
            ids.append((await stores.create(project_id, body)).id)
        stored["file_search"] = {"vector_store_ids": ids}
    return stored
