"""Property test: schemathesis generates requests for every operation in our /openapi.json (valid and
invalid ones) and the server never answers 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from assistd.testing.server import LiveServer

# Per operation and generation mode; keeps the run near half a minute per backend.
EXAMPLES = 12
EXAMPLES_WITH_REAL_IDS = 8


@pytest.fixture()
def schema(server: LiveServer) -> Any:
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


@pytest.fixture()
def real_ids(server: LiveServer) -> Iterator[dict[str, str]]:
    """Existing objects, so generated bodies also reach modify/create paths past the 404 check."""
    with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer fuzz"}) as c:
        asst = c.post("/v1/assistants", json={"model": "gpt-4o"}).json()
        thread = c.post("/v1/threads", json={"messages": [{"role": "user", "content": "hi"}]}).json()
        msg = c.get(f"/v1/threads/{thread['id']}/messages").json()["data"][0]
        file = c.post("/v1/files", files={"file": ("f.txt", b"x")}, data={"purpose": "user_data"}).json()
        conv = c.post("/v1/conversations", json={"items": [{"role": "user", "content": "hi"}]}).json()
        item = c.get(f"/v1/conversations/{conv['id']}/items").json()["data"][0]
        response = c.post("/v1/responses", json={"model": "gpt-4o", "input": "hi"}, timeout=60).json()
        yield {
            "assistant_id": asst["id"],
            "thread_id": thread["id"],
            "message_id": msg["id"],
            "file_id": file["id"],
            "conversation_id": conv["id"],
            "item_id": item["id"],
            "response_id": response["id"],
        }


def _operations(schema: Any) -> list[Any]:
    ops = [result.ok() for result in schema.get_all_operations()]
    assert len(ops) >= 14, [op.label for op in ops]
    # Deletes last, so the real objects live while the other operations are fuzzed.
    return sorted(ops, key=lambda op: op.method.upper() == "DELETE")


def _run(
    op: Any,
    mode: GenerationMode,
    base_url: str,
    session: requests.Session,
    path_parameters: dict[str, str] | None,
    examples: int,
    seen: list[int],
) -> None:
    strategy = op.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @given(case=strategy)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        # Only the 5xx check: 4xx for generated garbage is the point, and is covered by test_errors.
        response = case.call(base_url=base_url, session=session, timeout=30)
        seen.append(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])

    check()


@pytest.mark.slow
def test_no_server_errors(server: LiveServer, schema: Any, real_ids: dict[str, str]) -> None:
    seen: list[int] = []
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer fuzz"
        for op in _operations(schema):
            mine = {name: value for name, value in real_ids.items() if "{" + name + "}" in op.path}
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _run(op, mode, server.url, session, None, EXAMPLES, seen)
                if mine:
                    _run(op, mode, server.url, session, mine, EXAMPLES_WITH_REAL_IDS, seen)
    # The run exercised both sides: successes and rejections.
    assert any(s == 200 for s in seen) and any(400 <= s < 500 for s in seen)
    assert all(s < 500 for s in seen)
    # And the server is still fine afterwards.
    assert httpx.get(server.url + "/healthz").status_code == 200
