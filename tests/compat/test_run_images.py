"""Images in a thread reach the model as chat image parts (the conversation items' rendering, spec §4.4):
image_url parts as the client wrote them, image_file parts as data URLs, a file no longer there left out."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from assistd.testing.fake_upstream import FakeUpstream, Reply

from .conftest import PNG_1X1, body_of


def test_image_parts_reach_the_model_as_chat_image_parts(client: Any, fake: FakeUpstream, image_file: Any) -> None:
    model = f"m-{uuid.uuid4().hex[:8]}"
    fake.script(model, Reply.say("A pixel."))
    assistant = client.beta.assistants.create(model=model, instructions="Describe.")
    gone = client.files.create(file=("gone.png", PNG_1X1, "image/png"), purpose="vision")
    thread = client.beta.threads.create()
    first = client.beta.threads.messages.with_raw_response.create(
        thread.id,
        role="user",
        content=[
            {"type": "text", "text": "What is in these images?"},
            {"type": "image_file", "image_file": {"file_id": image_file.id, "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/dog.png"}},
        ],
    )
    stored = body_of(first)["content"]
    client.beta.threads.messages.create(
        thread.id,
        role="user",
        content=[{"type": "text", "text": "And this one?"}, {"type": "image_file", "image_file": {"file_id": gone.id}}],
    )
    client.files.delete(gone.id)

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "completed"
    (request,) = fake.requests(model)
    pixel = "data:image/png;base64," + base64.b64encode(PNG_1X1).decode()
    assert request["messages"] == [
        {"role": "system", "content": "Describe."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these images?"},
                {"type": "image_url", "image_url": {"url": pixel}},
                {"type": "image_url", "image_url": stored[2]["image_url"]},
                {"type": "image_url", "image_url": stored[3]["image_url"]},
            ],
        },
        # The deleted file is left out; the message is still sent as parts.
        {"role": "user", "content": [{"type": "text", "text": "And this one?"}]},
    ]
