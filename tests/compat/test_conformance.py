"""The extracted OpenAI schemas themselves, and file responses checked against them.

(Assistant, thread and message responses are checked where each endpoint is tested.)
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from jsonschema import Draft202012Validator

import conformance
from conformance import assert_conforms

from .conftest import PNG_1X1, body_of

ROOTS = [
    "AssistantObject",
    "ListAssistantsResponse",
    "DeleteAssistantResponse",
    "ThreadObject",
    "DeleteThreadResponse",
    "MessageObject",
    "ListMessagesResponse",
    "DeleteMessageResponse",
    "OpenAIFile",
    "ListFilesResponse",
    "DeleteFileResponse",
    "ErrorResponse",
    "ConversationResource",
    "DeletedConversationResource",
    "ConversationItem",
    "ConversationItemList",
    "Response",
    "ResponseItemList",
    "ResponseStreamEvent",
]


def test_extracted_schemas_are_complete_and_valid() -> None:
    document = json.loads(conformance.SCHEMAS_PATH.read_text())
    source = document["x-source"]
    assert len(source["sha256"]) == 64 and source["openapi"].startswith("3.1")
    schemas = document["components"]["schemas"]
    assert set(ROOTS) <= set(schemas)
    text = json.dumps(schemas)
    for name, schema in schemas.items():
        Draft202012Validator.check_schema(schema)
        assert '"x-oaiMeta"' not in json.dumps(schema), name
    # Every $ref points at a schema in the file (the closure is complete).
    refs = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
    assert refs <= set(schemas)
    # The Conversations item union and the Responses stream events are most of it.
    assert conformance.SCHEMAS_PATH.stat().st_size < 250_000


def test_assert_conforms_rejects_bad_bodies() -> None:
    good = {"id": "thread_1", "object": "thread", "created_at": 1, "tool_resources": {}, "metadata": {}}
    assert_conforms(good, "ThreadObject")
    for bad in (
        {**good, "created_at": "1"},
        {**good, "object": "threads"},
        {k: v for k, v in good.items() if k != "tool_resources"},
        {**good, "metadata": {"n": 1}},
    ):
        with pytest.raises(AssertionError, match="does not conform"):
            assert_conforms(bad, "ThreadObject")
    with pytest.raises(AssertionError):
        assert_conforms({"error": {"message": "m", "type": "t"}}, "ErrorResponse")  # param, code required
    with pytest.raises(KeyError):
        assert_conforms({}, "NoSuchSchema")


def test_file_responses_conform(client: Any) -> None:
    raw = client.files.with_raw_response.create(file=("pixel.png", PNG_1X1, "image/png"), purpose="vision")
    created = body_of(raw)
    assert_conforms(created, "OpenAIFile")
    assert created["id"].startswith("file-") and created["object"] == "file"
    assert type(created["created_at"]) is int and created["bytes"] == len(PNG_1X1)
    assert created["filename"] == "pixel.png" and created["purpose"] == "vision"

    fetched = body_of(client.files.with_raw_response.retrieve(created["id"]))
    assert_conforms(fetched, "OpenAIFile")
    assert fetched == created

    listed = body_of(client.files.with_raw_response.list(purpose="vision"))
    assert_conforms(listed, "ListFilesResponse")
    assert created["id"] in [f["id"] for f in listed["data"]]

    deleted = body_of(client.files.with_raw_response.delete(created["id"]))
    assert_conforms(deleted, "DeleteFileResponse")
    assert deleted == {"id": created["id"], "object": "file", "deleted": True}
    with pytest.raises(openai.NotFoundError) as exc_info:
        client.files.retrieve(created["id"])
    assert_conforms(exc_info.value.response.json(), "ErrorResponse")
