"""code_interpreter through runs: the real sandbox (bubblewrap), the official SDK, the scripted fake model."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from openai import AssistantEventHandler, OpenAI

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import LiveServer

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None or os.geteuid() != 0,
    reason="the sandbox needs bubblewrap (apt-get install bubblewrap) and a server running as root",
)

CODE = [{"type": "code_interpreter"}]
BACKENDS = os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")


def new_model() -> str:
    return f"ci-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module", params=BACKENDS)
def ci_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Any, sandbox_python: Path
) -> LiveServer:
    return launch(request, tmp_path_factory, request.param, env={"ASSISTD_SANDBOX_CELL_TIMEOUT_SECONDS": "3"})


@pytest.fixture()
def ci(ci_server: LiveServer) -> Any:
    c = OpenAI(base_url=ci_server.base_url, api_key="test-key", max_retries=0)
    yield c
    c.close()


def run_code(ci: Any, fake: FakeUpstream, thread_id: str, code: str, answer: str = "Done.", **assistant: Any) -> Any:
    model = new_model()
    fake.script(model, Reply.call("code_interpreter", {"code": code}), Reply.say(answer))
    created = ci.beta.assistants.create(model=model, tools=CODE, **assistant)
    run = ci.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=created.id, poll_interval_ms=20)
    assert run.status == "completed", run.last_error
    return run


def code_call(ci: Any, thread_id: str, run_id: str) -> Any:
    steps = ci.beta.threads.runs.steps.list(run_id=run_id, thread_id=thread_id, order="asc").data
    (call,) = [c for s in steps if s.type == "tool_calls" for c in s.step_details.tool_calls]
    assert call.type == "code_interpreter" and call.id.startswith("call_")
    return call


def logs_of(call: Any) -> str:
    return "".join(o.logs for o in call.code_interpreter.outputs if o.type == "logs")


def test_state_persists_across_runs_of_a_thread(ci: Any, fake: FakeUpstream) -> None:
    thread = ci.beta.threads.create(messages=[{"role": "user", "content": "Compute."}])
    first = run_code(ci, fake, thread.id, "x = 41\nprint('x is', x)\nx + 1", "It is 42.")
    call = code_call(ci, thread.id, first.id)
    assert call.code_interpreter.input == "x = 41\nprint('x is', x)\nx + 1"
    assert logs_of(call) == "x is 41\n42\n"
    # the model saw the output as the tool's result
    chat = fake.requests(first.model)[1]
    (tool_message,) = [m for m in chat["messages"] if m["role"] == "tool"]
    assert "x is 41" in tool_message["content"]
    assert any(t["function"]["name"] == "code_interpreter" for t in chat["tools"])

    ci.beta.threads.messages.create(thread.id, role="user", content="And again?")
    second = run_code(ci, fake, thread.id, "x * 2")
    assert logs_of(code_call(ci, thread.id, second.id)) == "82\n"


def test_a_plot_is_an_image_output_a_png_file_and_an_image_in_the_message(ci: Any, fake: FakeUpstream) -> None:
    thread = ci.beta.threads.create(messages=[{"role": "user", "content": "Plot it."}])
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.title('squares')\nplt.show()"
    run = run_code(ci, fake, thread.id, code, "Here is the plot.")
    (image,) = [o for o in code_call(ci, thread.id, run.id).code_interpreter.outputs if o.type == "image"]
    png = ci.files.content(image.image.file_id).read()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert ci.files.retrieve(image.image.file_id).purpose == "assistants_output"

    (message,) = [m for m in ci.beta.threads.messages.list(thread.id) if m.role == "assistant"]
    assert [p.type for p in message.content] == ["image_file", "text"]
    assert message.content[0].image_file.file_id == image.image.file_id
    assert message.content[1].text.value == "Here is the plot."


def test_an_input_csv_is_readable_and_a_written_csv_is_a_downloadable_file_path(ci: Any, fake: FakeUpstream) -> None:
    data = ci.files.create(file=("sales.csv", b"region,amount\nnorth,10\nsouth,32\n"), purpose="assistants")
    thread = ci.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "Double the amounts.",
                "attachments": [{"file_id": data.id, "tools": [{"type": "code_interpreter"}]}],
            }
        ]
    )
    code = (
        "import pandas as pd\n"
        "df = pd.read_csv('/mnt/data/sales.csv')\n"
        "df['amount'] *= 2\n"
        "df.to_csv('/mnt/data/doubled.csv', index=False)\n"
        "print(df['amount'].sum())"
    )
    link = "sandbox:/mnt/data/doubled.csv"
    run = run_code(ci, fake, thread.id, code, f"Download it: [doubled.csv]({link}).")
    assert logs_of(code_call(ci, thread.id, run.id)) == "84\n"
    # the model was told the file's name and where it is
    tools = fake.requests(run.model)[0]["tools"]
    (function,) = [t["function"] for t in tools if t["function"]["name"] == "code_interpreter"]
    assert "/mnt/data/sales.csv" in function["description"]

    (message,) = [m for m in ci.beta.threads.messages.list(thread.id) if m.role == "assistant"]
    text = message.content[0].text
    (note,) = text.annotations
    assert note.type == "file_path" and note.text == link
    assert text.value[note.start_index : note.end_index] == link
    made = ci.files.retrieve(note.file_path.file_id)
    assert made.purpose == "assistants_output" and made.filename == "/mnt/data/doubled.csv"
    assert ci.files.content(made.id).read() == b"region,amount\nnorth,20\nsouth,64\n"


def test_streaming_sends_the_code_as_input_deltas_then_the_outputs(ci: Any, fake: FakeUpstream) -> None:
    model = new_model()
    code = 'import math\nprint("pi ≈", round(math.pi, 4))\n"\\u00e9"'
    fake.script(model, Reply.call("code_interpreter", {"code": code}), Reply.say("Pi."))
    assistant = ci.beta.assistants.create(model=model, tools=CODE)
    thread = ci.beta.threads.create(messages=[{"role": "user", "content": "Pi?"}])
    inputs: list[str] = []
    outputs: list[Any] = []
    done: list[Any] = []

    class Handler(AssistantEventHandler):
        def on_tool_call_delta(self, delta: Any, snapshot: Any) -> None:
            if delta.type == "code_interpreter" and delta.code_interpreter is not None:
                if delta.code_interpreter.input:
                    inputs.append(delta.code_interpreter.input)
                outputs.extend(delta.code_interpreter.outputs or [])

        def on_tool_call_done(self, tool_call: Any) -> None:
            done.append(tool_call)

    with ci.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=Handler()) as s:
        s.until_done()
    assert s.current_run.status == "completed"
    assert len(inputs) > 1 and "".join(inputs) == code
    assert [o.type for o in outputs] == ["logs"] and outputs[0].logs == "pi ≈ 3.1416\n'é'\n"
    call = done[0]  # the SDK reports it again when the run completes (spec §7.1)
    assert {c.id for c in done} == {call.id}
    assert call.code_interpreter.input == code and call.code_interpreter.outputs[0].logs == outputs[0].logs


def test_a_cell_that_runs_too_long_is_interrupted_and_state_is_kept(ci: Any, fake: FakeUpstream) -> None:
    thread = ci.beta.threads.create(messages=[{"role": "user", "content": "Loop."}])
    run_code(ci, fake, thread.id, "kept = 'still here'")
    run = run_code(ci, fake, thread.id, "while True:\n    pass")
    logs = logs_of(code_call(ci, thread.id, run.id))
    assert "KeyboardInterrupt" in logs and "interrupted" in logs
    after = run_code(ci, fake, thread.id, "print(kept)")
    assert logs_of(code_call(ci, thread.id, after.id)) == "still here\n"


def test_code_cannot_reach_the_server_or_read_its_files(ci: Any, fake: FakeUpstream, ci_server: LiveServer) -> None:
    thread = ci.beta.threads.create(messages=[{"role": "user", "content": "Probe."}])
    code = (
        "import os, socket\n"
        "for host in ('127.0.0.1', 'localhost'):\n"
        "    try:\n"
        f"        socket.create_connection((host, {ci_server.port}), timeout=2); print('CONNECTED')\n"
        "    except OSError as e: print('refused', type(e).__name__)\n"
        f"for path in ({str(ci_server.data_dir / 'assistd.db')!r}, {str(ci_server.data_dir)!r}, '/proc/1/environ'):\n"
        "    try:\n"
        "        open(path, 'rb').read(); print('READ', path)\n"
        "    except OSError as e: print('denied', type(e).__name__)\n"
        "print(sorted(k for k in os.environ if k.startswith('ASSISTD')))"
    )
    run = run_code(ci, fake, thread.id, code)
    logs = logs_of(code_call(ci, thread.id, run.id))
    assert "CONNECTED" not in logs and "READ" not in logs, logs
    assert logs.count("refused") == 2 and logs.count("denied") == 3 and logs.endswith("[]\n"), logs


def test_deleting_the_thread_removes_its_sandbox_files(ci: Any, fake: FakeUpstream, ci_server: LiveServer) -> None:
    thread = ci.beta.threads.create(messages=[{"role": "user", "content": "Write."}])
    run_code(ci, fake, thread.id, "open('/mnt/data/note.txt', 'w').write('hi')")
    data_dir = ci_server.data_dir / "sandbox" / "threads" / thread.id
    assert (data_dir / "note.txt").read_text() == "hi"
    assert ci.beta.threads.delete(thread.id).deleted
    assert not data_dir.exists()


def test_without_bubblewrap_code_is_refused_unless_unsafe_local_is_chosen(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    launch: Any,
    fake: FakeUpstream,
    sandbox_python: Path,
) -> None:
    refusing = launch(request, tmp_path_factory, "sqlite", env={"ASSISTD_SANDBOX_BWRAP": "/nonexistent/bwrap"})
    with OpenAI(base_url=refusing.base_url, api_key="k", max_retries=0) as c:
        model = new_model()
        fake.script(model, Reply.call("code_interpreter", {"code": "print(1)"}))
        assistant = c.beta.assistants.create(model=model, tools=CODE)
        run = c.beta.threads.create_and_run_poll(assistant_id=assistant.id, poll_interval_ms=20)
        assert run.status == "failed" and run.last_error.code == "server_error"
        assert "bubblewrap" in run.last_error.message and "unsafe-local" in run.last_error.message

    unsafe = launch(
        request,
        tmp_path_factory,
        "sqlite",
        env={"ASSISTD_SANDBOX_BWRAP": "/nonexistent/bwrap", "ASSISTD_SANDBOX": "unsafe-local"},
    )
    with OpenAI(base_url=unsafe.base_url, api_key="k", max_retries=0) as c:
        thread = c.beta.threads.create(messages=[{"role": "user", "content": "Run."}])
        run = run_code(c, fake, thread.id, "print(6 * 7)")
        assert logs_of(code_call(c, thread.id, run.id)) == "42\n"


def test_cancelling_a_run_interrupts_its_cell_and_keeps_the_session(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    launch: Any,
    fake: FakeUpstream,
    sandbox_python: Path,
) -> None:
    patient = launch(request, tmp_path_factory, "sqlite", env={"ASSISTD_SANDBOX_CELL_TIMEOUT_SECONDS": "120"})
    with OpenAI(base_url=patient.base_url, api_key="k", max_retries=0) as c:
        thread = c.beta.threads.create(messages=[{"role": "user", "content": "Wait."}])
        run_code(c, fake, thread.id, "kept = 7")
        model = new_model()
        fake.script(model, Reply.call("code_interpreter", {"code": "import time\nwhile True: time.sleep(0.05)"}))
        assistant = c.beta.assistants.create(model=model, tools=CODE)
        run = c.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        deadline = time.monotonic() + 30
        while not c.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id).data:
            assert time.monotonic() < deadline, "the code step never started"
            time.sleep(0.05)
        time.sleep(0.5)  # the cell is running
        started = time.monotonic()
        c.beta.threads.runs.cancel(run_id=run.id, thread_id=thread.id)
        while (run := c.beta.threads.runs.retrieve(run_id=run.id, thread_id=thread.id)).status == "cancelling":
            assert time.monotonic() - started < 10, "the cell was not interrupted"
            time.sleep(0.05)
        assert run.status == "cancelled" and time.monotonic() - started < 10
        (step,) = c.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id).data
        assert step.status == "cancelled"
        (call,) = step.step_details.tool_calls
        assert call.code_interpreter.input.startswith("import time")
        assert "KeyboardInterrupt" in logs_of(call) and "run was cancelled" in logs_of(call)
        after = run_code(c, fake, thread.id, "print(kept)")
        assert logs_of(code_call(c, thread.id, after.id)) == "7\n"
