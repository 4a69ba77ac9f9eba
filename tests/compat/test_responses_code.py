"""code_interpreter in the Responses API: the official SDK against a live server with the real bubblewrap
sandbox and the scripted fake model. The code runs in a container (`container: "auto"`, an auto
container with files, or a container id); its call is a `code_interpreter_call` output item, its plot an
image output, the files it wrote `container_file_citation`s (docs/responses.md)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import LiveServer
from conformance import assert_conforms

from .conftest import body_of
from .test_responses import raw_events

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None or os.geteuid() != 0 or not hasattr(openai.OpenAI, "responses"),
    reason="the sandbox needs bubblewrap and a server running as root; the SDK needs the Responses API",
)

BACKENDS = os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")
PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.title('squares')\nplt.show()"
AUTO = [{"type": "code_interpreter", "container": {"type": "auto"}}]


@pytest.fixture(scope="module", params=BACKENDS)
def rc_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Any, sandbox_python: Path
) -> LiveServer:
    server: LiveServer = launch(
        request, tmp_path_factory, request.param, env={"ASSISTD_SANDBOX_CELL_TIMEOUT_SECONDS": "10"}
    )
    return server


@pytest.fixture()
def rc(rc_server: LiveServer) -> Any:
    c = OpenAI(base_url=rc_server.base_url, api_key="test-key", max_retries=0)
    yield c
    c.close()


def new_model() -> str:
    return f"rc-{uuid.uuid4().hex[:8]}"


def create(client: Any, **kw: Any) -> dict[str, Any]:
    body = body_of(client.responses.with_raw_response.create(**kw))
    assert_conforms(body, "Response")
    return body


def test_a_plot_is_an_image_output_of_a_code_interpreter_call(rc: Any, fake: FakeUpstream) -> None:
    model = new_model()
    fake.script(model, Reply.call("code_interpreter", {"code": PLOT}), Reply.say("Here is the plot."))
    body = create(rc, model=model, input="Plot squares.", tools=AUTO, include=["code_interpreter_call.outputs"])
    assert body["status"] == "completed", body["error"]
    call, message = body["output"]
    assert call["type"] == "code_interpreter_call" and call["status"] == "completed"
    assert call["code"] == PLOT
    container_id = call["container_id"]
    assert container_id.startswith("cntr_")
    assert body["tools"] == [{"type": "code_interpreter", "container": container_id}]
    assert rc.containers.retrieve(container_id).status == "running"
    (image,) = [o for o in call["outputs"] if o["type"] == "image"]
    file_id = image["url"].split("/")[-2]
    png = rc.files.content(file_id).read()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    # the message has text only (the image is the call's output), and the model read the call's result
    assert message["type"] == "message"
    assert [p["type"] for p in message["content"]] == ["output_text"]
    assert message["content"][0]["text"] == "Here is the plot."
    tool_message = [m for m in fake.requests(model)[1]["messages"] if m["role"] == "tool"]
    assert "image(s) displayed" in tool_message[0]["content"]

    # without include[], outputs is null; the SDK parses the typed item
    fetched = rc.responses.retrieve(body["id"])
    assert fetched.output[0].type == "code_interpreter_call" and fetched.output[0].outputs is None
    assert fetched.output[0].container_id == container_id


def test_files_in_a_written_file_is_a_container_file_citation_and_auto_continues_the_chain(
    rc: Any, fake: FakeUpstream
) -> None:
    data = rc.files.create(file=("sales.csv", b"region,amount\nnorth,10\nsouth,32\n"), purpose="user_data")
    code = (
        "import pandas as pd\ndf = pd.read_csv('/mnt/data/sales.csv')\ntotal = int(df.amount.sum())\n"
        "df.to_csv('/mnt/data/out.csv', index=False)\nprint(total)"
    )
    model = new_model()
    answer = "Total 42: [download](sandbox:/mnt/data/out.csv)"
    fake.script(model, Reply.call("code_interpreter", {"code": code}), Reply.say(answer))
    tools = [{"type": "code_interpreter", "container": {"type": "auto", "file_ids": [data.id]}}]
    conversation = rc.conversations.create()
    body = create(
        rc,
        model=model,
        input="Sum it.",
        tools=tools,
        include=["code_interpreter_call.outputs"],
        conversation=conversation.id,
    )
    assert body["status"] == "completed", body["error"]
    call, message = body["output"]
    assert call["outputs"] == [{"type": "logs", "logs": "42\n"}]
    container_id = call["container_id"]
    part = message["content"][0]
    assert part["text"] == answer
    (note,) = part["annotations"]
    assert note["type"] == "container_file_citation"
    assert note["container_id"] == container_id and note["filename"] == "out.csv"
    assert part["text"][note["start_index"] : note["end_index"]] == "sandbox:/mnt/data/out.csv"
    written = rc.containers.files.retrieve(note["file_id"], container_id=container_id)
    assert written.path == "/mnt/data/out.csv" and written.source == "assistant"
    # the Conversations view of the same message cites the same container file
    listed = rc.conversations.items.list(conversation.id, order="asc").data
    assert [i.type for i in listed] == ["message", "code_interpreter_call", "message"]
    assert listed[1].container_id == container_id
    assert listed[2].content[0].annotations[0].model_dump() == note
    content = rc.containers.files.content.retrieve(note["file_id"], container_id=container_id).read()
    assert content == b"region,amount\nnorth,10\nsouth,32\n"

    # "auto" in a chain keeps the container: its state (the variable `total`) and its files.
    model2 = new_model()
    fake.script(model2, Reply.call("code_interpreter", {"code": "print(total * 2)"}), Reply.say("84."))
    second = create(
        rc,
        model=model2,
        input="Double it.",
        tools=AUTO,
        previous_response_id=body["id"],
        include=["code_interpreter_call.outputs"],
    )
    call2 = second["output"][0]
    assert call2["container_id"] == container_id
    assert call2["outputs"] == [{"type": "logs", "logs": "84\n"}]


def test_a_container_id_and_the_streamed_events(rc: Any, fake: FakeUpstream) -> None:
    container = rc.containers.create(name="mine")
    model = new_model()
    code = "x = 6 * 7\nprint(x)"
    fake.script(model, Reply.call("code_interpreter", {"code": code}), Reply.say("It is 42."))
    tools = [{"type": "code_interpreter", "container": container.id}]
    events = raw_events(rc, model=model, input="Compute.", tools=tools, include=["code_interpreter_call.outputs"])
    kinds = [e["type"] for e in events]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    code_events = [k for k in kinds if "code_interpreter_call" in k]
    n = len(code_events)
    assert code_events == [
        "response.code_interpreter_call.in_progress",
        *["response.code_interpreter_call_code.delta"] * (n - 4),
        "response.code_interpreter_call_code.done",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
    ]
    assert n > 4
    first_item = kinds.index("response.output_item.added")
    assert kinds[first_item + 1] == "response.code_interpreter_call.in_progress"
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.code_interpreter_call_code.delta")
    assert deltas == code
    (done,) = [e for e in events if e["type"] == "response.code_interpreter_call_code.done"]
    assert done["code"] == code
    item_done = next(
        e for e in events if e["type"] == "response.output_item.done" and e["item"]["type"] == "code_interpreter_call"
    )
    assert item_done["item"]["container_id"] == container.id
    assert item_done["item"]["outputs"] == [{"type": "logs", "logs": "42\n"}]
    assert kinds[-1] == "response.completed"
    # the SDK's stream helper consumes them
    model2 = new_model()
    fake.script(model2, Reply.call("code_interpreter", {"code": "print(x + 1)"}), Reply.say("43."))
    with rc.responses.stream(model=model2, input="Next.", tools=tools) as stream:
        final = stream.get_final_response()
    assert final.output[0].type == "code_interpreter_call" and final.output_text == "43."
    assert rc.containers.files.list(container_id=container.id).data == []


def test_code_interpreter_errors(rc: Any) -> None:
    with pytest.raises(openai.NotFoundError) as nf:
        rc.responses.create(
            model=new_model(), input="x", tools=[{"type": "code_interpreter", "container": "cntr_nope"}]
        )
    assert nf.value.response.json()["error"]["param"] == "tools[0].container"
    with pytest.raises(openai.BadRequestError) as bad:
        rc.responses.create(
            model=new_model(),
            input="x",
            tools=[{"type": "code_interpreter", "container": {"type": "auto", "file_ids": ["file-nope"]}}],
        )
    assert bad.value.response.json()["error"]["param"].startswith("tools[0].container")


def test_an_assistant_as_prompt_brings_its_code_interpreter_files(rc: Any, fake: FakeUpstream) -> None:
    data = rc.files.create(file=("nums.csv", b"n\n1\n2\n3\n"), purpose="assistants")
    model = new_model()
    assistant = rc.beta.assistants.create(
        model=model,
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": [data.id]}},
    )
    code = "print(sum(int(x) for x in open('/mnt/data/nums.csv').read().split()[1:]))"
    fake.script(model, Reply.call("code_interpreter", {"code": code}), Reply.say("6."))
    body = create(rc, prompt={"id": assistant.id}, input="Sum.", include=["code_interpreter_call.outputs"])
    call = body["output"][0]
    assert call["outputs"] == [{"type": "logs", "logs": "6\n"}]
    assert body["tools"] == [{"type": "code_interpreter", "container": call["container_id"]}]
    (copied,) = rc.containers.files.list(container_id=call["container_id"]).data
    assert copied.path == "/mnt/data/nums.csv" and copied.source == "user"
