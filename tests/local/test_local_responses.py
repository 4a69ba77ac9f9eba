"""The Responses API on the bundled model (SmolLM2-135M on llama.cpp), for real: no upstream, no key.

A 135M model answers poorly; these tests check what the server guarantees whatever it says: a plain
response completes with text and usage, a streamed one (`responses.stream()`) sends its text in several
deltas that add up to the stored answer, and a `text.format` json_schema response validates against
its schema (docs/responses.md, docs/local-model.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import jsonschema
import pytest
from openai import OpenAI

from assistd.testing.server import LiveServer


@pytest.fixture(scope="module")
def local(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Callable[..., LiveServer]
) -> LiveServer:
    # No upstream: every model name routes to the bundled local model.
    env = {"ASSISTD_UPSTREAM_BASE_URL": "", "ASSISTD_LOCAL_ENABLED": "true", "ASSISTD_LOCAL_CONTEXT_WINDOW": "4096"}
    return launch(request, tmp_path_factory, "sqlite", env=env)


@pytest.fixture()
def llm(local: LiveServer) -> OpenAI:
    return OpenAI(base_url=local.base_url, api_key="no-key-needed", max_retries=0, timeout=300)


def test_plain_response_completes_with_text(llm: OpenAI) -> None:
    response = llm.responses.create(
        model="gpt-4o-mini", input="What is the capital of France?", instructions="You are a helpful assistant."
    )
    assert response.status == "completed", response.error
    assert response.output_text.strip()
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert llm.responses.retrieve(response.id).output_text == response.output_text


def test_streamed_response_sends_several_text_deltas(llm: OpenAI) -> None:
    deltas: list[str] = []
    kinds: list[str] = []
    with llm.responses.stream(
        model="gpt-4o", input="Write two sentences about the sea.", max_output_tokens=128
    ) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert final.status in ("completed", "incomplete"), final.error
    assert kinds[0] == "response.created" and kinds[-1] == f"response.{final.status}"
    assert len(deltas) > 3
    assert final.output_text == "".join(deltas)
    assert llm.responses.retrieve(final.id).output_text == final.output_text


def test_json_schema_text_format_validates(llm: OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "country", "population"],
        "additionalProperties": False,
    }
    response = llm.responses.create(
        model="gpt-4o",
        input="Describe Paris as JSON.",
        text={"format": {"type": "json_schema", "name": "city", "schema": schema, "strict": True}},
    )
    assert response.status == "completed", response.error
    assert response.text.format.type == "json_schema"
    jsonschema.validate(json.loads(response.output_text), schema)
