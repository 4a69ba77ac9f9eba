"""The kernel gateway sandbox backend against a real `jupyter kernelgateway` (started by conftest)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistd.sandbox.base import SandboxUnavailable
from assistd.sandbox.gateway import GatewaySandbox
from assistd.stores import sandbox_sessions
from assistd.testing.kernel_gateway import KernelGateway
from assistd.testing.server import free_port

from .conftest import execute, gateway_config, input_file

Run = Callable[[Coroutine[Any, Any, Any]], Any]


def test_state_persists_across_cells(run: Run, backend: GatewaySandbox, session: str) -> None:
    first = execute(run, backend, session, "x = 41\nprint('x is', x)")
    assert (first.status, first.logs, first.notice) == ("ok", "x is 41\n", None)
    second = execute(run, backend, session, "x + 1")
    assert (second.status, second.logs) == ("ok", "42\n")


def test_the_backends_own_code_leaves_nothing_in_the_users_namespace(
    run: Run, backend: GatewaySandbox, session: str
) -> None:
    execute(run, backend, session, "y = 1", [input_file("in.txt", b"hello")])
    names = execute(run, backend, session, "sorted(k for k in globals() if not k.startswith('_'))")
    assert names.logs.strip() == "['In', 'Out', 'exit', 'get_ipython', 'open', 'quit', 'y']"
    counted = execute(run, backend, session, "get_ipython().execution_count")
    # IPython shows N + 1 during the Nth cell; the backend's own requests are silent, so they do not count
    assert counted.logs == "4\n"


def test_a_plot_is_an_image(run: Run, backend: GatewaySandbox, session: str) -> None:
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.show()"
    result = execute(run, backend, session, code)
    assert result.status == "ok", result.logs
    (png,) = result.images
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000


def test_an_error_is_a_traceback_in_the_logs(run: Run, backend: GatewaySandbox, session: str) -> None:
    result = execute(run, backend, session, "print('before')\n1 / 0")
    assert result.status == "error"
    assert result.logs.startswith("before\n")
    assert "ZeroDivisionError" in result.logs and "\x1b[" not in result.logs
    assert execute(run, backend, session, "'still here'").logs == "'still here'\n"


def test_interrupt_stops_a_busy_loop_and_keeps_variables(run: Run, backend: GatewaySandbox, session: str) -> None:
    execute(run, backend, session, "kept = 7")

    async def interrupted() -> tuple[Any, float]:
        task = asyncio.create_task(backend.execute(session, "print('looping', flush=True)\nwhile True:\n    pass", []))
        await asyncio.sleep(1.5)
        started = time.monotonic()
        await backend.interrupt(session)
        result = await asyncio.wait_for(task, 20)
        return result, time.monotonic() - started

    result, took = run(interrupted())
    assert result.status == "stopped", (result.logs, result.notice)
    assert "looping" in result.logs and "KeyboardInterrupt" in result.logs
    assert took < 5
    assert execute(run, backend, session, "kept").logs == "7\n"


def test_a_cell_past_its_time_is_interrupted(
    run: Run, kernel_gateway: KernelGateway, database: Any, data_root: Path
) -> None:

    short = GatewaySandbox(gateway_config(kernel_gateway, data_root, cell_timeout=1.5), database)
    key = "thread_short_cell"
    try:
        result = execute(run, short, key, "import time\nwhile True:\n    time.sleep(0.01)")
        assert result.status == "timeout" and "longer than 1.5 s" in (result.notice or "")
        assert execute(run, short, key, "2 * 21").logs == "42\n"
    finally:
        run(short.close(key, remove_files=True))
        run(short.aclose())


def test_an_input_file_is_readable_in_the_data_directory(run: Run, backend: GatewaySandbox, session: str) -> None:
    data = bytes(range(256)) * 5000  # 1.28 MB: more than one chunk through the kernel
    csv = input_file("sales.csv", b"region,amount\nnorth,10\nsouth,32\n")
    blob = input_file("blob.bin", data)
    result = execute(
        run,
        backend,
        session,
        "import hashlib, os\nprint(open('sales.csv').read().splitlines()[2])\n"
        "print(hashlib.sha256(open('blob.bin', 'rb').read()).hexdigest())\nprint(sorted(os.listdir('.')))",
        [csv, blob],
    )
    assert result.status == "ok", result.logs
    import hashlib

    lines = result.logs.splitlines()
    assert lines[0] == "south,32"
    assert lines[1] == hashlib.sha256(data).hexdigest()
    assert lines[2] == "['blob.bin', 'sales.csv']"
    assert result.files == []  # inputs are not returned as outputs
    # placed once per kernel: the code's own change to it stays
    execute(run, backend, session, "open('sales.csv', 'w').write('changed')", [csv])
    assert execute(run, backend, session, "open('sales.csv').read()", [csv]).logs == "'changed'\n"


def test_written_files_are_returned_and_unchanged_ones_are_not(run: Run, backend: GatewaySandbox, session: str) -> None:
    code = (
        "import os\nos.makedirs('out', exist_ok=True)\n"
        "open('out/result.csv', 'w').write('a,b\\n1,2\\n')\nopen('big.bin', 'wb').write(b'x' * (2 << 20))\n"
        "os.symlink('/etc/passwd', 'link.txt')"
    )
    result = execute(run, backend, session, code)
    assert result.status == "ok", result.logs
    assert [(f.path, f.data) for f in result.files] == [("out/result.csv", b"a,b\n1,2\n")]
    assert result.notice == "Files too large to return: big.bin."
    again = execute(run, backend, session, "open('out/result.csv', 'a').write('3,4\\n')")
    assert [(f.path, f.data) for f in again.files] == [("out/result.csv", b"a,b\n1,2\n3,4\n")]
    assert execute(run, backend, session, "1").files == []


def test_another_replica_reaches_the_same_kernel(
    run: Run, backend: GatewaySandbox, replica: GatewaySandbox, session: str, database: Any
) -> None:
    execute(run, backend, session, "shared = 'from replica one'", [input_file("in.txt", b"data", "file-in1")])
    record = run(sandbox_sessions.lookup(database, session))
    assert record is not None and record.placed == frozenset({"file-in1"})
    seen = execute(run, replica, session, "shared", [input_file("in.txt", b"data", "file-in1")])
    assert (seen.status, seen.logs, seen.notice) == ("ok", "'from replica one'\n", None)
    execute(run, replica, session, "shared = 'changed on replica two'")
    assert execute(run, backend, session, "shared").logs == "'changed on replica two'\n"


def test_a_deleted_kernel_is_replaced_with_a_reset_notice(
    run: Run,
    backend: GatewaySandbox,
    replica: GatewaySandbox,
    session: str,
    database: Any,
    kernel_gateway: KernelGateway,
) -> None:
    csv = input_file("in.csv", b"1,2\n", "file-reset")
    execute(run, backend, session, "v = 1", [csv])
    old = run(sandbox_sessions.lookup(database, session))
    assert old is not None
    # the gateway culls it (as its idle culling or a gateway restart would)
    response = httpx.delete(
        f"{kernel_gateway.url}/api/kernels/{old.kernel_id}", headers={"Authorization": f"token {kernel_gateway.token}"}
    )
    assert response.status_code == 204
    result = execute(run, replica, session, "print('v' in globals(), open('in.csv').read().strip())", [csv])
    assert result.status == "ok", result.logs
    assert result.logs == "False 1,2\n"  # fresh variables; the input copied into the new kernel again
    assert result.notice is not None and result.notice.startswith("The Python session was reset because its kernel")
    new = run(sandbox_sessions.lookup(database, session))
    assert new is not None and new.kernel_id != old.kernel_id
    # the first replica follows the mapping to the new kernel, with no second notice
    execute(run, replica, session, "w = 2")
    after = execute(run, backend, session, "w")
    assert (after.logs, after.notice) == ("2\n", None)


def test_a_kernel_process_killed_between_cells_is_a_reset(run: Run, backend: GatewaySandbox, session: str) -> None:
    pid = int(execute(run, backend, session, "import os\nz = 3\nos.getpid()").logs)
    os.kill(pid, signal.SIGKILL)  # the gateway restarts the kernel under the same id

    deadline = time.monotonic() + 30
    while True:
        result = execute(run, backend, session, "'z' in globals()")
        if result.status == "ok" or time.monotonic() > deadline:
            break
    assert result.notice is not None and "reset" in result.notice, (result.status, result.logs)
    assert result.logs == "False\n"
    assert execute(run, backend, session, "'z' in globals()").notice is None


def test_a_kernel_that_dies_in_a_cell_is_a_reset_and_the_next_cell_works(
    run: Run, backend: GatewaySandbox, session: str
) -> None:
    execute(run, backend, session, "q = 1")
    died = execute(run, backend, session, "import os\nos._exit(1)")
    assert died.status == "reset"
    assert died.notice is not None and "the Python process exited" in died.notice
    after = execute(run, backend, session, "'q' in globals()")
    assert (after.status, after.logs, after.notice) == ("ok", "False\n", None)


def test_closing_a_session_deletes_its_kernel_and_its_files(
    run: Run, backend: GatewaySandbox, database: Any, data_root: Path
) -> None:
    key = "thread_closing"
    execute(run, backend, key, "open('f.txt', 'w').write('x')")
    assert (data_root / key / "f.txt").exists()
    record = run(sandbox_sessions.lookup(database, key))
    run(backend.close(key, remove_files=True))
    assert run(sandbox_sessions.lookup(database, key)) is None
    assert not (data_root / key).exists()
    assert record is not None


def test_a_wrong_token_or_no_gateway_is_unavailable_with_a_message(
    run: Run, kernel_gateway: KernelGateway, database: Any, data_root: Path
) -> None:
    config = gateway_config(kernel_gateway, data_root)
    unset = GatewaySandbox(dataclasses.replace(config, options=dataclasses.replace(config.options, url="")), database)
    assert "ASSISTD_SANDBOX_GATEWAY_URL" in (unset.unavailable() or "")
    with pytest.raises(SandboxUnavailable, match="ASSISTD_SANDBOX_GATEWAY_URL"):
        run(unset.execute("thread_unset", "1", []))

    wrong = GatewaySandbox(
        dataclasses.replace(config, options=dataclasses.replace(config.options, token="nope")), database
    )
    with pytest.raises(SandboxUnavailable, match="refused the token"):
        run(wrong.execute("thread_wrong_token", "1", []))
    run(wrong.aclose())

    down = dataclasses.replace(config.options, url=f"http://127.0.0.1:{free_port()}", connect_timeout=2)
    nowhere = GatewaySandbox(dataclasses.replace(config, options=down), database)
    with pytest.raises(SandboxUnavailable, match="could not be reached"):
        run(nowhere.execute("thread_no_gateway", "1", []))
    run(nowhere.aclose())
    assert run(sandbox_sessions.lookup(database, "thread_wrong_token")) is None


def test_an_interrupt_while_inputs_are_being_placed_stops_the_cell(
    run: Run, backend: GatewaySandbox, session: str
) -> None:
    execute(run, backend, session, "1")
    big = input_file("big.bin", b"\x00" * (3 << 20))  # placed in 1 MiB chunks before the cell is sent

    async def cancelled_early() -> tuple[Any, float]:
        started = time.monotonic()
        task = asyncio.create_task(backend.execute(session, "while True:\n    pass", [big]))
        await asyncio.sleep(0.05)
        await backend.interrupt(session)
        result = await asyncio.wait_for(task, 40)
        return result, time.monotonic() - started

    result, took = run(cancelled_early())
    assert result.status == "stopped", (result.status, result.notice)
    assert took < 15  # not the 30 s cell timeout
