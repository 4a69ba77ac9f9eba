"""`assistd import` and `assistd export` (issue 17): exports built from the official object shapes go in
with their ids, read back through the official SDK field for field, in order, runs work on them, and
an export of what was imported imports into a fresh server as the same data.

The CLI runs as a subprocess against the live test server's database, as a user would run it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from exportdata import T0, Ids, assistant, plain_thread, rich_thread, write_export
from openai import OpenAI

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.server import LiveServer

BACKENDS = ["sqlite", "postgres"]
INCLUDE_CONTENT = ["step_details.tool_calls[*].file_search.results[*].content"]


def cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistd", *args], env=server.env, capture_output=True, text=True, timeout=600
    )


def sdk(server: LiveServer) -> OpenAI:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)


@pytest.fixture(scope="module", params=BACKENDS)
def imp_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Callable[..., LiveServer]
) -> LiveServer:
    import os

    wanted = os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")
    if request.param not in wanted:
        pytest.skip(f"{request.param} not in ASSISTD_TEST_BACKENDS")
    return launch(request, tmp_path_factory, request.param)


@pytest.fixture()
def client(imp_server: LiveServer) -> Iterator[OpenAI]:
    c = sdk(imp_server)
    yield c
    c.close()


def missing_files(server: LiveServer) -> list[dict[str, Any]]:
    """What the console's Import page lists: files imports referenced without their bytes."""
    url = server.url + "/admin/v1/imports/missing_files"
    response = httpx.get(url, headers={"Authorization": "Bearer test-key"}, timeout=30)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


def assert_same(served: dict[str, Any], original: dict[str, Any], *skip: str) -> None:
    """Every field of the original object reads back as it was."""
    for key, value in original.items():
        if key in skip:
            continue
        assert served.get(key) == value, f"{original.get('id')}.{key}: {served.get(key)!r} != {value!r}"


def read_back(client: OpenAI, record: dict[str, Any]) -> None:
    """The whole thread record, as the SDK reads it: thread, messages in order, runs, steps."""
    thread_id = record["thread_id"]
    assert_same(client.beta.threads.retrieve(thread_id).to_dict(), record["thread"])
    served = list(client.beta.threads.messages.list(thread_id, order="asc", limit=2))  # pages by cursor
    assert [m.id for m in served] == [m["id"] for m in record["messages"]]
    for got, want in zip(served, record["messages"], strict=True):
        assert_same(got.to_dict(), want)
    newest = client.beta.threads.messages.list(thread_id, limit=3).data
    assert [m.id for m in newest] == [m["id"] for m in record["messages"][::-1][:3]]
    ids = [m["id"] for m in record["messages"]]
    before_last = client.beta.threads.messages.list(thread_id, order="asc", before=ids[-1], limit=100).data
    assert [m.id for m in before_last] == ids[:-1]
    after_first = client.beta.threads.messages.list(thread_id, order="desc", after=ids[-1], limit=100).data
    assert [m.id for m in after_first] == ids[:-1][::-1]
    runs = list(client.beta.threads.runs.list(thread_id, order="asc", limit=2))
    assert [r.id for r in runs] == [r["id"] for r in record["runs"]]
    for got_run, want_run in zip(runs, record["runs"], strict=True):
        assert_same(got_run.to_dict(), want_run, "steps")
        steps = list(
            client.beta.threads.runs.steps.list(
                want_run["id"],
                thread_id=thread_id,
                order="asc",
                include=INCLUDE_CONTENT,  # type: ignore[list-item]
            )
        )
        assert [s.id for s in steps] == [s["id"] for s in want_run["steps"]]
        for got_step, want_step in zip(steps, want_run["steps"], strict=True):
            assert_same(got_step.to_dict(), want_step)
        if want_run["steps"]:
            one = client.beta.threads.runs.steps.retrieve(
                want_run["steps"][0]["id"], thread_id=thread_id, run_id=want_run["id"]
            )
            assert one.id == want_run["steps"][0]["id"]


def test_import_reads_back_field_for_field_with_original_ids(
    imp_server: LiveServer, client: OpenAI, tmp_path: Path
) -> None:
    new = Ids(1)
    asst = assistant(new, T0)
    other = assistant(new, T0 + 5, name=None, description=None, instructions=None, tools=[], tool_resources={})
    record = rich_thread(new, asst, T0 + 100)
    export = write_export(tmp_path / "export", [asst, other], [record])

    done = cli(imp_server, "import", str(export))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "messages    wrote 5, already here 0" in done.stdout
    assert "run steps   wrote 3" in done.stdout
    assert "files without bytes (3)" in done.stdout  # the tool's exports carry no file bytes

    assert_same(client.beta.assistants.retrieve(asst["id"]).to_dict(), asst)
    assert_same(client.beta.assistants.retrieve(other["id"]).to_dict(), other)
    listed = [a.id for a in client.beta.assistants.list(order="asc", limit=100)]
    assert listed.index(asst["id"]) < listed.index(other["id"])  # by created_at, not by the random ids
    read_back(client, record)
    missing = missing_files(imp_server)
    mine = {f["id"]: f for f in missing if f["thread_id"] == record["thread_id"]}
    assert set(mine) == set(record["files"])
    for file_id, meta in record["files"].items():
        assert (mine[file_id]["filename"], mine[file_id]["bytes"]) == (meta["filename"], meta["bytes"])
    message = record["messages"][2]
    got = client.beta.threads.messages.retrieve(message["id"], thread_id=record["thread_id"])
    assert (
        got.content[0].text.annotations[0].file_citation.file_id
        == message["content"][0]["text"]["annotations"][0]["file_citation"]["file_id"]
    )  # type: ignore[union-attr]


def test_reimport_changes_nothing(imp_server: LiveServer, client: OpenAI, tmp_path: Path) -> None:
    new = Ids(2)
    asst = assistant(new, T0)
    record = plain_thread(new, asst, T0 + 10, 30)
    export = write_export(tmp_path / "export", [asst], [record])
    first = cli(imp_server, "import", str(export))
    assert first.returncode == 0, first.stdout + first.stderr
    before = cli(imp_server, "export", str(tmp_path / "before"), "--thread", record["thread_id"])
    assert before.returncode == 0, before.stderr

    again = cli(imp_server, "import", str(export))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "messages    wrote 0, already here 30" in again.stdout
    assert "assistants  wrote 0, already here 1" in again.stdout
    after = cli(imp_server, "export", str(tmp_path / "after"), "--thread", record["thread_id"])
    assert after.returncode == 0, after.stderr
    name = f"threads/{record['thread_id']}.json"
    assert without(json.loads((tmp_path / "before" / name).read_text()), "exported_at") == without(
        json.loads((tmp_path / "after" / name).read_text()), "exported_at"
    )


def test_dry_run_reports_and_writes_nothing(imp_server: LiveServer, client: OpenAI, tmp_path: Path) -> None:
    new = Ids(3)
    asst = assistant(new, T0)
    record = plain_thread(new, asst, T0 + 10, 4)
    export = write_export(tmp_path / "export", [asst], [record])
    done = cli(imp_server, "import", str(export), "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dry run: nothing written" in done.stdout
    assert "messages    would write 4" in done.stdout
    with pytest.raises(Exception, match="404|No thread found"):
        client.beta.threads.retrieve(record["thread_id"])
    fresh = cli(imp_server, "import", str(export), "--dry-run", "--project", f"new-{time.monotonic_ns()}")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "messages    would write 4" in fresh.stdout


def test_malformed_or_partial_export_is_reported_and_no_thread_is_half_written(
    imp_server: LiveServer, client: OpenAI, tmp_path: Path
) -> None:
    new = Ids(4)
    asst = assistant(new, T0)
    good = plain_thread(new, asst, T0 + 10, 6)
    bad_message = plain_thread(new, asst, T0 + 20, 6)
    bad_message["messages"][3]["role"] = "system"
    bad_step = plain_thread(new, asst, T0 + 30, 6)
    bad_step["runs"][0]["steps"][0]["type"] = "tool_calls"
    bad_step["runs"][0]["steps"][0]["step_details"] = {
        "type": "tool_calls",
        "tool_calls": [{"id": "call_1", "type": "retrieval", "retrieval": {}}],  # v1's tool
    }
    bad_id = plain_thread(new, asst, T0 + 40, 2)
    bad_id["messages"][1]["id"] = "msg_ with spaces"
    export = write_export(
        tmp_path / "export",
        [asst],
        [good, bad_message, bad_step, bad_id],
        failed=[{"thread_id": "thread_gone", "error": "not_found_or_deleted"}],
    )
    (export / "threads" / "thread_truncated.json").write_text('{"export_schema": "assistants-thread-export/v1", "thr')

    done = cli(imp_server, "import", str(export))
    assert done.returncode == 1, done.stdout
    out = done.stdout
    assert "'role' must be user or assistant" in out
    assert "tool_calls[0] has type 'retrieval' (not code_interpreter, file_search, function)" in out
    assert "not a valid id" in out
    assert "thread_truncated.json: not readable JSON" in out
    assert "thread thread_gone: the export could not fetch it: not_found_or_deleted" in out
    assert "threads not imported (3)" in out
    assert len(list(client.beta.threads.messages.list(good["thread_id"]))) == 6
    for broken in (bad_message, bad_step, bad_id):
        with pytest.raises(Exception, match="404|No thread found"):
            client.beta.threads.retrieve(broken["thread_id"])


def test_conflicting_ids_abort_the_whole_thread(imp_server: LiveServer, client: OpenAI, tmp_path: Path) -> None:
    """A message id already used in another thread: that thread is rolled back entirely, never half written."""
    new = Ids(5)
    asst = assistant(new, T0)
    first = plain_thread(new, asst, T0 + 10, 4)
    assert cli(imp_server, "import", str(write_export(tmp_path / "a", [asst], [first]))).returncode == 0
    second = plain_thread(new, asst, T0 + 20, 4)
    second["messages"][2]["id"] = first["messages"][1]["id"]
    second["messages"][2]["thread_id"] = second["thread_id"]
    done = cli(imp_server, "import", str(write_export(tmp_path / "b", [asst], [second])))
    assert done.returncode == 1
    assert f"this id is already used in thread {first['thread_id']}" in done.stdout
    with pytest.raises(Exception, match="404|No thread found"):
        client.beta.threads.retrieve(second["thread_id"])
    assert client.beta.threads.messages.retrieve(first["messages"][1]["id"], thread_id=first["thread_id"])


def test_loose_api_objects_import(imp_server: LiveServer, client: OpenAI, tmp_path: Path) -> None:
    """An assistant, a thread and list pages of messages and runs saved as the API returned them (newest first)."""
    new = Ids(6)
    asst = assistant(new, T0)
    record = plain_thread(new, asst, T0 + 10, 7)
    folder = tmp_path / "loose"
    folder.mkdir()
    (folder / "assistant.json").write_text(json.dumps(asst))
    (folder / "thread.json").write_text(json.dumps(record["thread"]))
    page = {
        "object": "list",
        "data": record["messages"][::-1],
        "first_id": record["messages"][-1]["id"],
        "last_id": record["messages"][0]["id"],
        "has_more": False,
    }
    (folder / "messages.json").write_text(json.dumps(page, ensure_ascii=False))
    run = dict(record["runs"][0])
    steps = run.pop("steps")
    (folder / "runs.json").write_text(json.dumps({"object": "list", "data": [run], "has_more": False}))
    (folder / "steps.json").write_text(json.dumps({"object": "list", "data": steps, "has_more": False}))
    done = cli(imp_server, "import", str(folder))
    assert done.returncode == 0, done.stdout + done.stderr
    read_back(client, record)


def test_a_run_on_an_imported_thread_sees_its_history(
    imp_server: LiveServer, client: OpenAI, fake: FakeUpstream, tmp_path: Path
) -> None:
    new = Ids(7)
    asst = assistant(
        new, T0, tools=[{"type": "function", "function": {"name": "noop", "parameters": {}}}], tool_resources={}
    )
    record = plain_thread(new, asst, T0 + 10, 9)
    assert cli(imp_server, "import", str(write_export(tmp_path / "e", [asst], [record]))).returncode == 0
    model = f"import-{time.monotonic_ns()}"
    fake.script(model, Reply.say("Still here."))
    client.beta.threads.messages.create(record["thread_id"], role="user", content="And now?")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=record["thread_id"], assistant_id=asst["id"], model=model, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error
    (request,) = fake.requests(model)
    said = [m["content"] for m in request["messages"] if m["role"] in ("user", "assistant")]
    texts = [c if isinstance(c, str) else " ".join(p.get("text", "") for p in c) for c in said]
    assert texts == [f"message {i} — ünïcødé ✓" for i in range(9)] + ["And now?"]
    messages = list(client.beta.threads.messages.list(record["thread_id"], order="asc", limit=100))
    assert [m.id for m in messages[:9]] == [m["id"] for m in record["messages"]]
    assert messages[-1].run_id == run.id and messages[-1].content[0].text.value == "Still here."  # type: ignore[union-attr]

    # Truncation applies as on any thread: the last three messages, newest of them the run's answer.
    fake.script(model, Reply.say("Short memory."))
    client.beta.threads.messages.create(record["thread_id"], role="user", content="Only recent?")
    short = client.beta.threads.runs.create_and_poll(
        thread_id=record["thread_id"],
        assistant_id=asst["id"],
        model=model,
        truncation_strategy={"type": "last_messages", "last_messages": 3},
        poll_interval_ms=50,
    )
    assert short.status == "completed", short.last_error
    said = [m["content"] for m in fake.requests(model)[-1]["messages"] if m["role"] in ("user", "assistant")]
    texts = [c if isinstance(c, str) else " ".join(p.get("text", "") for p in c) for c in said]
    assert texts == ["And now?", "Still here.", "Only recent?"]


@pytest.mark.slow
def test_ten_thousand_messages_in_one_thread(imp_server: LiveServer, client: OpenAI, tmp_path: Path) -> None:
    new = Ids(8)
    asst = assistant(new, T0)
    record = plain_thread(new, asst, T0 + 10, 10_000)
    started = time.monotonic()
    done = cli(imp_server, "import", str(write_export(tmp_path / "big", [asst], [record])))
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 300
    ids = [m.id for m in client.beta.threads.messages.list(record["thread_id"], order="asc", limit=100)]
    assert ids == [m["id"] for m in record["messages"]]


def test_round_trip_into_a_fresh_server_is_identical(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    launch: Callable[..., LiveServer],
    imp_server: LiveServer,
    client: OpenAI,
    tmp_path: Path,
) -> None:
    new = Ids(9)
    asst = assistant(new, T0)
    record = rich_thread(new, asst, T0 + 100)
    second = plain_thread(new, asst, T0 + 200, 12)
    files = tmp_path / "bytes"
    files.mkdir()
    for meta in record["files"].values():  # bytes found by original filename (--files)
        (files / meta["filename"]).write_bytes(meta["filename"].encode() * 3)
        meta["bytes"] = len(meta["filename"].encode() * 3)
    first = cli(
        imp_server, "import", str(write_export(tmp_path / "in", [asst], [record, second])), "--files", str(files)
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert "files       wrote 3" in first.stdout
    missing = missing_files(imp_server)
    assert not set(record["files"]) & {f["id"] for f in missing}
    file_id = next(iter(record["files"]))
    stored = client.files.retrieve(file_id)  # purpose assistants: its bytes are not downloadable, as on OpenAI
    assert (stored.filename, stored.bytes, stored.created_at) == (
        record["files"][file_id]["filename"],
        record["files"][file_id]["bytes"],
        record["files"][file_id]["created_at"],
    )

    exported = cli(
        imp_server,
        "export",
        str(tmp_path / "out"),
        "--metadata",
        "customer=c-42",
        "--thread",
        record["thread_id"],
        "--thread",
        second["thread_id"],
    )
    assert exported.returncode == 0, exported.stderr
    assert not (tmp_path / "out" / "threads" / f"{second['thread_id']}.json").exists()  # metadata filter
    exported = cli(
        imp_server, "export", str(tmp_path / "out"), "--thread", record["thread_id"], "--thread", second["thread_id"]
    )
    assert exported.returncode == 0, exported.stderr

    backend = "postgres" if "ASSISTD_DATABASE_URL" in imp_server.env else "sqlite"
    fresh = launch(request, tmp_path_factory, backend)
    again = cli(fresh, "import", str(tmp_path / "out"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "files       wrote 3" in again.stdout and "files without bytes" not in again.stdout
    back = cli(
        fresh, "export", str(tmp_path / "back"), "--thread", record["thread_id"], "--thread", second["thread_id"]
    )
    assert back.returncode == 0, back.stderr
    for tid in (record["thread_id"], second["thread_id"]):
        a = json.loads((tmp_path / "out" / "threads" / f"{tid}.json").read_text())
        b = json.loads((tmp_path / "back" / "threads" / f"{tid}.json").read_text())
        assert without(a, "exported_at") == without(b, "exported_at")
    mine = {a["id"]: a for a in json.loads((tmp_path / "out" / "assistants.json").read_text())}
    theirs = {a["id"]: a for a in json.loads((tmp_path / "back" / "assistants.json").read_text())}
    assert theirs[asst["id"]] == mine[asst["id"]]
    for name in (tmp_path / "out" / "files").iterdir():
        assert (tmp_path / "back" / "files" / name.name).read_bytes() == name.read_bytes()
    with sdk(fresh) as other:
        read_back(other, json.loads((tmp_path / "out" / "threads" / f"{record['thread_id']}.json").read_text()))
        assert other.files.retrieve(file_id).to_dict() == stored.to_dict()


def test_reindex_recreates_vector_stores_with_their_ids(imp_server: LiveServer, client: OpenAI, tmp_path: Path) -> None:
    """--files gives the bytes, --reindex brings back the thread's vector store under its id with the files
    its messages attached for file_search, ingested by the server; an assistant's store comes back empty
    (no export says what it held) and the report says so."""
    new = Ids(10)
    store_of_thread, store_of_assistant = new("vs_"), new("vs_")
    asst = assistant(
        new,
        T0,
        tool_resources={
            "code_interpreter": {"file_ids": []},
            "file_search": {"vector_store_ids": [store_of_assistant]},
        },
    )
    record = plain_thread(new, asst, T0 + 10, 2)
    record["thread"]["tool_resources"] = {"file_search": {"vector_store_ids": [store_of_thread]}}
    doc = new("file-")
    record["messages"][0]["attachments"] = [{"file_id": doc, "tools": [{"type": "file_search"}]}]
    text_bytes = b"The narwhal's tusk is a tooth that can grow three metres long.\n"
    record["files"] = {
        doc: {
            "id": doc,
            "object": "file",
            "bytes": len(text_bytes),
            "created_at": T0,
            "expires_at": None,
            "filename": "narwhal.txt",
            "purpose": "assistants",
            "status": "processed",
            "status_details": None,
        }
    }
    files = tmp_path / "bytes"
    files.mkdir()
    (files / "narwhal.txt").write_bytes(text_bytes)
    export = write_export(tmp_path / "e", [asst], [record])

    without_flag = cli(imp_server, "import", str(export), "--dry-run")
    assert "--reindex recreates them" in without_flag.stdout
    done = cli(imp_server, "import", str(export), "--files", str(files), "--reindex")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "vector stores wrote 2" in done.stdout
    assert f"vector store {store_of_assistant} (assistant {asst['id']}) recreated" in done.stdout
    deadline = time.monotonic() + 120
    status = None
    while time.monotonic() < deadline:
        (entry,) = list(client.vector_stores.files.list(vector_store_id=store_of_thread))
        status = entry.status
        if status != "in_progress":
            break
        time.sleep(0.2)
    assert status == "completed" and entry.id == doc
    results = list(client.vector_stores.search(store_of_thread, query="narwhal tusk"))
    assert results and results[0].file_id == doc
    assert client.vector_stores.retrieve(store_of_assistant).file_counts.total == 0
    again = cli(imp_server, "import", str(export), "--files", str(files), "--reindex")
    assert again.returncode == 0, again.stdout
    assert "vector stores wrote 0, already here 2" in again.stdout
    assert "files in vector stores wrote 0, already here 1" in again.stdout


def test_a_run_still_going_when_exported_is_kept_as_expired_history(
    imp_server: LiveServer, client: OpenAI, tmp_path: Path
) -> None:
    """It cannot continue here (its model call and tool outputs are gone): expired, its open step too,
    said in the report, and the thread takes new runs."""
    new = Ids(11)
    asst = assistant(new, T0)
    record = plain_thread(new, asst, T0 + 10, 2)
    waiting = record["runs"][0]
    call_id = new("call_")
    waiting.update(
        status="requires_action",
        completed_at=None,
        usage=None,
        expires_at=T0 + 600,
        required_action={
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {
                "tool_calls": [
                    {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
                ]
            },
        },
    )
    step = waiting["steps"][0]
    step.update(
        type="tool_calls",
        status="in_progress",
        completed_at=None,
        step_details={
            "type": "tool_calls",
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}", "output": None},
                }
            ],
        },
    )
    done = cli(imp_server, "import", str(write_export(tmp_path / "e", [asst], [record])))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"run {waiting['id']} was requires_action when exported; imported as expired" in done.stdout
    run = client.beta.threads.runs.retrieve(waiting["id"], thread_id=record["thread_id"])
    assert (run.status, run.required_action, run.expires_at) == ("expired", None, None)
    (got,) = list(client.beta.threads.runs.steps.list(waiting["id"], thread_id=record["thread_id"]))
    assert got.status == "expired" and got.expired_at is not None
    client.beta.threads.messages.create(record["thread_id"], role="user", content="hello again")  # not locked
