"""Runs on long threads: each message's token count is kept with it, by the counter that made it
(engine/prompt.py, adapters/prompt.py, stores/messages.py), so the next run reads it instead of
counting the thread again; and the prompt is the same as counting afresh: the newest messages that fit.

The server counts with the fake upstream's /tokenize, whose requests the fake counts: a count kept in
the database shows as a /tokenize request not made after a restart (which empties the counter's own
cache in memory).
"""

from __future__ import annotations

import os
import uuid
import warnings
from typing import Any

import openai
import pytest

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import LiveServer

BACKENDS = os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")
WINDOW = 2048  # with the answer's reserve, 1536 tokens of prompt: about 60 of the thread's messages
LENGTH = 200


@pytest.fixture(params=BACKENDS)
def long_server(request: pytest.FixtureRequest) -> LiveServer:
    env = {
        "ASSISTD_UPSTREAM_CONTEXT_WINDOW": str(WINDOW),
        "ASSISTD_UPSTREAM_TOKEN_COUNTER": "tokenize",
    }
    launch = request.getfixturevalue("launch")
    server: LiveServer = launch(request, request.getfixturevalue("tmp_path_factory"), request.param, env=env)
    return server


def restart(server: LiveServer, **env: str) -> None:
    """The same server on the same database, its caches in memory gone (and `env` changed)."""
    server.stop()
    server.env.update(env)
    server.start()


def client_of(server: LiveServer) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)


@pytest.fixture()
def model(fake: FakeUpstream) -> str:
    return f"long-{uuid.uuid4().hex[:8]}"


def messages(n: int) -> list[dict[str, str]]:
    """Distinct texts (each is sent to /tokenize once), user and assistant by turns."""
    return [
        {
            "role": "user" if i % 2 == 0 else "assistant",
            "content": f"Message {i} of the long thread: the weather in city number {i * 37 % 101} is mild today.",
        }
        for i in range(n)
    ]


def run(client: Any, thread_id: str, assistant_id: str) -> None:
    done = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert done.status == "completed", done.last_error


def newest_that_fit(sent: list[dict[str, Any]], thread: list[dict[str, str]]) -> None:
    """The prompt is the thread's newest messages, in order, and not all of them (the window cut it)."""
    shown = [(m["role"], m["content"]) for m in sent]
    assert 32 < len(shown) < len(thread)
    assert shown == [(m["role"], m["content"]) for m in thread[-len(shown) :]]


def test_counts_are_kept_with_the_messages_and_the_next_run_reuses_them(
    long_server: LiveServer, fake: FakeUpstream, model: str
) -> None:
    client = client_of(long_server)
    fake.script(model, Reply.say("First answer."), Reply.say("Second answer."), Reply.say("Second answer."))
    assistant = client.beta.assistants.create(model=model)
    thread = messages(LENGTH)
    kept = client.beta.threads.create(messages=thread).id

    before = fake.state.tokenized
    run(client, kept, assistant.id)
    first_prompt = fake.requests(model)[-1]["messages"]
    newest_that_fit(first_prompt, thread)
    assert fake.state.tokenized - before >= len(first_prompt), "each message shown was counted"
    client.close()

    restart(long_server)
    client = client_of(long_server)
    before = fake.state.tokenized
    run(client, kept, assistant.id)
    counted = fake.state.tokenized - before
    assert counted <= 2, f"the counts kept with the messages were reused, yet {counted} texts were tokenized"
    thread.append({"role": "assistant", "content": "First answer."})
    reused = fake.requests(model)[-1]["messages"]
    newest_that_fit(reused, thread)

    # The same messages in a thread never counted before: the same prompt.
    fresh = client.beta.threads.create(messages=thread).id
    run(client, fresh, assistant.id)
    assert fake.requests(model)[-1]["messages"] == reused
    client.close()


def test_a_count_by_one_counter_is_not_used_by_another(long_server: LiveServer, fake: FakeUpstream, model: str) -> None:
    client = client_of(long_server)
    fake.script(model, *[Reply.say("Noted.")] * 3)
    assistant = client.beta.assistants.create(model=model)
    thread = messages(LENGTH)
    counted_by_tokenize = client.beta.threads.create(messages=thread).id
    run(client, counted_by_tokenize, assistant.id)  # kept: the fake's tokens (more than cl100k's)
    client.close()

    restart(long_server, ASSISTD_UPSTREAM_TOKEN_COUNTER="tiktoken", ASSISTD_UPSTREAM_TOKEN_MARGIN="0")
    client = client_of(long_server)
    thread.append({"role": "assistant", "content": "Noted."})
    run(client, counted_by_tokenize, assistant.id)
    recounted = fake.requests(model)[-1]["messages"]
    fresh = client.beta.threads.create(messages=thread).id
    run(client, fresh, assistant.id)
    by_tiktoken = fake.requests(model)[-1]["messages"]
    assert recounted == by_tiktoken
    newest_that_fit(by_tiktoken, thread)
    assert len(by_tiktoken) > len(fake.requests(model)[0]["messages"]), "cl100k counts fewer: more messages fit"
    client.close()
