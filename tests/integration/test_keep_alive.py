"""No request lost to keep-alive (issue 12 item 13).

uvicorn's default keep-alive (5 s) closed an idle connection just as a client reused it: the request
was never read. The server now keeps idle connections for ASSISTD_KEEP_ALIVE_SECONDS (75 s), longer
than clients' pools (openai-python / httpx: 5 s; Node: 4-5 s) and proxies' upstream idle timeouts
(nginx 60 s, AWS ALB 60 s), so the client side always closes first.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from openai import OpenAI

from assistd.testing.server import LiveServer


def _read_response(sock: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length (b"" when the server closed the connection)."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            return data
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return head + b"\r\n\r\n" + body


def test_an_idle_connection_is_still_usable_after_six_seconds(server: LiveServer) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        assert _read_response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(6.5)  # past uvicorn's default keep-alive (5 s), well within ours
        try:
            sock.sendall(request)
            second = _read_response(sock)
        except OSError as exc:  # reset by the server
            second = repr(exc).encode()
        assert second.startswith(b"HTTP/1.1 200"), f"the server dropped the idle connection: {second[:200]!r}"


def _raw_streamed_run(conn: http.client.HTTPConnection, assistant_id: str) -> list[str]:
    """One streamed run on a persistent connection, reused whatever its idle time (as Node's agents and
    proxies' upstream pools do: they do not check that the server still holds the connection)."""
    body = json.dumps(
        {"assistant_id": assistant_id, "thread": {"messages": [{"role": "user", "content": "hi"}]}, "stream": True}
    )
    conn.request("POST", "/v1/threads/runs", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    text = response.read().decode()
    assert response.status == 200, text
    return [line.removeprefix("event: ") for line in text.splitlines() if line.startswith("event: ")]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["openai-sdk", "persistent"])
def test_a_burst_of_streamed_runs_on_reused_connections_loses_none(server: LiveServer, kind: str) -> None:
    """200 streamed runs from 20 threads, each pausing now and then: `openai-sdk` threads share one SDK
    client (its pool keeps connections 5 s) and pause just under 5 s; `persistent` threads each keep one
    connection and pause 5.2-6 s, past uvicorn's default keep-alive. Every run must reach its end."""
    client = OpenAI(base_url=server.base_url, api_key="x", max_retries=0)  # a retry would hide a lost request
    assistant = client.beta.assistants.create(model="keepalive-burst")
    workers, per_worker = 20, 10
    pause = (4.85, 4.99) if kind == "openai-sdk" else (5.2, 6.0)
    lost: list[str] = []
    lock = threading.Lock()

    def work(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        for k in range(per_worker):
            try:
                if kind == "persistent":
                    events = _raw_streamed_run(conn, assistant.id)
                else:
                    stream = client.beta.threads.create_and_run(
                        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "hi"}]}, stream=True
                    )
                    events = [e.event for e in stream]
                if "thread.run.completed" not in events:
                    raise AssertionError(f"no thread.run.completed in {events}")
            except Exception as exc:
                conn.close()  # the next run opens a new connection
                with lock:
                    lost.append(f"{type(exc).__name__}: {exc}")
            if k % 3 == 2 and k < per_worker - 1:
                time.sleep(rng.uniform(*pause))  # the connection sits idle, then is reused
        conn.close()

    with client, ThreadPoolExecutor(workers) as pool:
        list(pool.map(work, range(workers)))
    assert not lost, f"{len(lost)} of {workers * per_worker} runs lost: {lost[:5]}"
