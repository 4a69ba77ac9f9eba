"""`prompt: {"id": "asst_…"}`: an assistant drives a response (its model, instructions, tools and
tool_resources), through the official SDK against a live server with the fake upstream (docs/responses.md)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from assistd.testing.fake_upstream import FakeUpstream, Reply

from .test_file_search_runs import cited_answer, ready_store
from .test_responses import WEATHER, api_error, chat, create, new_model

pytestmark = pytest.mark.skipif(not hasattr(openai.OpenAI, "responses"), reason="this openai SDK has no Responses API")

ASSISTANT_WEATHER = {
    "type": "function",
    "function": {k: v for k, v in WEATHER.items() if k not in ("type",)},
}


def test_an_assistant_as_prompt_gives_model_instructions_and_file_search_over_its_stores(
    client: Any, fake: FakeUpstream
) -> None:
    store_id, book_id = ready_store(client)
    model = new_model()
    assistant = client.beta.assistants.create(
        model=model,
        instructions="You answer questions about books. Be {{tone}}.",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
        temperature=0.3,
    )
    marker = "【0:0†moby.txt】"
    answer = f"Captain Ahab hunted the whale {marker}."
    cited_answer(fake, model, answer)
    body = create(
        client,
        prompt={"id": assistant.id, "variables": {"tone": "brief"}},
        input="Who hunted Moby Dick?",
        instructions="Answer in English.",
    )
    assert body["status"] == "completed", body["error"]
    assert body["model"] == model and body["temperature"] == 0.3
    assert body["instructions"] == "You answer questions about books. Be brief.\n\nAnswer in English."
    search, message = body["output"]
    assert search["type"] == "file_search_call"
    assert message["content"][0]["annotations"] == [
        {"type": "file_citation", "file_id": book_id, "filename": "moby.txt", "index": answer.index(marker)}
    ]
    assert [t["type"] for t in body["tools"]] == ["file_search"]
    assert body["tools"][0]["vector_store_ids"] == [store_id]
    system = chat(fake, model, 0)[0]
    assert system["role"] == "system" and system["content"].startswith("You answer questions about books. Be brief.")


def test_the_response_run_is_the_assistants_in_the_assistants_view(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    assistant = client.beta.assistants.create(model=model, instructions="Be brief.")
    fake.script(model, Reply.say("Hi."))
    conversation = client.conversations.create()
    body = create(client, prompt={"id": assistant.id}, input="Hello", conversation=conversation.id)
    assert body["output"][0]["content"][0]["text"] == "Hi."
    (run,) = client.beta.threads.runs.list(thread_id=conversation.id).data
    assert run.id == body["id"] and run.assistant_id == assistant.id
    (answer,) = [m for m in client.beta.threads.messages.list(conversation.id) if m.role == "assistant"]
    assert answer.assistant_id == assistant.id


def test_the_request_adds_tools_and_overrides_the_model_and_a_function_by_name(client: Any, fake: FakeUpstream) -> None:
    model, other = new_model(), new_model()
    assistant = client.beta.assistants.create(model=model, instructions="Weather bot.", tools=[ASSISTANT_WEATHER])
    fake.script(other, Reply.call("get_weather", {"city": "Oslo"}))
    extra = {
        "type": "function",
        "name": "get_time",
        "parameters": {"type": "object", "properties": {}},
        "strict": False,
    }
    body = create(client, prompt={"id": assistant.id}, model=other, input="Weather in Oslo?", tools=[extra])
    assert body["model"] == other and body["instructions"] == "Weather bot."
    assert [t["name"] for t in body["tools"]] == ["get_weather", "get_time"]
    (call,) = body["output"]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    offered = [t["function"]["name"] for t in fake.requests(other)[0]["tools"]]
    assert offered == ["get_weather", "get_time"]


def test_prompt_errors(client: Any) -> None:
    with pytest.raises(openai.NotFoundError) as nf:
        client.responses.create(prompt={"id": "asst_missing"}, input="x")
    assert api_error(nf, 404)["param"] == "prompt.id"
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(prompt={"id": "pmpt_123"}, input="x", model=new_model())
    assert api_error(bad, 400)["param"] == "prompt.id"
