"""docs/migration.md, followed step by step through the official SDK against a live server with the
fake upstream: an Assistants thread continued through Responses with the assistant's settings, a
function call answered with `function_call_output`, and the differences the page states
(instructions replace and are not inherited, `strict` defaults, usage names, a waiting run blocks)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from assistd.testing.fake_upstream import FakeUpstream, Reply

from .test_responses import api_error, chat, new_model

pytestmark = pytest.mark.skipif(not hasattr(openai.OpenAI, "responses"), reason="this openai SDK has no Responses API")

WEATHER_FN = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def settings_of(client: Any, assistant_id: str) -> dict[str, Any]:
    """Step 2 of docs/migration.md, as written there."""
    assistant = client.beta.assistants.retrieve(assistant_id)
    tools = []
    for tool in assistant.tools:
        if tool.type == "function":
            f = tool.function
            tools.append(
                {
                    "type": "function",
                    "name": f.name,
                    "description": f.description,
                    "parameters": f.parameters,
                    "strict": bool(f.strict),
                }
            )
    return {"model": assistant.model, "instructions": assistant.instructions, "tools": tools}


def system_prompt(fake: FakeUpstream, model: str, index: int = -1) -> str:
    return "\n".join(str(m["content"]) for m in chat(fake, model, index) if m["role"] == "system")


def test_an_assistants_thread_moves_to_responses_as_the_guide_says(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(
        model,
        Reply.say("Q1 was good."),  # the Assistants run
        Reply.call("get_weather", {"city": "Oslo"}),  # the first response: a function call
        Reply.say("Oslo is snowy."),  # the response with the call's output
        Reply.say("Short."),  # instructions of its own
        Reply.say("Plain."),  # none: not inherited
    )
    assistant = client.beta.assistants.create(
        model=model, instructions="BASE PROMPT", tools=[{"type": "function", "function": WEATHER_FN}]
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "How was Q1?"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, additional_instructions="EXTRA RULE"
    )
    assert run.status == "completed" and run.usage is not None
    assert "BASE PROMPT" in system_prompt(fake, model) and "EXTRA RULE" in system_prompt(fake, model)  # appended

    settings = settings_of(client, assistant.id)
    # Step 3: the thread is the conversation.
    first = client.responses.create(conversation=thread.id, input="Weather in Oslo?", **settings)
    assert first.status == "completed"  # not requires_action
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather"
    sent = chat(fake, model)
    assert any("How was Q1?" in str(m["content"]) for m in sent)  # the thread's history
    (tool,) = fake.requests(model)[-1]["tools"]
    assert tool["function"].get("strict") is False  # kept as it was on the assistant
    # Step 4: the output as an input item of the next response.
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "snow, -3C"}
    second = client.responses.create(conversation=thread.id, input=[output], **settings)
    assert second.output_text == "Oslo is snowy."
    assert any(m["role"] == "tool" and m["content"] == "snow, -3C" for m in chat(fake, model))
    # Read back through the Assistants API, usage under the new names.
    texts = [m.content[0].text.value for m in client.beta.threads.messages.list(thread.id, order="asc")]
    assert texts[-1] == "Oslo is snowy." and "Q1 was good." in texts
    usage = second.model_dump()["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0 and "prompt_tokens" not in usage
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]

    # Differences: `instructions` replace the base prompt, and a later response does not inherit them.
    client.responses.create(conversation=thread.id, input="Briefly.", model=model, instructions="ONLY THIS")
    assert system_prompt(fake, model) == "ONLY THIS"
    client.responses.create(conversation=thread.id, input="Again.", model=model)
    assert "ONLY THIS" not in system_prompt(fake, model) and "BASE PROMPT" not in system_prompt(fake, model)


def test_the_guides_other_differences(client: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.call("get_weather", {"city": "Oslo"}))
    # A function tool without `strict` is sent as strict in Responses.
    client.responses.create(model=model, input="Weather?", tools=[{"type": "function", **WEATHER_FN}])
    (tool,) = fake.requests(model)[-1]["tools"]
    assert tool["function"]["strict"] is True
    # A thread whose Assistants run waits in requires_action takes no response.
    assistant = client.beta.assistants.create(model=model, tools=[{"type": "function", "function": WEATHER_FN}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    fake.script(model, Reply.call("get_weather", {"city": "Oslo"}))
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(conversation=thread.id, input="Hi.", model=model)
    assert api_error(exc, 400)["param"] == "conversation"
