"""Conversations: threads seen through OpenAI's Conversations API (docs/conversations.md).

A conversation IS a thread: one row, one id. New conversations get `conv_` ids; every thread id works
here and every conversation id works on /v1/threads. Items are the thread's messages, its runs'
tool-call steps, and the stored items that have no Assistants form (adapters/conversations.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from assistd import ids
from assistd.adapters.conversations import (
    FUNCTION_OUTPUT,
    STORED_PREFIXES,
    ContainerFiles,
    SortKey,
    cited_files,
    cursor_key,
    linked_container_files,
    message_item,
    step_item_ref,
    step_items,
    stored_form,
    stored_item,
    tail,
    thread_content,
    to_conversation,
)
from assistd.db.database import Connection, Database
from assistd.engine.lifecycle import active_run_id
from assistd.errors import InvalidRequest, not_found
from assistd.protocol.conversations import (
    INCLUDES,
    Conversation,
    ConversationCreate,
    ConversationDeleted,
    ConversationItem,
    ConversationUpdate,
    FunctionCallOutputIn,
    InputFile,
    InputImage,
    ItemIn,
    ItemList,
    ItemListParams,
    ItemsCreate,
    MessageIn,
)
from assistd.protocol.threads import ThreadUpdate
from assistd.services.common import now
from assistd.services.files import FileService
from assistd.services.threads import ThreadService
from assistd.stores import containers as container_store
from assistd.stores import conversations as store
from assistd.stores import messages as message_store
from assistd.stores import threads as thread_store
from assistd.stores.conversations import ItemRecord
from assistd.stores.messages import MessageRecord
from assistd.stores.runs import StepRecord
from assistd.stores.threads import ThreadRecord

ITEM_KIND = "item"
# How a route names a file's content for code_interpreter image outputs (an absolute URL).
FileUrl = Callable[[str], str]


def check_include(values: Sequence[str]) -> frozenset[str]:
    for value in values:
        if value not in INCLUDES:
            raise InvalidRequest(
                f"Invalid value for 'include': {value!r}. Supported values are: {', '.join(INCLUDES)}.",
                param="include",
                code="invalid_value",
            )
    return frozenset(values)


class PlannedItems:
    """Input items turned into what is written: thread messages and stored items, each with its id.
    What any protocol appending to a conversation writes (a responses adapter's input and output too):
    `plan_items`, then `write_items` in the caller's transaction."""

    def __init__(self) -> None:
        self.messages: list[MessageRecord] = []
        self.stored: list[ItemRecord] = []
        self.order: list[str] = []  # the new items' ids, in the order given


def plan_items(thread_id: str, items: Sequence[ItemIn], at: int) -> PlannedItems:
    planned = PlannedItems()
    for item in items:
        content = thread_content(item) if isinstance(item, MessageIn) else None
        if isinstance(item, MessageIn) and content is not None:
            message = MessageRecord(
                id=ids.new_id(ids.MESSAGE),
                thread_id=thread_id,
                created_at=at,
                role=item.role,
                status="completed",
                content=content,
                attachments=[],
                metadata={},
                incomplete_details=None,
                completed_at=at,
                incomplete_at=None,
                assistant_id=None,
                run_id=None,
            )
            planned.messages.append(message)
            planned.order.append(message.id)
            continue
        item_id = ids.new_id(STORED_PREFIXES[item.type])
        record = ItemRecord(
            id=item_id,
            thread_id=thread_id,
            sort_key=tail(item_id),
            created_at=at,
            type=item.type,
            item=stored_form(item, item_id),
        )
        planned.stored.append(record)
        planned.order.append(item_id)
    return planned


async def write_items(conn: Connection, planned: PlannedItems) -> None:
    await message_store.insert_messages(conn, planned.messages)
    await store.insert_items(conn, planned.stored)


def _file_refs(items: Sequence[ItemIn], name: str = "items") -> list[tuple[str, str]]:
    """(file id, parameter) of every file an item names."""
    refs: list[tuple[str, str]] = []
    for i, item in enumerate(items):
        parts: list[object] = []
        if isinstance(item, MessageIn) and not isinstance(item.content, str):
            parts = list(item.content)
        elif isinstance(item, FunctionCallOutputIn) and not isinstance(item.output, str):
            parts = list(item.output)
        for j, part in enumerate(parts):
            if isinstance(part, InputImage | InputFile) and part.file_id is not None:
                refs.append((part.file_id, f"{name}[{i}].content[{j}].file_id"))
            if isinstance(part, InputImage) and part.file_id is None and part.image_url is None:
                raise InvalidRequest(
                    f"Invalid '{name}[{i}].content[{j}]': an input_image needs a file_id or an image_url.",
                    param=f"{name}[{i}].content[{j}]",
                    code="invalid_value",
                )
    return refs


class ConversationService:
    def __init__(self, db: Database, threads: ThreadService, files: FileService) -> None:
        self.db = db
        self.threads = threads
        self.files = files

    async def check_items(self, project_id: str, items: Sequence[ItemIn], name: str = "items") -> None:
        """The files the items name exist (a 400 naming the parameter, under `name`, otherwise)."""
        for file_id, param in _file_refs(items, name):
            await self.files.require(project_id, [file_id], param)

    # --- conversations ----------------------------------------------------------------------------

    async def create(self, project_id: str, body: ConversationCreate) -> Conversation:
        items = body.items or []
        await self.check_items(project_id, items)
        at = now()
        record = ThreadRecord(
            id=ids.new_id(ids.CONVERSATION),
            project_id=project_id,
            created_at=at,
            tool_resources={},
            metadata=body.metadata or {},
        )
        planned = plan_items(record.id, items, at)
        async with self.db.write() as conn:
            await thread_store.insert(conn, record)
            await write_items(conn, planned)
        return to_conversation(record)

    async def get(self, project_id: str, conversation_id: str) -> Conversation:
        async with self.db.read() as conn:
            return to_conversation(await store.get_conversation(conn, project_id, conversation_id))

    async def update(self, project_id: str, conversation_id: str, body: ConversationUpdate) -> Conversation:
        async with self.db.read() as conn:
            await store.get_conversation(conn, project_id, conversation_id)  # a 404 naming a conversation
        thread = await self.threads.update(project_id, conversation_id, ThreadUpdate(metadata=body.metadata))
        return Conversation(id=thread.id, created_at=thread.created_at, metadata=thread.metadata)

    async def delete(self, project_id: str, conversation_id: str) -> ConversationDeleted:
        """As deleting the thread: its messages, runs and items go with it (an active run stops)."""
        async with self.db.read() as conn:
            await store.get_conversation(conn, project_id, conversation_id)
        await self.threads.delete(project_id, conversation_id)
        return ConversationDeleted(id=conversation_id)

    # --- items ------------------------------------------------------------------------------------

    async def create_items(
        self, project_id: str, conversation_id: str, body: ItemsCreate, include: frozenset[str], file_url: FileUrl
    ) -> ItemList:
        await self.check_items(project_id, body.items)
        at = now()
        async with self.db.write() as conn:
            await store.get_conversation(conn, project_id, conversation_id)
            active = await active_run_id(conn, conversation_id)
            if active is not None:
                raise InvalidRequest(f"Can't add items to {conversation_id} while a run {active} is active.")
            planned = plan_items(conversation_id, body.items, at)
            await write_items(conn, planned)
            names = await store.file_names(conn, project_id, cited_files(planned.messages))
        by_id: dict[str, ConversationItem] = {m.id: message_item(m, names, include) for m in planned.messages}
        by_id.update({r.id: stored_item(r) for r in planned.stored})
        data = [by_id[item_id] for item_id in planned.order]
        return ItemList(
            data=data,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
            has_more=False,
        )

    async def list_items(
        self,
        project_id: str,
        conversation_id: str,
        params: ItemListParams,
        include: frozenset[str],
        file_url: FileUrl,
    ) -> ItemList:
        ascending = params.order == "asc"
        cursor = cursor_key(params.after) if params.after is not None else None
        bound = cursor[0] if cursor is not None else None
        want = params.limit + 1
        async with self.db.read() as conn:
            await store.get_conversation(conn, project_id, conversation_id)
            # Each source from the cursor on: inclusive, as a step's items share its key.
            messages = await store.messages_from(conn, conversation_id, bound, ascending, want + 1)
            steps = await store.tool_steps_from(conn, conversation_id, bound, ascending, want + 1)
            stored = await store.items_from(conn, conversation_id, bound, ascending, want + 1)
            # Rows become items once the page is cut (up to three times `limit` rows were read).
            keyed: list[tuple[SortKey, MessageRecord | ItemRecord | ConversationItem]] = []
            keyed += [((tail(m.id), 0), m) for m in messages]
            keyed += [((r.sort_key, 0), r) for r in stored]
            for step in steps:
                keyed += step_items(step, include, file_url)
            # A source that returned a full read may have more past its last row: nothing beyond that is sure.
            sources: list[Sequence[MessageRecord | StepRecord | ItemRecord]] = [messages, steps, stored]
            horizon = [_edge(rows) for rows in sources if len(rows) == want + 1]
            keyed.sort(key=lambda pair: pair[0], reverse=not ascending)
            if cursor is not None:
                keyed = [pair for pair in keyed if (pair[0] > cursor if ascending else pair[0] < cursor)]
            if horizon:
                edge = min(horizon) if ascending else max(horizon)
                keyed = [pair for pair in keyed if (pair[0][0] <= edge if ascending else pair[0][0] >= edge)]
            # A full source read limit + 2 rows from the cursor, so what is kept still holds over `limit` items.
            has_more = len(keyed) > params.limit
            page = [entry for _, entry in keyed[: params.limit]]
            kept = [entry for entry in page if isinstance(entry, MessageRecord)]
            names = await store.file_names(conn, project_id, cited_files(kept))
            containers = await container_store.cited(conn, project_id, linked_container_files(kept))
        data = [_as_item(entry, names, include, containers) for entry in page]
        return ItemList(
            data=data,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
            has_more=has_more,
        )

    async def _find(
        self,
        conn: Connection,
        project_id: str,
        conversation_id: str,
        item_id: str,
        include: frozenset[str],
        file_url: FileUrl,
    ) -> tuple[ConversationItem, MessageRecord | ItemRecord | None]:
        """The item and, when it can be deleted, its record; or the API's 404."""
        await store.get_conversation(conn, project_id, conversation_id)
        ref = step_item_ref(item_id)
        if ref is not None:
            step = await store.find_step(conn, conversation_id, ref[1])
            if step is not None:
                for _, item in step_items(step, include, file_url):
                    if item.id == item_id:
                        return item, None
            raise not_found(ITEM_KIND, item_id)
        message = await store.find_message(conn, conversation_id, item_id)
        if message is not None:
            names = await store.file_names(conn, project_id, cited_files([message]))
            containers = await container_store.cited(conn, project_id, linked_container_files([message]))
            return message_item(message, names, include, containers), message
        record = await store.find_item(conn, conversation_id, item_id)
        if record is None:
            raise not_found(ITEM_KIND, item_id)
        return stored_item(record), record

    async def get_item(
        self, project_id: str, conversation_id: str, item_id: str, include: frozenset[str], file_url: FileUrl
    ) -> ConversationItem:
        async with self.db.read() as conn:
            item, _ = await self._find(conn, project_id, conversation_id, item_id, include, file_url)
        return item

    async def delete_item(self, project_id: str, conversation_id: str, item_id: str, file_url: FileUrl) -> Conversation:
        """The item goes (a thread message too); a run's tool calls stay with their run step."""
        async with self.db.write() as conn:
            _, record = await self._find(conn, project_id, conversation_id, item_id, frozenset(), file_url)
            if record is None:
                kind = "function call output" if item_id.startswith(FUNCTION_OUTPUT) else "tool call"
                raise InvalidRequest(
                    f"Item {item_id} is a {kind} of a run step: it can't be deleted on its own "
                    "(delete the conversation, or keep it).",
                    param="item_id",
                )
            if isinstance(record, MessageRecord):
                await message_store.remove_message(conn, record.id)
            else:
                await store.remove_item(conn, record.id)
            thread = await store.get_conversation(conn, project_id, conversation_id)
        return to_conversation(thread)


def _as_item(
    entry: MessageRecord | ItemRecord | ConversationItem,
    names: dict[str, str],
    include: frozenset[str],
    containers: ContainerFiles,
) -> ConversationItem:
    if isinstance(entry, MessageRecord):
        return message_item(entry, names, include, containers)
    if isinstance(entry, ItemRecord):
        return stored_item(entry)
    return entry


def _edge(rows: Sequence[MessageRecord | StepRecord | ItemRecord]) -> str:
    """The key of a full source's last row: rows beyond it may exist unread."""
    last = rows[-1]
    return last.sort_key if isinstance(last, ItemRecord) else tail(last.id)
