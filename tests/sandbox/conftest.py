"""Fixtures for the direct sandbox tests: session managers on one event loop, and helpers.

The managers are session-scoped (a kernel start costs ~1 s), each test uses its own session keys,
and `keys` closes (and deletes) every session a test opened. Everything runs on one
`asyncio.Runner`, so background work (the warm pool filling up) progresses while a test awaits.

The server's environment gets a secret variable before any kernel starts, and the manager's root
sits next to a fake database and config file, so the security tests can look for all three from
inside the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from assistd.sandbox.base import Execution, InputFile
from assistd.sandbox.limits import Limits
from assistd.sandbox.manager import SandboxConfig, SessionManager

T = TypeVar("T")
MiB = 1 << 20

SECRET_ENV = "ASSISTD_TEST_SANDBOX_SECRET"
SECRET_VALUE = f"env-secret-{secrets.token_hex(12)}"
DB_SECRET = f"db-secret-{secrets.token_hex(12)}"


def why_no_sandbox() -> str | None:
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed: `apt-get install bubblewrap`"
    if os.geteuid() != 0:
        return "the bwrap sandbox needs the server to run as root (each session gets its own uid)"
    return None


requires_sandbox = pytest.mark.skipif(why_no_sandbox() is not None, reason=str(why_no_sandbox()))

# The shared managers' limits. The memory limit is low so the OOM test is quick; a session with
# numpy, pandas and matplotlib imported uses ~90 MiB of it.
LIMITS = Limits(memory_bytes=256 * MiB, pids=64, file_bytes=64 * MiB, cpu_seconds=600, cpus=0.5)
MAX_FILE_BYTES = 1 * MiB


@pytest.fixture(scope="session")
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as r:
        yield r


@pytest.fixture(scope="session")
def run(runner: asyncio.Runner) -> Callable[[Coroutine[Any, Any, T]], T]:
    """Run a coroutine on the tests' shared event loop (where the managers live)."""
    return runner.run


@dataclass(frozen=True)
class Server:
    """A stand-in for the API server's data directory: the sandbox root sits next to its database."""

    data_dir: Path
    root: Path
    database: Path
    config: Path


def _server(base: Path) -> Server:
    data = base / "data"
    data.mkdir(parents=True)
    database = data / "assistd.sqlite3"
    database.write_text(f"SQLite format 3\x00 {DB_SECRET}\n")
    config = data / "secret.env"
    config.write_text(f"OPENAI_API_KEY={DB_SECRET}\n")
    return Server(data, data / "sandbox", database, config)


@pytest.fixture(scope="session")
def work_dir() -> Iterator[Path]:
    """A 0711 temporary directory (pytest's own are 0700, which a dropped uid cannot cross in
    unsafe-local mode, where there are no bind mounts)."""
    path = Path(tempfile.mkdtemp(prefix="assistd-sandbox-tests-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def server(work_dir: Path) -> Server:
    return _server(work_dir / "server")


@contextlib.contextmanager
def _secret_env() -> Iterator[None]:
    old = os.environ.get(SECRET_ENV)
    os.environ[SECRET_ENV] = SECRET_VALUE
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(SECRET_ENV, None)
        else:
            os.environ[SECRET_ENV] = old


@contextlib.contextmanager
def _manager(run: Callable[[Coroutine[Any, Any, Any]], Any], config: SandboxConfig) -> Iterator[SessionManager]:
    if why_no_sandbox() is not None and config.mode == "bwrap":
        pytest.skip(str(why_no_sandbox()))
    with _secret_env():  # set before any kernel (pooled ones included) starts
        m = SessionManager(config)
        assert m.unavailable() is None, m.unavailable()
        run(m.start())
        try:
            yield m
        finally:
            run(m.aclose())


@pytest.fixture(scope="session")
def manager(
    run: Callable[[Coroutine[Any, Any, Any]], Any], server: Server, sandbox_python: Path
) -> Iterator[SessionManager]:
    """The general manager: a warm pool of one, 30 s cells, 256 MiB, 64 pids, 1 MiB returned files."""
    config = SandboxConfig(
        root=server.root,
        python=sandbox_python,
        pool_size=1,
        cell_timeout=30,
        limits=LIMITS,
        max_file_bytes=MAX_FILE_BYTES,
        max_cell_files_bytes=4 * MiB,
        idle_seconds=3600,
        reap_interval=3600,
    )
    with _manager(run, config) as m:
        yield m


@pytest.fixture(scope="session")
def short(
    run: Callable[[Coroutine[Any, Any, Any]], Any], work_dir: Path, sandbox_python: Path
) -> Iterator[SessionManager]:
    """A manager with 2 s cells, 1 s idle expiry (reaped only when a test calls reap()) and no pool."""
    config = SandboxConfig(
        root=work_dir / "short",
        python=sandbox_python,
        pool_size=0,
        cell_timeout=2,
        interrupt_grace=3,
        limits=LIMITS,
        idle_seconds=1,
        reap_interval=3600,
    )
    with _manager(run, config) as m:
        yield m


@pytest.fixture()
def keys(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> Iterator[Callable[[SessionManager], str]]:
    """`keys(manager)` → a fresh session key, closed (files removed) after the test."""
    opened: list[tuple[SessionManager, str]] = []

    def new(m: SessionManager) -> str:
        key = f"thread_{secrets.token_hex(6)}"
        opened.append((m, key))
        return key

    yield new
    for m, key in opened:
        run(m.close(key, remove_files=True))


# --- helpers ------------------------------------------------------------------------------------


def input_file(name: str, data: bytes, file_id: str | None = None) -> InputFile:
    async def read() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 7):  # several chunks
            yield data[start : start + 7]
        if not data:
            yield b""

    return InputFile(file_id or f"file-{secrets.token_hex(6)}", name, read)


def execute(
    run: Callable[[Coroutine[Any, Any, Any]], Any],
    m: SessionManager,
    key: str,
    code: str,
    inputs: list[InputFile] | None = None,
) -> Execution:
    result: Execution = run(m.execute(key, code, inputs or []))
    return result


MARK = "@@RESULT@@"
PROBE_PRELUDE = f"""
import errno as _errno, json as _json
def _err(exc):
    return _errno.errorcode.get(getattr(exc, "errno", None) or -1, type(exc).__name__)
def _try(fn, *args, **kwargs):
    try:
        value = fn(*args, **kwargs)
        return ["ok", value if isinstance(value, (str, int, float, bool, list, type(None))) else repr(value)]
    except BaseException as exc:
        return ["error", _err(exc), str(exc)]
def _report(value):
    print({MARK!r} + _json.dumps(value))
"""


def probe(run: Callable[[Coroutine[Any, Any, Any]], Any], m: SessionManager, key: str, code: str) -> Any:
    """Run `code` (which calls `_report(value)` once) and return the reported value.

    The prelude gives `_try(fn, *args)` → ["ok", value] or ["error", "ERRNO-NAME or exception", text]."""
    result = execute(run, m, key, PROBE_PRELUDE + code)
    assert result.status == "ok", (result.status, result.logs, result.notice)
    lines = [line for line in result.logs.splitlines() if line.startswith(MARK)]
    assert len(lines) == 1, result.logs
    return json.loads(lines[0][len(MARK) :])


def uid_processes(uid: int) -> list[int]:
    """Host pids whose real uid is `uid` (the session's processes)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:") and int(line.split()[1]) == uid:
                found.append(int(entry))
    return found


def process_count() -> int:
    return sum(1 for entry in os.listdir("/proc") if entry.isdigit())


async def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` on the event loop (so background tasks run) until true or `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)
