"""The async client (AsyncOpenAI) against the live server, including concurrent writes."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import openai
import pytest

from conformance import assert_conforms

from .conftest import assert_not_found, assert_object


def run(server: Any, scenario: Any) -> None:
    async def main() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
        try:
            await scenario(client)
        finally:
            await client.close()

    asyncio.run(main())


def test_async_assistant_lifecycle(server: Any) -> None:
    async def scenario(client: openai.AsyncOpenAI) -> None:
        raw = await client.beta.assistants.with_raw_response.create(model="gpt-4o", name="async", metadata={"a": "1"})
        assert raw.headers.get("x-request-id")
        body = raw.http_response.json()
        assert_conforms(body, "AssistantObject")
        assert_object(body, prefix="asst_", object_type="assistant")
        created = raw.parse()

        fetched = await client.beta.assistants.retrieve(created.id)
        assert fetched.model_dump() == created.model_dump()
        updated = await client.beta.assistants.update(created.id, metadata={"b": "2"})
        assert updated.metadata == {"b": "2"} and updated.name == "async"
        ids = [a.id async for a in client.beta.assistants.list(order="desc", limit=100)]
        assert created.id in ids

        deleted = await client.beta.assistants.delete(created.id)
        assert deleted.deleted is True and deleted.id == created.id
        with pytest.raises(openai.NotFoundError) as exc_info:
            await client.beta.assistants.retrieve(created.id)
        assert_not_found(exc_info, "assistant", created.id)

    run(server, scenario)


def test_async_threads_messages_and_auto_pagination(server: Any) -> None:
    async def scenario(client: openai.AsyncOpenAI) -> None:
        thread = await client.beta.threads.create(
            messages=[{"role": "user", "content": "first"}], metadata={"async": "yes"}
        )
        assert thread.id.startswith("thread_") and thread.metadata == {"async": "yes"}
        first = [m.id async for m in client.beta.threads.messages.list(thread.id)]
        ids = first + [
            (await client.beta.threads.messages.create(thread.id, role="user", content=f"m{i}")).id for i in range(24)
        ]
        assert len(ids) == 25

        asc = [m.id async for m in client.beta.threads.messages.list(thread.id, order="asc", limit=4)]
        desc = [m.id async for m in client.beta.threads.messages.list(thread.id, order="desc", limit=4)]
        assert asc == ids
        assert desc == ids[::-1]

        message = await client.beta.threads.messages.update(ids[3], thread_id=thread.id, metadata={"x": "y"})
        assert message.metadata == {"x": "y"}
        assert (await client.beta.threads.messages.retrieve(ids[3], thread_id=thread.id)).metadata == {"x": "y"}
        gone = await client.beta.threads.messages.delete(ids[3], thread_id=thread.id)
        assert gone.deleted is True
        with pytest.raises(openai.NotFoundError):
            await client.beta.threads.messages.retrieve(ids[3], thread_id=thread.id)

        updated = await client.beta.threads.update(thread.id, metadata={})
        assert updated.metadata == {}
        assert (await client.beta.threads.delete(thread.id)).deleted is True
        with pytest.raises(openai.NotFoundError):
            await client.beta.threads.retrieve(thread.id)

    run(server, scenario)


def test_async_concurrent_message_creates_all_land(server: Any) -> None:
    async def scenario(client: openai.AsyncOpenAI) -> None:
        thread = await client.beta.threads.create()
        created = await asyncio.gather(
            *(client.beta.threads.messages.create(thread.id, role="user", content=f"c{i}") for i in range(20))
        )
        ids = {m.id for m in created}
        assert len(ids) == 20
        listed = [m async for m in client.beta.threads.messages.list(thread.id, order="asc", limit=7)]
        assert {m.id for m in listed} == ids
        assert [m.id for m in listed] == sorted(ids)  # ids sort by creation
        assert sorted(m.content[0].text.value for m in listed) == sorted(f"c{i}" for i in range(20))

    run(server, scenario)
