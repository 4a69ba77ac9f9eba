"""A round-robin TCP proxy in front of several replicas, for tests and benchmarks.

Each accepted connection goes to the next backend in turn; bytes are copied both ways as they arrive,
so a streamed (SSE) response passes through unbuffered. Balancing is per connection, as a plain L4
load balancer does: a client that wants every request to reach the next replica asks for a fresh
connection per request (sends `CLOSE_CONNECTION`). A backend that refuses the connection (stopped,
killed) is skipped for the next one, as a health-checking balancer would.

    with RoundRobinProxy([("127.0.0.1", 8001), ("127.0.0.1", 8002)]) as proxy:
        OpenAI(base_url=proxy.base_url, default_headers=CLOSE_CONNECTION)
        proxy.served  # connections each backend received
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from types import TracebackType

from assistd.testing.server import free_port

CHUNK = 64 * 1024


class RoundRobinProxy:
    def __init__(self, backends: Sequence[tuple[str, int]], port: int | None = None) -> None:
        if not backends:
            raise ValueError("a proxy needs at least one backend")
        self.backends = list(backends)
        self.port = port or free_port()
        self.served = [0] * len(self.backends)  # connections handed to each backend
        self._next = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def _pick(self) -> int:
        with self._lock:
            index = self._next
            self._next = (self._next + 1) % len(self.backends)
            return index

    async def _connect(self) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
        first = self._pick()
        last: OSError | None = None
        for offset in range(len(self.backends)):
            index = (first + offset) % len(self.backends)
            host, port = self.backends[index]
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError as exc:
                last = exc
                continue
            with self._lock:
                self.served[index] += 1
            return index, reader, writer
        raise ConnectionError(f"no backend accepted the connection: {last}")

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                if writer.can_write_eof():
                    writer.write_eof()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        try:
            await self._relay(client_reader, client_writer)
        finally:
            self._tasks.discard(task)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            _, upstream_reader, upstream_writer = await self._connect()
        except ConnectionError:
            client_writer.close()
            return
        upload = asyncio.create_task(self._pipe(client_reader, upstream_writer))
        self._tasks.add(upload)
        try:
            # The connection is over when the backend's side ends (response sent, or the backend died);
            # the client's side may end earlier (a half-close) without ending the response.
            await self._pipe(upstream_reader, client_writer)
        finally:
            upload.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await upload
            self._tasks.discard(upload)
            upstream_writer.close()
            client_writer.close()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        except BaseException as exc:  # reported to start()
            self._startup_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    def start(self) -> RoundRobinProxy:
        self._thread = threading.Thread(target=self._run, name=f"proxy-{self.port}", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._startup_error is not None:
            raise RuntimeError(f"the proxy could not listen on {self.port}") from self._startup_error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> RoundRobinProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# Sent by a client that wants each request on a connection of its own (so through the proxy, on the
# next replica): the server closes the connection after its response, and the client opens a new one.
# A header rather than an HTTP client of the proxy's making works with any openai SDK version.
CLOSE_CONNECTION = {"Connection": "close"}
