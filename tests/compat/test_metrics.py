"""GET /metrics (issue 15, item 6): the Prometheus exposition parses with the client library's parser
and counts what the server did, on SQLite and PostgreSQL: runs by status and model and the queue from
the database, run and model-call latency from this process, code_interpreter's kernels; it can be
turned off or put behind a token, and a database it cannot read does not make it fail.

Each server here is its own (worker concurrency 1, so that a second run waits in the queue while a
first one hangs), so the counts are exact.
"""

from __future__ import annotations

import socket
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistd.testing.fake_upstream import FakeUpstream, Reply
from assistd.testing.kernel_gateway import KernelGateway, build, default_venv
from assistd.testing.metrics import count, scrape, value
from assistd.testing.postgres import TestPostgres
from assistd.testing.server import LiveServer

from .test_run_limits import BACKENDS
from .test_runs import make_assistant, new_model, wait_status, wait_until


def sdk(server: LiveServer) -> Any:
    from openai import OpenAI

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)


@pytest.fixture(scope="module", params=BACKENDS)
def one_worker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Callable[..., LiveServer]
) -> LiveServer:
    return launch(
        request, tmp_path_factory, request.param, env={"ASSISTD_WORKER_CONCURRENCY": "1", "ASSISTD_METRICS_TOKEN": ""}
    )


@pytest.fixture()
def client(one_worker: LiveServer) -> Iterator[Any]:
    c = sdk(one_worker)
    yield c
    c.close()


def test_completed_failed_and_queued_runs_are_counted(one_worker: LiveServer, client: Any, fake: FakeUpstream) -> None:
    done, broken, hung, waiting = new_model(), new_model(), new_model(), new_model()
    fake.script(done, Reply.say("Four."))
    fake.script(broken, Reply(status=400, error_message="no such model"))
    fake.script(hung, Reply(hang=True))
    before = scrape(one_worker)

    completed = client.beta.threads.create_and_run_poll(assistant_id=make_assistant(client, done).id)
    assert completed.status == "completed"
    failed = client.beta.threads.create_and_run_poll(assistant_id=make_assistant(client, broken).id)
    assert failed.status == "failed"

    # The one worker is busy with a hanging call: the next run waits in the queue.
    running = client.beta.threads.create_and_run(assistant_id=make_assistant(client, hung).id)
    wait_status(client, running.thread_id, running.id, {"in_progress"})
    queued = client.beta.threads.create_and_run(assistant_id=make_assistant(client, waiting).id)

    after = scrape(one_worker)
    assert value(after, "assistd_metrics_database_up") == 1
    assert value(after, "assistd_runs", status="completed", model=done) == 1
    assert value(after, "assistd_runs", status="failed", model=broken) == 1
    assert value(after, "assistd_runs", status="in_progress", model=hung) == 1
    assert value(after, "assistd_runs", status="queued", model=waiting) == 1
    assert value(after, "assistd_run_queue_depth") == 1
    assert value(after, "assistd_ingestion_backlog_files") == 0

    for status in ("completed", "failed"):
        grew = count(after, "assistd_run_duration_seconds", status=status) - count(
            before, "assistd_run_duration_seconds", status=status
        )
        assert grew == 1, status
    # The route's name for the fake upstream is `upstream` (ASSISTD_UPSTREAM_BASE_URL).
    calls = "assistd_model_call_duration_seconds"
    assert count(after, calls, backend="upstream", model=done, outcome="ok") == 1
    assert count(after, calls, backend="upstream", model=broken, outcome="error") == 1
    assert count(after, "assistd_model_first_token_seconds", backend="upstream", model=done) == 1
    assert count(after, "assistd_model_first_token_seconds", backend="upstream", model=broken) == 0
    assert value(after, "process_resident_memory_bytes", **{}) is not None  # the client library's own

    # Cancelled: the hanging call is abandoned, the queued run never ran.
    for run in (queued, running):
        client.beta.threads.runs.cancel(run.id, thread_id=run.thread_id)
    for run in (queued, running):
        wait_status(client, run.thread_id, run.id, {"cancelled"})
    final = wait_until(
        lambda: scrape(one_worker),
        lambda s: count(s, calls, backend="upstream", model=hung, outcome="cancelled") == 1,
        what="the abandoned call's timing",
    )
    assert value(final, "assistd_run_queue_depth") == 0
    assert value(final, "assistd_runs", status="cancelled", model=waiting) == 1
    cancelled = count(final, "assistd_run_duration_seconds", status="cancelled") - count(
        before, "assistd_run_duration_seconds", status="cancelled"
    )
    assert cancelled == 2


def test_openmetrics_is_served_to_who_asks_for_it(one_worker: LiveServer) -> None:
    accept = "application/openmetrics-text; version=1.0.0"
    response = httpx.get(f"{one_worker.url}/metrics", headers={"accept": accept}, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


# --- ingestion backlog ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def silent_embeddings() -> Iterator[str]:
    """An embeddings endpoint that takes connections and never answers: ingestion waits on it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"


def test_files_waiting_for_ingestion_are_the_backlog(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    launch: Callable[..., LiveServer],
    silent_embeddings: str,
) -> None:
    env = {"ASSISTD_EMBEDDINGS_BASE_URL": silent_embeddings, "ASSISTD_DRAIN_SECONDS": "0"}
    server = launch(request, tmp_path_factory, BACKENDS[0], env=env)
    client = sdk(server)
    try:
        files = [
            client.files.create(file=(f"notes-{i}.txt", b"some words to embed", "text/plain"), purpose="assistants")
            for i in range(2)
        ]
        store = client.vector_stores.create(file_ids=[f.id for f in files])
        assert store.file_counts.in_progress == 2
        assert value(scrape(server), "assistd_ingestion_backlog_files") == 2
    finally:
        client.close()


# --- on and off, and the token ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Callable[..., LiveServer]
) -> LiveServer:
    env = {"ASSISTD_METRICS_TOKEN": "scrape-me", "ASSISTD_API_KEYS": "sk-api-key"}
    return launch(request, tmp_path_factory, BACKENDS[0], env=env)


def test_a_metrics_token_is_needed_when_set_and_api_keys_are_not(guarded: LiveServer) -> None:
    url = f"{guarded.url}/metrics"
    for headers in ({}, {"authorization": "Bearer sk-api-key"}, {"authorization": "Bearer scrape-mf"}):
        response = httpx.get(url, headers=headers, timeout=30)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] == "invalid_metrics_token"
        assert response.headers["www-authenticate"] == "Bearer"
    assert value(scrape(guarded, {"authorization": "Bearer scrape-me"}), "assistd_metrics_database_up") == 1
    # The API keeps its own keys.
    assert httpx.get(f"{guarded.base_url}/assistants", timeout=30).status_code == 401


def test_metrics_can_be_turned_off(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Callable[..., LiveServer]
) -> None:
    server = launch(request, tmp_path_factory, BACKENDS[0], env={"ASSISTD_METRICS": "false"})
    response = httpx.get(f"{server.url}/metrics", timeout=30)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(f"{server.url}/healthz", timeout=30).status_code == 200


def test_unscrapable_database_reports_what_is_known(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, launch: Callable[..., LiveServer]
) -> None:
    if "postgres" not in BACKENDS:
        pytest.skip("drops the server's PostgreSQL database")
    server = launch(request, tmp_path_factory, "postgres")
    postgres: TestPostgres = request.getfixturevalue("postgres")
    client = sdk(server)
    model = new_model()
    assert client.beta.threads.create_and_run_poll(assistant_id=make_assistant(client, model).id).status == "completed"
    client.close()
    postgres.drop_database(server.env["ASSISTD_DATABASE_URL"])

    samples = scrape(server)
    assert value(samples, "assistd_metrics_database_up") == 0
    assert not [key for key in samples if key[0] in ("assistd_runs", "assistd_run_queue_depth")]
    assert count(samples, "assistd_run_duration_seconds", status="completed") == 1  # this process's record
    assert value(samples, "process_resident_memory_bytes") is not None


# --- code_interpreter's sessions ----------------------------------------------------------------------


def sessions_follow_a_thread(server: LiveServer, fake: FakeUpstream, backend: str) -> None:
    """None before, one once a run of a thread ran code, none after the thread is deleted."""
    client = sdk(server)
    try:
        assert value(scrape(server), "assistd_sandbox_sessions", backend=backend) == 0
        model = new_model()
        fake.script(model, Reply.call("code_interpreter", {"code": "x = 6 * 7\nprint(x)"}), Reply.say("42."))
        assistant = make_assistant(client, model, tools=[{"type": "code_interpreter"}])
        run = client.beta.threads.create_and_run_poll(assistant_id=assistant.id)
        assert run.status == "completed", run.last_error
        assert value(scrape(server), "assistd_sandbox_sessions", backend=backend) == 1
        client.beta.threads.delete(run.thread_id)  # ends its session
        wait_until(
            lambda: scrape(server),
            lambda s: value(s, "assistd_sandbox_sessions", backend=backend) == 0,
            what="the deleted thread's session to end",
        )
    finally:
        client.close()


@pytest.fixture(scope="module", params=BACKENDS)
def local_sandbox(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    launch: Callable[..., LiveServer],
    sandbox_python: Path,
) -> LiveServer:
    return launch(request, tmp_path_factory, request.param)


def test_local_sandbox_sessions_are_this_process_kernels(local_sandbox: LiveServer, fake: FakeUpstream) -> None:
    sessions_follow_a_thread(local_sandbox, fake, "local")


@pytest.fixture(scope="module")
def kernel_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelGateway]:
    with KernelGateway(build(default_venv()), tmp_path_factory.mktemp("kernel-gateway")) as gateway:
        yield gateway


@pytest.fixture(scope="module", params=BACKENDS)
def gateway_sandbox(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    launch: Callable[..., LiveServer],
    kernel_gateway: KernelGateway,
) -> LiveServer:
    env = {
        "ASSISTD_SANDBOX_BACKEND": "gateway",
        "ASSISTD_SANDBOX_GATEWAY_URL": kernel_gateway.url,
        "ASSISTD_SANDBOX_GATEWAY_TOKEN": kernel_gateway.token,
        "ASSISTD_SANDBOX_GATEWAY_DATA_PATH": f"{tmp_path_factory.mktemp('gateway-kernels')}/{{session}}",
    }
    return launch(request, tmp_path_factory, request.param, env=env)


def test_gateway_sandbox_sessions_are_the_database_mapping(gateway_sandbox: LiveServer, fake: FakeUpstream) -> None:
    sessions_follow_a_thread(gateway_sandbox, fake, "gateway")
    assert value(scrape(gateway_sandbox), "assistd_sandbox_sessions", backend="local") is None
