"""Threads and their messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from assistd import ids
from assistd.adapters.assistants import message_list_json, to_message
from assistd.db.database import Connection, Database
from assistd.db.wakeups import RunStop, announce
from assistd.engine.lifecycle import active_run_id
from assistd.engine.signals import RunSignals
from assistd.errors import InvalidRequest, not_found
from assistd.protocol.common import Deleted, ListParams
from assistd.protocol.messages import Message, MessageCreate, MessageUpdate, stored_content
from assistd.protocol.threads import Thread, ThreadCreate, ThreadUpdate
from assistd.services.common import now
from assistd.services.files import FileService
from assistd.services.resources import check_tool_resources
from assistd.services.vector_stores import VectorStoreService
from assistd.stores import messages as message_store
from assistd.stores import threads as store
from assistd.stores.messages import MessageRecord
from assistd.stores.threads import ThreadRecord


def to_thread(row: ThreadRecord) -> Thread:
    return Thread(id=row.id, created_at=row.created_at, tool_resources=row.tool_resources, metadata=row.metadata)


def new_message(thread_id: str, body: MessageCreate, at: int) -> MessageRecord:
    """A message given by the client (on its own, with a new thread, or before a run), complete at once."""
    return MessageRecord(
        id=ids.new_id(ids.MESSAGE),
        thread_id=thread_id,
        created_at=at,
        role=body.role,
        status="completed",
        content=stored_content(body.content),
        attachments=[a.model_dump() for a in body.attachments] if body.attachments is not None else [],
        metadata=body.metadata or {},
        incomplete_details=None,
        completed_at=at,
        incomplete_at=None,
        assistant_id=None,
        run_id=None,
    )


def _merge_attachments(resources: dict[str, Any], bodies: list[MessageCreate]) -> dict[str, Any]:
    """code_interpreter attachments join the thread's code_interpreter files (spec §3.3)."""
    extra = [
        a.file_id
        for body in bodies
        for a in body.attachments or []
        if any(tool.type == "code_interpreter" for tool in a.tools)
    ]
    if not extra:
        return resources
    current = list(resources.get("code_interpreter", {}).get("file_ids", []))
    merged = dict(resources)
    merged["code_interpreter"] = {"file_ids": list(dict.fromkeys(current + extra))}
    return merged


def _search_attachments(bodies: list[MessageCreate]) -> list[str]:
    """Files attached for file_search: they go into the thread's vector store."""
    found = [
        a.file_id
        for body in bodies
        for a in body.attachments or []
        if any(tool.type == "file_search" for tool in a.tools)
    ]
    return list(dict.fromkeys(found))


class ThreadService:
    def __init__(
        self,
        db: Database,
        files: FileService,
        stores: VectorStoreService,
        on_delete: Callable[[str], Awaitable[None]] | None = None,
        signals: RunSignals | None = None,
    ) -> None:
        self.on_delete = on_delete  # ends what lives with the thread outside the database (its sandbox)
        self.signals = signals  # stops the thread's run when it executes in this process
        self.db = db
        self.files = files
        self.stores = stores

    async def check_message(self, project_id: str, body: MessageCreate, param: str) -> None:
        file_ids = [a.file_id for a in body.attachments or []]
        await self.files.require(project_id, file_ids, f"{param}attachments")
        if not isinstance(body.content, str):
            image_ids = [p.image_file.file_id for p in body.content if p.type == "image_file"]
            await self.files.require(project_id, image_ids, f"{param}content")

    # --- threads --------------------------------------------------------------------------------

    async def create(self, project_id: str, body: ThreadCreate) -> Thread:
        messages = body.messages or []
        for i, message in enumerate(messages):
            await self.check_message(project_id, message, f"messages[{i}].")
        resources = _merge_attachments(
            await check_tool_resources(self.files, self.stores, project_id, body.tool_resources), messages
        )
        at = now()
        thread_id = ids.new_id(ids.THREAD)
        searchable = _search_attachments(messages)
        async with self.db.write() as conn:
            if searchable:
                resources = await self.stores.add_to_thread_store(conn, project_id, resources, searchable)
            record = ThreadRecord(
                id=thread_id,
                project_id=project_id,
                created_at=at,
                tool_resources=resources,
                metadata=body.metadata or {},
            )
            await store.insert(conn, record)
            if messages:
                await message_store.insert_messages(conn, [new_message(thread_id, m, at) for m in messages])
        if searchable:
            self.stores.notify()
        return to_thread(record)

    async def thread_row(self, conn: Connection, project_id: str, thread_id: str) -> ThreadRecord:
        """The thread, or the API's 404 (runs look their thread up with it too)."""
        return await store.get(conn, project_id, thread_id)

    async def get(self, project_id: str, thread_id: str) -> Thread:
        async with self.db.read() as conn:
            return to_thread(await self.thread_row(conn, project_id, thread_id))

    async def update(self, project_id: str, thread_id: str, body: ThreadUpdate) -> Thread:
        changes: dict[str, object] = {}
        if body.metadata is not None:
            changes["metadata"] = body.metadata
        if body.given("tool_resources"):
            changes["tool_resources"] = await check_tool_resources(
                self.files, self.stores, project_id, body.tool_resources
            )
        async with self.db.write() as conn:
            record = await self.thread_row(conn, project_id, thread_id)
            if changes:
                await store.update_fields(conn, thread_id, changes)
        return to_thread(record).model_copy(update=changes)

    async def delete(self, project_id: str, thread_id: str) -> Deleted:
        """The thread goes with everything in it, an active run included: that run stops at once (its
        executor closes a stream of it as cancelled, engine/executor.py `_close_deleted`)."""
        async with self.db.write() as conn:
            await self.thread_row(conn, project_id, thread_id)
            active = await active_run_id(conn, thread_id)
            await store.remove_with_contents(conn, thread_id)
            if active is not None:  # the replica executing it stops it (db/wakeups.py)
                await announce(self.db, conn, RunStop(active))
        if active is not None and self.signals is not None:
            self.signals.cancel(active)  # executing here: at once
        if self.on_delete is not None:
            await self.on_delete(thread_id)
        return Deleted(id=thread_id, object="thread.deleted")

    # --- messages -------------------------------------------------------------------------------

    async def create_message(self, project_id: str, thread_id: str, body: MessageCreate) -> Message:
        await self.check_message(project_id, body, "")
        message = new_message(thread_id, body, now())
        async with self.db.write() as conn:
            thread = await self.thread_row(conn, project_id, thread_id)
            active = await active_run_id(conn, thread_id)
            if active is not None:
                raise InvalidRequest(f"Can't add messages to {thread_id} while a run {active} is active.")
            await message_store.insert_messages(conn, [message])
            resources = _merge_attachments(thread.tool_resources, [body])
            searchable = _search_attachments([body])
            if searchable:
                resources = await self.stores.add_to_thread_store(conn, project_id, resources, searchable)
            if resources is not thread.tool_resources:
                await store.update_fields(conn, thread_id, {"tool_resources": resources})
        if searchable:
            self.stores.notify()
        return to_message(message)

    async def get_message(self, project_id: str, thread_id: str, message_id: str) -> Message:
        async with self.db.read() as conn:
            await self.thread_row(conn, project_id, thread_id)
            return to_message(await message_store.get_message(conn, thread_id, message_id))

    async def list_messages_json(
        self, project_id: str, thread_id: str, params: ListParams, run_id: str | None
    ) -> bytes:
        """A page of the thread's messages as the response's bytes: one query, rows to JSON without building models."""
        async with self.db.reader() as reader:
            page = await message_store.json_page(reader, project_id, thread_id, run_id, params)
        if page is None:
            raise not_found("thread", thread_id)
        return message_list_json(page)

    async def update_message(self, project_id: str, thread_id: str, message_id: str, body: MessageUpdate) -> Message:
        async with self.db.write() as conn:
            await self.thread_row(conn, project_id, thread_id)
            message = await message_store.get_message(conn, thread_id, message_id)
            if body.metadata is None:
                return to_message(message)
            await message_store.set_message_metadata(conn, message_id, body.metadata)
        return to_message(message).model_copy(update={"metadata": body.metadata})

    async def delete_message(self, project_id: str, thread_id: str, message_id: str) -> Deleted:
        async with self.db.write() as conn:
            await self.thread_row(conn, project_id, thread_id)
            await message_store.get_message(conn, thread_id, message_id)
            await message_store.remove_message(conn, message_id)
        return Deleted(id=message_id, object="thread.message.deleted")
