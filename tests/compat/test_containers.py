"""Containers (/v1/containers): the official SDK against a live server with the real bubblewrap sandbox.

Code runs in a container through `ContainerService` — the interface the Responses API's code_interpreter
tool calls — built in this test process over the server's own database, blob store and sandbox directory
(`run_in_container`), as a second replica of the server would. What the code wrote is then read back
through the server's API.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import openai
import pytest
from openai import OpenAI

from assistd.app import make_sandbox
from assistd.db.database import Database
from assistd.errors import InvalidRequest, NotFound
from assistd.services.containers import ContainerRun, ContainerService
from assistd.services.files import FileService
from assistd.settings import Settings
from assistd.storage.factory import open_blob_store
from assistd.testing.server import LiveServer
from conformance import assert_conforms

from .conftest import body_of

# The `name` filter, sent as openai 1.109.1 (test_legacy_sdk.py) can too: its list() has no `name`.
CRUD = {"name": "crud"}

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None or os.geteuid() != 0,
    reason="the sandbox needs bubblewrap (apt-get install bubblewrap) and a server running as root",
)

BACKENDS = os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")
MAX_MINUTES = 90
PROJECT = "proj_default"  # the open server's project
SERVER_ENV = {
    "ASSISTD_SANDBOX_CELL_TIMEOUT_SECONDS": "10",
    "ASSISTD_CONTAINER_MAX_MINUTES": str(MAX_MINUTES),
    "ASSISTD_CONTAINER_SWEEP_SECONDS": "1",
}


@pytest.fixture(scope="module", params=BACKENDS)
def cn_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Any, sandbox_python: Path
) -> LiveServer:
    server: LiveServer = launch(request, tmp_path_factory, request.param, env=SERVER_ENV)
    return server


@pytest.fixture()
def cn(cn_server: LiveServer) -> Iterator[OpenAI]:
    c = OpenAI(base_url=cn_server.base_url, api_key="test-key", max_retries=0)
    yield c
    c.close()


T = TypeVar("T")


def with_service(server: LiveServer, use: Callable[[ContainerService], Awaitable[T]]) -> T:
    """Call `use` with a ContainerService in this process over the server's database, blobs and sandbox
    directory, as another replica of the server would have (its kernels are ended afterwards)."""

    async def go() -> T:
        env = {k.removeprefix("ASSISTD_").lower(): v for k, v in server.env.items() if k.startswith("ASSISTD_")}
        settings = Settings.model_validate(env)
        db = Database(settings.effective_database_url, pool_size=2)
        blobs = await open_blob_store(settings)
        sandbox = make_sandbox(settings, db)
        await sandbox.start()
        try:
            return await use(ContainerService(db, blobs, FileService(db, blobs), sandbox, max_minutes=MAX_MINUTES))
        finally:
            await sandbox.aclose()
            await db.dispose()

    return asyncio.run(go())


def run_in_container(server: LiveServer, container_id: str, code: str) -> ContainerRun:
    """Run `code` in the container through ContainerService.execute (the Responses tool's call)."""
    return with_service(server, lambda service: service.execute(PROJECT, container_id, code))


def session_dir(server: LiveServer, container_id: str) -> Path:
    return server.data_dir / "sandbox" / "threads" / container_id


def logs(run: ContainerRun) -> str:
    return run.execution.logs


# --- expiry is checked last: the container made here idles while the other tests run -------------


@pytest.fixture(scope="module")
def expiring(cn_server: LiveServer) -> tuple[str, float]:
    with OpenAI(base_url=cn_server.base_url, api_key="test-key", max_retries=0) as c:
        made = c.containers.create(name="short-lived", expires_after={"anchor": "last_active_at", "minutes": 1})
        c.containers.files.create(made.id, file=("kept.txt", b"kept after expiry"))
    run = run_in_container(cn_server, made.id, "open('/mnt/data/out.txt', 'w').write('written')")
    assert run.execution.status == "ok", run.execution
    assert (session_dir(cn_server, made.id) / "out.txt").exists()
    return made.id, time.time()


def test_container_crud_pagination_and_conformance(cn: OpenAI, expiring: tuple[str, float]) -> None:
    raw = cn.containers.with_raw_response.create(name="crud", expires_after={"anchor": "last_active_at", "minutes": 5})
    body = body_of(raw)
    assert_conforms(body, "ContainerResource")
    assert body["id"].startswith("cntr_") and body["object"] == "container" and body["status"] == "running"
    assert body["expires_after"] == {"anchor": "last_active_at", "minutes": 5}
    assert body["last_active_at"] == body["created_at"] and abs(body["created_at"] - time.time()) < 30

    default = cn.containers.create(name="crud")
    assert default.expires_after is not None and default.expires_after.minutes == 20  # OpenAI's default
    got = cn.containers.retrieve(body["id"])
    assert got.id == body["id"] and got.name == "crud" and got.status == "running"
    assert_conforms(body_of(cn.containers.with_raw_response.retrieve(body["id"])), "ContainerResource")

    listed = body_of(cn.containers.with_raw_response.list(limit=100))
    assert_conforms(listed, "ContainerListResource")
    ids = [c["id"] for c in listed["data"]]
    assert ids.index(default.id) < ids.index(body["id"])  # newest first
    named = [c.id for c in cn.containers.list(order="asc", extra_query=CRUD)]
    assert named == [body["id"], default.id]
    first = cn.containers.list(limit=1, order="asc", extra_query=CRUD)
    assert [c.id for c in first.data] == [body["id"]] and first.has_more
    second = cn.containers.list(limit=1, order="asc", after=body["id"], extra_query=CRUD)
    assert [c.id for c in second.data] == [default.id]

    deleted = cn.containers.with_raw_response.delete(default.id)
    assert deleted.http_response.json() == {"id": default.id, "object": "container.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        cn.containers.retrieve(default.id)
    assert default.id not in [c.id for c in cn.containers.list(limit=100)]


def test_files_in_by_upload_and_file_id_and_out_byte_for_byte(cn: OpenAI) -> None:
    payload = bytes(range(256)) * 4099  # ~1 MB, every byte value
    source = cn.files.create(file=("table.csv", b"a,b\n1,2\n"), purpose="user_data")
    container = cn.containers.create(name="files", file_ids=[source.id])
    (copied,) = cn.containers.files.list(container.id).data
    assert copied.path == "/mnt/data/table.csv" and copied.source == "user" and copied.bytes == 8

    raw = cn.containers.files.with_raw_response.create(container.id, file=("blob.bin", payload))
    uploaded = body_of(raw)
    assert_conforms(uploaded, "ContainerFileResource")
    assert uploaded["id"].startswith("cfile_") and uploaded["object"] == "container.file"
    assert uploaded["container_id"] == container.id and uploaded["bytes"] == len(payload)
    assert uploaded["path"] == "/mnt/data/blob.bin" and uploaded["source"] == "user"
    assert cn.containers.files.content.retrieve(uploaded["id"], container_id=container.id).read() == payload

    # the same name again does not replace the first: it gets its own path
    again = cn.containers.files.create(container.id, file=("blob.bin", b"second"))
    assert again.path == f"/mnt/data/{again.id}-blob.bin"
    by_id = cn.containers.files.create(container.id, file_id=source.id)  # JSON body
    assert by_id.path == f"/mnt/data/{by_id.id}-table.csv" and by_id.bytes == 8

    # the copy is independent of the File it came from
    cn.files.delete(source.id)
    assert cn.containers.files.content.retrieve(copied.id, container_id=container.id).read() == b"a,b\n1,2\n"

    listed = body_of(cn.containers.files.with_raw_response.list(container.id, order="asc"))
    assert_conforms(listed, "ContainerFileListResource")
    assert [f["id"] for f in listed["data"]] == [copied.id, uploaded["id"], again.id, by_id.id]
    page = cn.containers.files.list(container.id, limit=2, order="asc", after=uploaded["id"])
    assert [f.id for f in page.data] == [again.id, by_id.id] and not page.has_more
    got = cn.containers.files.retrieve(again.id, container_id=container.id)
    assert got.bytes == 6 and got.path == again.path
    assert_conforms(
        body_of(cn.containers.files.with_raw_response.retrieve(again.id, container_id=container.id)),
        "ContainerFileResource",
    )

    gone = cn.containers.files.with_raw_response.delete(again.id, container_id=container.id)
    assert gone.http_response.json() == {"id": again.id, "object": "container.file.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        cn.containers.files.retrieve(again.id, container_id=container.id)
    with pytest.raises(openai.NotFoundError):
        cn.containers.files.content.retrieve(again.id, container_id=container.id)


def test_code_reads_the_containers_files_and_what_it_writes_is_listed(cn: OpenAI, cn_server: LiveServer) -> None:
    container = cn.containers.create(name="code")
    data = cn.containers.files.create(container.id, file=("sales.csv", b"region,amount\nnorth,10\nsouth,32\n"))
    doomed = cn.containers.files.create(container.id, file=("doomed.txt", b"bye"))
    before = cn.containers.retrieve(container.id).last_active_at

    code = (
        "import pandas as pd, os\n"
        "df = pd.read_csv('/mnt/data/sales.csv')\n"
        "df['amount'] *= 2\n"
        "df.to_csv('/mnt/data/doubled.csv', index=False)\n"
        "os.makedirs('/mnt/data/out', exist_ok=True)\n"
        "open('/mnt/data/out/deep.bin', 'wb').write(bytes(range(256)))\n"
        "print(df['amount'].sum(), sorted(os.listdir('/mnt/data')))"
    )
    run = run_in_container(cn_server, container.id, code)
    assert run.execution.status == "ok", run.execution
    assert logs(run) == "84 ['doomed.txt', 'doubled.csv', 'out', 'sales.csv']\n"
    assert sorted(f.path for f in run.files) == ["/mnt/data/doubled.csv", "/mnt/data/out/deep.bin"]

    listed = {f.path: f for f in cn.containers.files.list(container.id)}
    made = listed["/mnt/data/doubled.csv"]
    assert made.source == "assistant" and made.id.startswith("cfile_")
    assert cn.containers.files.content.retrieve(made.id, container_id=container.id).read() == (
        b"region,amount\nnorth,20\nsouth,64\n"
    )
    deep = listed["/mnt/data/out/deep.bin"]
    assert deep.source == "assistant" and deep.bytes == 256
    assert cn.containers.files.content.retrieve(deep.id, container_id=container.id).read() == bytes(range(256))
    assert listed["/mnt/data/sales.csv"].source == "user"
    after = cn.containers.retrieve(container.id).last_active_at
    assert before is not None and after is not None and after >= before  # the cell made it active

    # a user file the code changes keeps its id and source; its bytes are the new ones
    cn.containers.files.delete(doomed.id, container_id=container.id)
    run = run_in_container(
        cn_server,
        container.id,
        "import os\nopen('/mnt/data/sales.csv', 'a').write('east,1\\n')\nprint(os.path.exists('/mnt/data/doomed.txt'))",
    )
    assert logs(run) == "False\n"  # deleting a container file removes it from /mnt/data too
    changed = cn.containers.files.retrieve(data.id, container_id=container.id)
    assert changed.source == "user" and changed.bytes == len(b"region,amount\nnorth,10\nsouth,32\neast,1\n")
    assert cn.containers.files.content.retrieve(data.id, container_id=container.id).read().endswith(b"east,1\n")
    assert len(cn.containers.files.list(container.id).data) == 3

    # deleting the container ends its session and removes its files
    assert (session_dir(cn_server, container.id) / "doubled.csv").exists()
    cn.containers.delete(container.id)
    assert not session_dir(cn_server, container.id).exists()
    with pytest.raises(openai.NotFoundError):
        cn.containers.files.content.retrieve(made.id, container_id=container.id)


def test_open_auto_makes_a_container_and_an_id_must_be_running(cn: OpenAI, cn_server: LiveServer) -> None:
    source = cn.files.create(file=("in.txt", b"input"), purpose="user_data")

    async def auto(service: ContainerService) -> tuple[str, str]:
        made = await service.open(PROJECT, "auto", file_ids=[source.id])
        run = await service.execute(PROJECT, made.id, "print(open('/mnt/data/in.txt').read())")
        return made.id, run.execution.logs

    container_id, printed = with_service(cn_server, auto)
    assert printed == "input\n"
    got = cn.containers.retrieve(container_id)
    assert got.status == "running" and got.expires_after is not None and got.expires_after.minutes == 20
    assert [f.path for f in cn.containers.files.list(container_id)] == ["/mnt/data/in.txt"]

    async def again(service: ContainerService) -> list[str]:
        reopened = await service.open(PROJECT, container_id, file_ids=[source.id])
        assert reopened.id == container_id
        return [f.path for f in await service.files_of(PROJECT, container_id)]

    paths = with_service(cn_server, again)
    assert paths[0] == "/mnt/data/in.txt" and paths[1].endswith("-in.txt") and len(paths) == 2
    with pytest.raises(NotFound):
        with_service(cn_server, lambda service: service.open(PROJECT, "cntr_nope"))
    cn.containers.delete(container_id)


def test_uploads_of_the_same_name_at_once_each_get_a_path(cn: OpenAI) -> None:
    container = cn.containers.create(name="race")

    def upload(n: int) -> Any:
        with OpenAI(base_url=str(cn.base_url), api_key="test-key", max_retries=0) as own:
            return own.containers.files.create(container.id, file=("same.txt", f"copy {n}".encode()))

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(upload, range(16)))
    paths = [f.path for f in made]
    assert len(set(paths)) == 16 and paths.count("/mnt/data/same.txt") == 1, paths
    assert {f.id for f in cn.containers.files.list(container.id, limit=100)} == {f.id for f in made}


def _error(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert_conforms(body, "ErrorResponse")
    return body["error"]  # type: ignore[no-any-return]


def test_errors_are_openai_shaped(cn: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        cn.containers.retrieve("cntr_nope")
    assert _error(missing.value)["message"] == "No container found with id 'cntr_nope'."
    for call in (
        lambda: cn.containers.delete("cntr_nope"),
        lambda: cn.containers.files.list("cntr_nope"),
        lambda: cn.containers.files.create("cntr_nope", file=("a.txt", b"a")),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    container = cn.containers.create(name="errors")
    with pytest.raises(openai.NotFoundError) as no_file:
        cn.containers.files.retrieve("cfile_nope", container_id=container.id)
    assert _error(no_file.value)["type"] == "invalid_request_error"

    bad: list[tuple[dict[str, Any], str]] = [
        ({}, "name"),
        ({"name": "x", "expires_after": {"anchor": "last_active_at", "minutes": MAX_MINUTES + 1}}, "expires_after"),
        ({"name": "x", "expires_after": {"anchor": "last_active_at", "minutes": 0}}, "expires_after"),
        ({"name": "x", "expires_after": {"anchor": "created_at", "minutes": 5}}, "expires_after"),
        ({"name": "x", "file_ids": ["file-nope"]}, "file_ids"),
        ({"name": "x", "surprise": 1}, "surprise"),
    ]
    for body, param in bad:
        with pytest.raises(openai.BadRequestError) as refused:
            cn.post("/containers", body=body, cast_to=object)
        error = _error(refused.value)
        assert error["param"] is not None and error["param"].startswith(param), (body, error)

    with pytest.raises(openai.BadRequestError) as unknown_file:
        cn.containers.files.create(container.id, file_id="file-nope")
    assert _error(unknown_file.value)["param"] == "file_id"
    with pytest.raises(openai.BadRequestError):  # neither a file nor a file_id
        cn.post(f"/containers/{container.id}/files", body={}, cast_to=object)
    with pytest.raises(openai.BadRequestError):  # both
        cn.containers.files.create(container.id, file=("a.txt", b"a"), file_id="file-x")


def test_an_idle_container_expires_its_kernel_ends_and_its_files_stay_readable(
    cn: OpenAI, cn_server: LiveServer, expiring: tuple[str, float]
) -> None:
    container_id, made_at = expiring
    last_active = cn.containers.retrieve(container_id).last_active_at
    assert last_active is not None
    deadline = made_at + 60 + 60
    while cn.containers.retrieve(container_id).status != "expired":
        assert time.time() < deadline, "the container did not expire"
        time.sleep(0.5)
    # the sweeper ends the session: the kernel and the data directory go (within a few sweeps)
    while session_dir(cn_server, container_id).exists():
        assert time.time() < deadline, "the expired container's session directory was not removed"
        time.sleep(0.5)
    expired = body_of(cn.containers.with_raw_response.retrieve(container_id))
    assert_conforms(expired, "ContainerResource")
    assert expired["status"] == "expired"
    assert time.time() >= last_active + 60  # not before its minute

    # its files are still listed and downloadable (OpenAI's are lost), but it runs nothing new
    files = {f.path: f for f in cn.containers.files.list(container_id)}
    assert files["/mnt/data/out.txt"].source == "assistant"
    kept = files["/mnt/data/kept.txt"]
    assert cn.containers.files.content.retrieve(kept.id, container_id=container_id).read() == b"kept after expiry"
    with pytest.raises(openai.BadRequestError) as refused:
        cn.containers.files.create(container_id, file=("late.txt", b"late"))
    assert _error(refused.value)["code"] == "container_expired"
    with pytest.raises(InvalidRequest, match="has expired"):
        run_in_container(cn_server, container_id, "print(1)")
    cn.containers.delete(container_id)
    with pytest.raises(openai.NotFoundError):
        cn.containers.retrieve(container_id)
