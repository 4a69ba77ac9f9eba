"""Assistants: create, read, list, modify, delete."""

from __future__ import annotations

from assistd import ids
from assistd.db.database import Database
from assistd.protocol.assistants import Assistant, AssistantCreate, AssistantUpdate
from assistd.protocol.common import Deleted, ListPage, ListParams
from assistd.protocol.tools import normalize_response_format, normalize_tool
from assistd.services.common import list_page, now
from assistd.services.files import FileService
from assistd.services.resources import check_tool_resources
from assistd.services.vector_stores import VectorStoreService
from assistd.stores import assistants as store
from assistd.stores.assistants import AssistantRecord


def to_assistant(row: AssistantRecord) -> Assistant:
    return Assistant(
        id=row.id,
        created_at=row.created_at,
        name=row.name,
        description=row.description,
        model=row.model,
        instructions=row.instructions,
        tools=row.tools,
        tool_resources=row.tool_resources,
        metadata=row.metadata,
        temperature=row.temperature,
        top_p=row.top_p,
        response_format=row.response_format if row.response_format is not None else "auto",
        reasoning_effort=row.reasoning_effort,
    )


class AssistantService:
    def __init__(self, db: Database, files: FileService, stores: VectorStoreService) -> None:
        self.db = db
        self.files = files
        self.stores = stores

    async def create(self, project_id: str, body: AssistantCreate) -> Assistant:
        resources = await check_tool_resources(self.files, self.stores, project_id, body.tool_resources)
        record = AssistantRecord(
            id=ids.new_id(ids.ASSISTANT),
            project_id=project_id,
            created_at=now(),
            name=body.name,
            description=body.description,
            model=body.model,
            instructions=body.instructions,
            tools=[normalize_tool(tool) for tool in body.tools or []],
            tool_resources=resources,
            metadata=body.metadata or {},
            temperature=body.temperature if body.temperature is not None else 1.0,
            top_p=body.top_p if body.top_p is not None else 1.0,
            response_format=normalize_response_format(body.response_format),
            reasoning_effort=body.reasoning_effort,
        )
        async with self.db.write() as conn:
            await store.insert(conn, record)
        return to_assistant(record)

    async def get(self, project_id: str, assistant_id: str) -> Assistant:
        async with self.db.read() as conn:
            return to_assistant(await store.get(conn, project_id, assistant_id))

    async def list(self, project_id: str, params: ListParams) -> ListPage[Assistant]:
        async with self.db.read() as conn:
            page = await store.page(conn, project_id, params)
        return list_page(page, to_assistant)

    async def update(self, project_id: str, assistant_id: str, body: AssistantUpdate) -> Assistant:
        changes: dict[str, object] = {}
        for name in ("name", "description", "instructions", "reasoning_effort"):
            if body.given(name):
                changes[name] = getattr(body, name)
        # Fields that cannot be null keep their value when the client sends null.
        if body.model is not None:
            changes["model"] = body.model
        if body.tools is not None:
            changes["tools"] = [normalize_tool(tool) for tool in body.tools]
        if body.metadata is not None:
            changes["metadata"] = body.metadata
        if body.given("temperature"):
            changes["temperature"] = body.temperature if body.temperature is not None else 1.0
        if body.given("top_p"):
            changes["top_p"] = body.top_p if body.top_p is not None else 1.0
        if body.given("response_format"):
            changes["response_format"] = normalize_response_format(body.response_format)
        if body.given("tool_resources"):
            changes["tool_resources"] = await check_tool_resources(
                self.files, self.stores, project_id, body.tool_resources
            )
        async with self.db.write() as conn:
            record = await store.get(conn, project_id, assistant_id)
            if changes:
                await store.update_fields(conn, assistant_id, changes)
        return to_assistant(record).model_copy(update=changes)

    async def delete(self, project_id: str, assistant_id: str) -> Deleted:
        async with self.db.write() as conn:
            await store.get(conn, project_id, assistant_id)
            await store.remove(conn, assistant_id)
        return Deleted(id=assistant_id, object="assistant.deleted")
