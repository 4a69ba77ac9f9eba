"""Tool resources given on assistants and threads: validated against this project's objects."""

from __future__ import annotations

from typing import Any

from assistd.errors import InvalidRequest
from assistd.protocol.tools import ToolResources, ToolResourcesUpdate, normalize_tool_resources
from assistd.services.files import FileService


async def check_tool_resources(
    files: FileService, project_id: str, resources: ToolResources | ToolResourcesUpdate | None
) -> dict[str, Any]:
    """Validate references and return the stored form."""
    if resources is None:
        return {}
    if resources.code_interpreter is not None:
        await files.require(project_id, resources.code_interpreter.file_ids, "tool_resources.code_interpreter.file_ids")
    if resources.file_search is not None and getattr(resources.file_search, "vector_stores", None):
        raise InvalidRequest(
            "Creating vector stores inline through 'tool_resources.file_search.vector_stores' is not "
            "available in this version of assistd; create the store with POST /v1/vector_stores and "
            "pass its id in 'vector_store_ids'.",
            param="tool_resources.file_search.vector_stores",
            code="unsupported_parameter",
        )
    return normalize_tool_resources(resources)
