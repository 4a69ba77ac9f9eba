"""Deleting a vector store detaches it from every assistant and thread, as on OpenAI (issue 12, item 2)."""

from __future__ import annotations

import uuid
from typing import Any

from assistd.testing.fake_upstream import FakeUpstream, Reply


def _store_ids(obj: Any) -> list[str] | None:
    resources = obj.tool_resources
    if resources is None or resources.file_search is None:
        return None
    return list(resources.file_search.vector_store_ids or [])


def test_deleting_a_store_detaches_it_everywhere(client: Any) -> None:
    doomed = client.vector_stores.create(name="doomed")
    kept = client.vector_stores.create(name="kept")
    code_file = client.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="assistants")
    both = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "file_search"}, {"type": "code_interpreter"}],
        tool_resources={
            "file_search": {"vector_store_ids": [doomed.id]},
            "code_interpreter": {"file_ids": [code_file.id]},
        },
    )
    other = client.beta.assistants.create(
        model="gpt-4o", tools=[{"type": "file_search"}], tool_resources={"file_search": {"vector_store_ids": [kept.id]}}
    )
    thread = client.beta.threads.create(tool_resources={"file_search": {"vector_store_ids": [doomed.id]}})
    other_thread = client.beta.threads.create(tool_resources={"file_search": {"vector_store_ids": [kept.id]}})

    deleted = client.vector_stores.delete(doomed.id)
    assert deleted.deleted is True

    after = client.beta.assistants.retrieve(both.id)
    assert _store_ids(after) == []
    assert after.tool_resources.code_interpreter.file_ids == [code_file.id]  # the rest is untouched
    assert _store_ids(client.beta.threads.retrieve(thread.id)) == []
    # Stores that were not deleted stay where they were.
    assert _store_ids(client.beta.assistants.retrieve(other.id)) == [kept.id]
    assert _store_ids(client.beta.threads.retrieve(other_thread.id)) == [kept.id]
    listed = {a.id: a for a in client.beta.assistants.list(limit=100)}
    assert _store_ids(listed[both.id]) == []


def test_a_file_search_run_works_after_its_store_is_deleted(client: Any, fake: FakeUpstream) -> None:
    model = f"detach-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply.call("file_search", {"queries": ["whales"]}), Reply.say("Nothing found."))
    doc = client.files.create(file=("moby.txt", b"Call me Ishmael. The whale was white. " * 20), purpose="assistants")
    store = client.vector_stores.create(name="library", file_ids=[doc.id])
    assistant = client.beta.assistants.create(
        model=model, tools=[{"type": "file_search"}], tool_resources={"file_search": {"vector_store_ids": [store.id]}}
    )
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Any whales?"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    client.vector_stores.delete(store.id)

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc"))
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    (call,) = steps[0].step_details.tool_calls
    assert call.type == "file_search" and list(call.file_search.results or []) == []


def test_a_thread_gets_a_new_store_for_attachments_after_its_store_is_deleted(client: Any) -> None:
    first = client.files.create(file=("a.txt", b"first file"), purpose="assistants")
    search = [{"type": "file_search"}]
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "read this", "attachments": [{"file_id": first.id, "tools": search}]}]
    )
    (old_store,) = _store_ids(thread) or [None]
    assert old_store is not None
    client.vector_stores.delete(old_store)
    assert _store_ids(client.beta.threads.retrieve(thread.id)) == []

    second = client.files.create(file=("b.txt", b"second file"), purpose="assistants")
    client.beta.threads.messages.create(
        thread.id, role="user", content="and this", attachments=[{"file_id": second.id, "tools": search}]
    )
    (new_store,) = _store_ids(client.beta.threads.retrieve(thread.id)) or [None]
    assert new_store is not None and new_store != old_store
    files = [f.id for f in client.vector_stores.files.list(vector_store_id=new_store)]
    assert files == [second.id]
