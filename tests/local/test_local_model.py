"""The bundled model (SmolLM2-135M on llama.cpp), for real: offline, no key, no fake upstream.

A 135M model answers poorly; these tests check what the server guarantees whatever the model
says: runs complete, tool calls parse and match their schema, tool_choice is obeyed, strict
JSON output validates, text streams token by token, concurrent runs queue and complete.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from openai import OpenAI

from assistd.testing.server import LiveServer

TICKER = {
    "type": "function",
    "function": {
        "name": "get_ticker",
        "description": "Get the stock ticker symbol of a company.",
        "parameters": {
            "type": "object",
            "properties": {"company_name": {"type": "string", "description": "The company's name"}},
            "required": ["company_name"],
            "additionalProperties": False,
        },
    },
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
        },
    },
}


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


def _thread(llm: OpenAI, text: str) -> str:
    return llm.beta.threads.create(messages=[{"role": "user", "content": text}]).id


def test_plain_run_completes_with_text(llm: OpenAI) -> None:
    assistant = llm.beta.assistants.create(model="gpt-4-turbo", instructions="You are a helpful assistant.")
    thread_id = _thread(llm, "What is the capital of France?")
    run = llm.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant.id, timeout=300)
    assert run.status == "completed", run.last_error
    (message,) = [m for m in llm.beta.threads.messages.list(thread_id) if m.role == "assistant"]
    assert message.content[0].text.value.strip()
    assert run.usage is not None and run.usage.completion_tokens > 0


def test_required_tool_choice_calls_with_valid_arguments(llm: OpenAI) -> None:
    assistant = llm.beta.assistants.create(model="gpt-3.5-turbo-0125", tools=[TICKER])
    thread_id = _thread(llm, "What is the ticker symbol of Apple?")
    run = llm.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant.id, tool_choice="required", timeout=300
    )
    assert run.status == "requires_action", run.last_error
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert calls
    for call in calls:
        assert call.function.name == "get_ticker"
        jsonschema.validate(json.loads(call.function.arguments), TICKER["function"]["parameters"])
    run = llm.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread_id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": c.id, "output": "AAPL"} for c in calls],
        timeout=300,
    )
    assert run.status in ("completed", "requires_action"), run.last_error


def test_named_tool_choice_calls_that_function(llm: OpenAI) -> None:
    assistant = llm.beta.assistants.create(model="gpt-4o", tools=[TICKER, WEATHER])
    thread_id = _thread(llm, "Tell me a joke.")
    run = llm.beta.threads.runs.create_and_poll(
        thread_id=thread_id,
        assistant_id=assistant.id,
        timeout=300,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert run.status == "requires_action", run.last_error
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])


def test_tool_choice_none_answers_in_text(llm: OpenAI) -> None:
    assistant = llm.beta.assistants.create(model="gpt-4o", tools=[TICKER])
    thread_id = _thread(llm, "What is the ticker of Apple?")
    run = llm.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant.id, tool_choice="none", timeout=300
    )
    assert run.status == "completed", run.last_error


def test_strict_json_schema_response_validates(llm: OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "country", "population"],
        "additionalProperties": False,
    }
    assistant = llm.beta.assistants.create(
        model="gpt-4o",
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}},
    )
    thread_id = _thread(llm, "Describe Paris as JSON.")
    run = llm.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant.id, timeout=300)
    assert run.status == "completed", run.last_error
    (message,) = [m for m in llm.beta.threads.messages.list(thread_id) if m.role == "assistant"]
    jsonschema.validate(json.loads(message.content[0].text.value), schema)


def test_streamed_run_yields_several_text_deltas(llm: OpenAI) -> None:
    assistant = llm.beta.assistants.create(model="gpt-4o")
    thread_id = _thread(llm, "Write two sentences about the sea.")
    deltas: list[str] = []
    with llm.beta.threads.runs.stream(
        thread_id=thread_id, assistant_id=assistant.id, max_completion_tokens=256
    ) as stream:
        for text in stream.text_deltas:
            deltas.append(text)
        run = stream.get_final_run()
    assert run.status in ("completed", "incomplete"), run.last_error
    assert len(deltas) > 3
    (message,) = [m for m in llm.beta.threads.messages.list(thread_id) if m.role == "assistant"]
    assert message.content[0].text.value == "".join(deltas)


def test_function_arguments_stream_as_fragments(llm: OpenAI) -> None:
    """The call's arguments stream while the model writes them: on_tool_call_delta fires per fragment."""
    from openai import AssistantEventHandler

    class Counter(AssistantEventHandler):
        def __init__(self) -> None:
            super().__init__()
            self.created: list[Any] = []
            self.fragments: list[str] = []

        def on_tool_call_created(self, tool_call: Any) -> None:
            self.created.append(tool_call)

        def on_tool_call_delta(self, delta: Any, snapshot: Any) -> None:
            self.fragments.append(delta.function.arguments)

    assistant = llm.beta.assistants.create(model="gpt-4o", tools=[WEATHER])
    thread_id = _thread(llm, "What is the weather in Paris, in celsius?")
    handler = Counter()
    with llm.beta.threads.runs.stream(
        thread_id=thread_id,
        assistant_id=assistant.id,
        event_handler=handler,
        tool_choice="required",
        parallel_tool_calls=False,
    ) as stream:
        stream.until_done()
    run = handler.get_final_run()
    assert run.status == "requires_action", run.last_error
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert len(handler.created) == 1 and handler.created[0].function.arguments == ""
    assert len(handler.fragments) > 1, "the arguments came in one piece"
    assert "".join(handler.fragments) == call.function.arguments
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])


def test_two_runs_at_once_both_complete(llm: OpenAI) -> None:
    assistant = llm.beta.assistants.create(model="gpt-4o")
    results: list[Any] = []

    def one(text: str) -> None:
        thread_id = _thread(llm, text)
        results.append(
            llm.beta.threads.runs.create_and_poll(
                thread_id=thread_id, assistant_id=assistant.id, max_completion_tokens=256, timeout=300
            )
        )

    workers = [threading.Thread(target=one, args=(q,)) for q in ("Say hello.", "Name a colour.")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    assert [r.status in ("completed", "incomplete") for r in results] == [True, True], [r.last_error for r in results]


@pytest.mark.skipif(
    __import__("shutil").which("bwrap") is None or __import__("os").geteuid() != 0,
    reason="code_interpreter's sandbox needs bubblewrap and root",
)
def test_forced_code_interpreter_runs_the_models_code_in_the_sandbox(llm: OpenAI, sandbox_python: Any) -> None:
    """Whatever Python the small model writes, it arrives as a code_interpreter step that really ran."""
    assistant = llm.beta.assistants.create(
        model="gpt-4o", tools=[{"type": "code_interpreter"}], instructions="Write Python code to answer."
    )
    thread_id = _thread(llm, "Compute 12 * 12 with Python and print the result.")
    run = llm.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant.id, tool_choice={"type": "code_interpreter"}, timeout=300
    )
    assert run.status == "completed", run.last_error
    steps = llm.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread_id, order="asc").data
    calls = [c for s in steps if s.type == "tool_calls" for c in s.step_details.tool_calls]
    assert calls and all(c.type == "code_interpreter" for c in calls)
    first = calls[0].code_interpreter
    assert first.input  # the grammar guarantees {"code": "<at least one character>"}
    # It ran: some output (a result, or the error the code raised), or nothing for a silent statement.
    assert all(o.type in ("logs", "image") for o in first.outputs)
    assert steps[-1].type == "message_creation"


SEARCH = {
    "type": "function",
    "function": {
        "name": "search_book",
        "description": "Search the attached book.",
        "parameters": {
            "type": "object",
            "properties": {"queries": {"type": "array", "items": {"type": "string"}}},
            "required": ["queries"],
        },
    },
}
PRICE = {
    "type": "function",
    "function": {
        "name": "get_price",
        "parameters": {"type": "object", "properties": {"ticker": {"type": "string"}}, "required": ["ticker"]},
    },
}


def test_tool_call_cut_by_max_tokens_still_parses(llm: OpenAI) -> None:
    """Long string arguments and the smallest max_completion_tokens: the call closes instead of failing the run.

    At temperature 2 the model rarely ends a string: before the fix the grammar let it run on until
    the budget ended inside it, and the run failed with "constrained tool-call output did not parse
    (length): Unterminated string".
    """
    assistant = llm.beta.assistants.create(model="gpt-4o", tools=[SEARCH])
    for _ in range(3):
        thread_id = _thread(
            llm,
            "Search the book for every sentence about the whale, the sea, the captain and the ship, "
            "with long detailed queries quoting the chapter.",
        )
        run = llm.beta.threads.runs.create_and_poll(
            thread_id=thread_id,
            assistant_id=assistant.id,
            tool_choice="required",
            max_completion_tokens=256,
            temperature=2,
            timeout=300,
        )
        assert run.status in ("requires_action", "incomplete"), run.last_error
        if run.status == "requires_action":
            for call in run.required_action.submit_tool_outputs.tool_calls:
                assert call.function.name == "search_book"
                assert isinstance(json.loads(call.function.arguments), dict)


def test_answer_after_tool_results_never_shows_the_call_syntax(llm: OpenAI) -> None:
    """At temperature 0 the 135M model answers these tool results with `call: {"tool_calls": ...}` as text."""
    from assistd.providers.local_text import LEAK

    assistant = llm.beta.assistants.create(
        model="gpt-4o", tools=[TICKER, PRICE], instructions="You are an investor assistant. Use the functions."
    )
    for question, output in (
        ("What is the ticker of Apple and what is its price?", "AAPL"),
        ("Get the price of Apple stock.", "AAPL"),
    ):
        thread_id = _thread(llm, question)
        run = llm.beta.threads.runs.create_and_poll(
            thread_id=thread_id,
            assistant_id=assistant.id,
            temperature=0,
            timeout=300,
            tool_choice={"type": "function", "function": {"name": "get_ticker"}},
        )
        assert run.status == "requires_action", run.last_error
        calls = run.required_action.submit_tool_outputs.tool_calls
        run = llm.beta.threads.runs.submit_tool_outputs_and_poll(
            thread_id=thread_id,
            run_id=run.id,
            tool_outputs=[{"tool_call_id": c.id, "output": output} for c in calls],
            timeout=300,
        )
        assert run.status == "completed", run.last_error
        (message, *_) = [m for m in llm.beta.threads.messages.list(thread_id) if m.role == "assistant"]
        text = message.content[0].text.value if message.content else ""
        assert not LEAK.search(text), text
        assert text.strip(), "the answer was written again without the call syntax"


def test_a_looping_answer_is_stopped_at_its_first_repeat(llm: OpenAI) -> None:
    """At temperature 0 these prompts make the 135M model repeat sentences until max_tokens."""
    from assistd.providers.local_text import repeated_sentence

    assistant = llm.beta.assistants.create(model="gpt-4o")
    for prompt in ("Write a very long story about a cat.", "Tell me about the sea, the sea, the sea."):
        thread_id = _thread(llm, prompt)
        run = llm.beta.threads.runs.create_and_poll(
            thread_id=thread_id, assistant_id=assistant.id, temperature=0, max_completion_tokens=300, timeout=300
        )
        assert run.status == "completed", (run.status, run.last_error, run.incomplete_details)
        (message,) = [m for m in llm.beta.threads.messages.list(thread_id) if m.role == "assistant"]
        text = message.content[0].text.value
        assert text.strip() and not repeated_sentence(text), text
        assert run.usage is not None and run.usage.completion_tokens < 300
