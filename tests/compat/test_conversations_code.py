"""A code_interpreter run read as a conversation: the call is a `code_interpreter_call` item, its logs
and images are `outputs` with include, the image a downloadable URL (the real sandbox, as in
test_code_interpreter.py)."""

from __future__ import annotations

from typing import Any

import httpx

from assistd.testing.fake_upstream import FakeUpstream
from conformance import assert_conforms

from .test_code_interpreter import ci, ci_server, pytestmark, run_code  # noqa: F401 - fixtures and the skip


def test_a_code_interpreter_run_reads_as_a_conversation(ci: Any, fake: FakeUpstream) -> None:  # noqa: F811
    thread = ci.beta.threads.create(messages=[{"role": "user", "content": "Plot squares."}])
    code = "import matplotlib.pyplot as plt\nprint('plotting')\nplt.plot([1, 4, 9])\nplt.show()"
    run_code(ci, fake, thread.id, code, "Here is the plot.")

    plain = ci.conversations.items.list(thread.id, order="asc").data
    assert [i.type for i in plain] == ["message", "code_interpreter_call", "message"]
    call = plain[1]
    assert call.code == code and call.outputs is None and call.status == "completed"
    assert call.container_id == thread.id

    page = ci.conversations.items.with_raw_response.list(
        thread.id, order="asc", include=["code_interpreter_call.outputs"]
    ).http_response.json()
    assert_conforms(page, "ConversationItemList")
    outputs = page["data"][1]["outputs"]
    assert [o["type"] for o in outputs] == ["logs", "image"]
    assert outputs[0]["logs"] == "plotting\n"
    png = httpx.get(outputs[1]["url"], headers={"Authorization": "Bearer test-key"}).content
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # The assistant's message shows the image as an input_image part before its text.
    answer = page["data"][2]
    assert [p["type"] for p in answer["content"]] == ["input_image", "output_text"]
    assert answer["content"][1]["text"] == "Here is the plot."
