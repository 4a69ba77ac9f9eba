"""code_interpreter through runs with ASSISTD_SANDBOX_BACKEND=gateway: kernels on a real
`jupyter kernelgateway` (started here), the official SDK, the scripted fake model."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.kernel_gateway import KernelGateway, build, default_venv
from assistd.testing.server import LiveServer

CODE = [{"type": "code_interpreter"}]
BACKENDS = os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")


@pytest.fixture(scope="module")
def kernel_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelGateway]:
    with KernelGateway(build(default_venv()), tmp_path_factory.mktemp("kernel-gateway")) as gateway:
        yield gateway


@pytest.fixture(scope="module", params=BACKENDS)
def gw_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Any, kernel_gateway: KernelGateway
) -> LiveServer:
    kernels = tmp_path_factory.mktemp("gateway-kernels")
    env = {
        "ASSISTD_SANDBOX_BACKEND": "gateway",
        "ASSISTD_SANDBOX_GATEWAY_URL": kernel_gateway.url,
        "ASSISTD_SANDBOX_GATEWAY_TOKEN": kernel_gateway.token,
        "ASSISTD_SANDBOX_GATEWAY_DATA_PATH": f"{kernels}/{{session}}",
        "ASSISTD_SANDBOX_CELL_TIMEOUT_SECONDS": "3",
    }
    server: LiveServer = launch(request, tmp_path_factory, request.param, env=env)
    server.kernels = kernels  # type: ignore[attr-defined]
    return server


@pytest.fixture()
def ci(gw_server: LiveServer) -> Iterator[Any]:
    c = OpenAI(base_url=gw_server.base_url, api_key="test-key", max_retries=0)
    yield c
    c.close()


def run_code(ci: Any, fake: FakeUpstream, thread_id: str, code: str, answer: str = "Done.") -> Any:
    model = f"cig-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply.call("code_interpreter", {"code": code}), Reply.say(answer))
    created = ci.beta.assistants.create(model=model, tools=CODE)
    run = ci.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=created.id, poll_interval_ms=20)
    assert run.status == "completed", run.last_error
    return run


def code_call(ci: Any, thread_id: str, run_id: str) -> Any:
    steps = ci.beta.threads.runs.steps.list(run_id=run_id, thread_id=thread_id, order="asc").data
    (call,) = [c for s in steps if s.type == "tool_calls" for c in s.step_details.tool_calls]
    assert call.type == "code_interpreter"
    return call


def logs_of(call: Any) -> str:
    return "".join(o.logs for o in call.code_interpreter.outputs if o.type == "logs")


def test_state_persists_across_runs_of_a_thread(ci: Any, fake: FakeUpstream) -> None:
    thread = ci.beta.threads.create(messages=[{"role": "user", "content": "Compute."}])
    first = run_code(ci, fake, thread.id, "x = 41\nprint('x is', x)\nx + 1", "It is 42.")
    assert logs_of(code_call(ci, thread.id, first.id)) == "x is 41\n42\n"
    ci.beta.threads.messages.create(thread.id, role="user", content="And again?")
    second = run_code(ci, fake, thread.id, "x * 2")
    assert logs_of(code_call(ci, thread.id, second.id)) == "82\n"


def test_input_csv_plot_and_written_file(ci: Any, fake: FakeUpstream) -> None:
    data = ci.files.create(file=("sales.csv", b"region,amount\nnorth,10\nsouth,32\n"), purpose="assistants")
    thread = ci.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "Double and plot.",
                "attachments": [{"file_id": data.id, "tools": [{"type": "code_interpreter"}]}],
            }
        ]
    )
    code = (
        "import csv\nimport matplotlib.pyplot as plt\n"
        "rows = list(csv.DictReader(open('sales.csv')))\n"
        "with open('doubled.csv', 'w') as out:\n"
        "    out.write('region,amount\\n' + ''.join(f\"{r['region']},{int(r['amount']) * 2}\\n\" for r in rows))\n"
        "plt.bar([r['region'] for r in rows], [int(r['amount']) for r in rows])\nplt.show()\n"
        "print(sum(int(r['amount']) * 2 for r in rows))"
    )
    link = "sandbox:/mnt/data/doubled.csv"
    run = run_code(ci, fake, thread.id, code, f"Download it: [doubled.csv]({link}).")
    call = code_call(ci, thread.id, run.id)
    assert logs_of(call) == "84\n"
    (image,) = [o for o in call.code_interpreter.outputs if o.type == "image"]
    assert ci.files.content(image.image.file_id).read().startswith(b"\x89PNG\r\n\x1a\n")
    (message,) = [m for m in ci.beta.threads.messages.list(thread.id) if m.role == "assistant"]
    assert [p.type for p in message.content] == ["image_file", "text"]
    (note,) = message.content[1].text.annotations
    assert note.type == "file_path" and note.text == link
    made = ci.files.retrieve(note.file_path.file_id)
    assert made.purpose == "assistants_output" and made.filename == "/mnt/data/doubled.csv"
    assert ci.files.content(made.id).read() == b"region,amount\nnorth,20\nsouth,64\n"


def test_a_cell_that_runs_too_long_is_interrupted_and_state_is_kept(ci: Any, fake: FakeUpstream) -> None:
    thread = ci.beta.threads.create(messages=[{"role": "user", "content": "Loop."}])
    run_code(ci, fake, thread.id, "kept = 'still here'")
    run = run_code(ci, fake, thread.id, "while True:\n    pass")
    logs = logs_of(code_call(ci, thread.id, run.id))
    assert "KeyboardInterrupt" in logs and "interrupted" in logs
    after = run_code(ci, fake, thread.id, "print(kept)")
    assert logs_of(code_call(ci, thread.id, after.id)) == "still here\n"


def test_deleting_the_thread_ends_its_kernel_and_removes_its_files(
    ci: Any, fake: FakeUpstream, gw_server: LiveServer
) -> None:
    thread = ci.beta.threads.create(messages=[{"role": "user", "content": "Write."}])
    run_code(ci, fake, thread.id, "open('note.txt', 'w').write('hi')")
    data_dir: Path = gw_server.kernels / thread.id  # type: ignore[attr-defined]
    assert (data_dir / "note.txt").read_text() == "hi"
    assert ci.beta.threads.delete(thread.id).deleted
    assert not data_dir.exists()
