"""A scripted, deterministic OpenAI-compatible upstream (`/v1/chat/completions`) for tests and benchmarks.

It is a fake, not a mock: a real HTTP server speaking the chat-completions protocol, streaming and
not. Each model name has a queue of scripted replies; with an empty queue it answers a fixed text.

    with FakeUpstream() as fake:
        fake.script("gpt-4o", Reply.call("get_weather", {"city": "Paris"}), Reply.say("It is sunny."))
        # point assistd at fake.base_url ...
        fake.requests("gpt-4o")  # the chat requests it received, as JSON

Also runnable on its own (`python -m assistd.testing.fake_upstream --port 9000`) and scriptable
over HTTP: POST /_fake/script {"model": ..., "replies": [...]}, GET /_fake/requests, POST /_fake/reset.
Replies can also misbehave as real upstreams do: HTTP errors with Retry-After, hangs, and broken
200 responses (`Reply.fault`: a stream without finish_reason, an empty stream, a non-JSON body,
a connection dropped mid-body).

A model can be given a context window counted in the fake's own tokens (`fake.limit_context(model,
window)`: one token per `CHARS_PER_TOKEN` characters of each message, plus `MESSAGE_OVERHEAD`; more
than cl100k counts for English): a request over it is refused with vLLM's HTTP 400 "maximum context
length" error, and its usage reports prompt tokens in that count. `POST /tokenize` counts a text
(`prompt` or `content`) the same way, as vLLM's and llama.cpp's servers do.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from assistd import jsonio

DEFAULT_TEXT = "Hello from the fake upstream."
CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 5
_WORD = re.compile(r"\s*\S+\s*|\s+")


@dataclass
class Reply:
    text: str | None = None
    tool_calls: list[dict[str, Any]] | None = None  # [{"name": str, "arguments": dict | str}]
    status: int = 200
    error_message: str = "scripted failure"
    delay: float = 0.0  # seconds before the response starts
    interval: float = 0.0  # seconds between streamed chunks
    finish_reason: str | None = None
    hang: bool = False  # never answer (until the client gives up)
    usage: dict[str, Any] | None = None  # the whole usage object; else counted (with the details below)
    cached_tokens: int | None = None  # usage.prompt_tokens_details.cached_tokens
    reasoning_tokens: int | None = None  # usage.completion_tokens_details.reasoning_tokens
    retry_after: str | None = None  # a failure's `Retry-After` header (seconds or an HTTP date)
    retry_after_ms: str | None = None  # a failure's `retry-after-ms` header
    # A broken upstream (streamed requests), on an HTTP 200:
    #   "no_finish"    every delta, then the body ends: no finish_reason, no usage, no [DONE]
    #   "empty_stream" an event stream with no events at all
    #   "not_json"     an HTML page instead of an event stream
    #   "bad_event"    the role delta, then an event whose data is not JSON
    #   "cut_after"    the role delta and `cut_after` content deltas, then the connection drops mid-body
    fault: Literal["no_finish", "empty_stream", "not_json", "bad_event", "cut_after"] | None = None
    cut_after: int = 0

    @classmethod
    def say(cls, text: str, **kw: Any) -> Reply:
        return cls(text=text, **kw)

    @classmethod
    def call(cls, name: str, arguments: dict[str, Any] | str, **kw: Any) -> Reply:
        return cls(tool_calls=[{"name": name, "arguments": arguments}], **kw)

    @classmethod
    def calls(cls, *calls: tuple[str, dict[str, Any] | str], **kw: Any) -> Reply:
        return cls(tool_calls=[{"name": n, "arguments": a} for n, a in calls], **kw)

    @classmethod
    def fail(cls, status: int = 500, message: str = "scripted failure", **kw: Any) -> Reply:
        return cls(status=status, error_message=message, **kw)


@dataclass
class _State:
    scripts: dict[str, collections.deque[Reply]] = field(
        default_factory=lambda: collections.defaultdict(collections.deque)
    )
    requests: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # when each request arrived (time.time())
    windows: dict[str, int] = field(default_factory=dict)  # model → context window, in the fake's tokens
    tokenized: int = 0  # POST /tokenize requests served
    tokenize_status: int = 200  # what /tokenize answers (another status: it fails)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self, model: str) -> Reply:
        with self.lock:
            for key in (model, "*"):
                queue = self.scripts.get(key)
                if queue:
                    return queue.popleft()
        return Reply(text=DEFAULT_TEXT)


def _words(text: str) -> list[str]:
    return _WORD.findall(text) or [text]


def _prompt_tokens(body: dict[str, Any]) -> int:
    total = 0
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            total += len(content.split()) + 4
        elif isinstance(content, list):
            total += sum(len(str(p.get("text", "")).split()) for p in content if isinstance(p, dict)) + 4
        for call in message.get("tool_calls") or []:
            total += len(str(call.get("function", {}).get("arguments", "")).split()) + 4
    return total


def text_tokens(text: str) -> int:
    """The fake tokenizer's count of a text: one token per CHARS_PER_TOKEN characters."""
    return -(-len(text) // CHARS_PER_TOKEN)


def own_prompt_tokens(body: dict[str, Any]) -> int:
    """A chat request's prompt in the fake tokenizer: each message's texts and its framing, the tools."""
    total = text_tokens(orjson.dumps(body["tools"]).decode()) if body.get("tools") else 0
    for message in body.get("messages", []):
        total += MESSAGE_OVERHEAD
        content = message.get("content")
        if isinstance(content, str):
            total += text_tokens(content)
        elif isinstance(content, list):
            total += sum(text_tokens(str(p.get("text", ""))) for p in content if isinstance(p, dict))
        for call in message.get("tool_calls") or []:
            total += text_tokens(orjson.dumps(call.get("function", {})).decode())
    return total


def _over_context(body: dict[str, Any], window: int) -> Response | None:
    """vLLM's answer to a request over the model's context window (prompt plus the answer's max_tokens)."""
    prompt = own_prompt_tokens(body)
    completion = body.get("max_tokens") or body.get("max_completion_tokens") or 0
    if prompt + completion <= window:
        return None
    message = (
        f"This model's maximum context length is {window} tokens. However, you requested {prompt + completion} "
        f"tokens ({prompt} in the messages, {completion} in the completion). Please reduce the length of the "
        "messages or completion."
    )
    error = {"object": "error", "message": message, "type": "BadRequestError", "param": None, "code": 400}
    return JSONResponse(error, status_code=400)


def _arguments(value: dict[str, Any] | str) -> str:
    return value if isinstance(value, str) else jsonio.dumps(value).decode()


def _chunks(reply: Reply, body: dict[str, Any], own_tokens: bool = False) -> list[dict[str, Any]]:
    """The streamed `choices[0].delta`s and the closing chunk, as chat.completion.chunk payloads."""
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    completion = 0
    if reply.text:
        for word in _words(reply.text):
            deltas.append({"content": word})
            completion += 1
    for index, call in enumerate(reply.tool_calls or []):
        call_id = f"call_{uuid.uuid4().hex[:24]}"
        deltas.append(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": call["name"], "arguments": ""},
                    }
                ]
            }
        )
        args = _arguments(call["arguments"])
        for i in range(0, len(args), 8):  # arguments arrive in fragments, as from real backends
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": args[i : i + 8]}}]})
            completion += 1
    finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
    prompt_tokens = own_prompt_tokens(body) if own_tokens else _prompt_tokens(body)
    usage: dict[str, Any] = (
        dict(reply.usage)
        if reply.usage
        else {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        }
    )
    if reply.cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": reply.cached_tokens}
    if reply.reasoning_tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reply.reasoning_tokens}
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
    if max_tokens is not None and reply.text and completion > max_tokens and not reply.finish_reason:
        kept = 1 + max_tokens
        deltas = deltas[:kept]
        finish = "length"
        usage = {**usage, "completion_tokens": max_tokens, "total_tokens": usage["prompt_tokens"] + max_tokens}
    return [{"delta": d} for d in deltas] + [{"delta": {}, "finish_reason": finish, "usage": usage}]


def _payload(body: dict[str, Any], completion_id: str, part: dict[str, Any], created: int) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": body.get("model", ""),
        "choices": [{"index": 0, "delta": part["delta"], "finish_reason": part.get("finish_reason")}],
    }
    return payload


def create_app(state: _State | None = None) -> Starlette:
    state = state or _State()

    async def completions(request: Request) -> Response:
        body = json.loads(await request.body())  # exact, however big the integers (orjson: floats)
        with state.lock:
            state.requests.append(body)
            state.times.append(time.time())
        window = state.windows.get(str(body.get("model", "")))
        refused = _over_context(body, window) if window is not None else None
        if refused is not None:
            return refused
        reply = state.next_reply(str(body.get("model", "")))
        if reply.hang:
            await asyncio.sleep(3600)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200:
            error = {"error": {"message": reply.error_message, "type": "server_error", "param": None, "code": None}}
            headers = {}
            if reply.retry_after is not None:
                headers["retry-after"] = reply.retry_after
            if reply.retry_after_ms is not None:
                headers["retry-after-ms"] = reply.retry_after_ms
            return JSONResponse(error, status_code=reply.status, headers=headers)
        if reply.fault == "not_json":
            return Response(b"<html><body><h1>502 Bad Gateway</h1></body></html>", media_type="text/html")
        parts = _chunks(reply, body, own_tokens=window is not None)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if not body.get("stream"):
            return JSONResponse(_complete(body, parts, completion_id, created))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if reply.fault == "empty_stream":
            return Response(b"", media_type="text/event-stream")
        if reply.fault == "cut_after":
            kept = parts[: 1 + reply.cut_after]
            return _CutResponse(
                [b"data: " + orjson.dumps(_payload(body, completion_id, p, created)) + b"\n\n" for p in kept]
            )
        if reply.fault == "bad_event":
            first = b"data: " + orjson.dumps(_payload(body, completion_id, parts[0], created)) + b"\n\n"
            return Response(first + b"data: <html>upstream error</html>\n\n", media_type="text/event-stream")
        if reply.fault == "no_finish":
            parts = parts[:-1]
            include_usage = False

        async def events() -> AsyncIterator[bytes]:
            for i, part in enumerate(parts):
                if i and reply.interval:
                    await asyncio.sleep(reply.interval)
                yield b"data: " + orjson.dumps(_payload(body, completion_id, part, created)) + b"\n\n"
            if include_usage:
                usage_chunk = {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": body.get("model", ""),
                    "choices": [],
                    "usage": parts[-1]["usage"],
                }
                yield b"data: " + orjson.dumps(usage_chunk) + b"\n\n"
            if reply.fault != "no_finish":
                yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def tokenize(request: Request) -> Response:
        body = orjson.loads(await request.body())
        with state.lock:
            state.tokenized += 1
            status = state.tokenize_status
        if status != 200:
            return JSONResponse({"error": "tokenize is down"}, status_code=status)
        text = body.get("prompt", body.get("content", ""))
        count = text_tokens(str(text))
        return JSONResponse({"count": count, "tokens": list(range(count)), "max_model_len": None})

    async def context(request: Request) -> Response:
        body = orjson.loads(await request.body())
        with state.lock:
            state.windows[str(body["model"])] = int(body["window"])
        return JSONResponse({"ok": True})

    async def script(request: Request) -> Response:
        body = orjson.loads(await request.body())
        with state.lock:
            state.scripts[body.get("model", "*")].extend(Reply(**r) for r in body.get("replies", []))
        return JSONResponse({"ok": True})

    async def requests(request: Request) -> Response:
        with state.lock:
            return JSONResponse(list(state.requests))

    async def reset(request: Request) -> Response:
        with state.lock:
            state.scripts.clear()
            state.requests.clear()
            state.times.clear()
            state.windows.clear()
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/tokenize", tokenize, methods=["POST"]),
            Route("/_fake/context", context, methods=["POST"]),
            Route("/_fake/script", script, methods=["POST"]),
            Route("/_fake/requests", requests, methods=["GET"]),
            Route("/_fake/reset", reset, methods=["POST"]),
        ]
    )
    app.state.fake = state
    return app


class _CutResponse(Response):
    """An event stream whose connection drops mid-body: the chunked body is never terminated."""

    def __init__(self, events: list[bytes]) -> None:
        super().__init__(media_type="text/event-stream")
        self.events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]  # no length: chunked
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for event in self.events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        # Returning without the final body message: the server closes the connection, the body cut short.


def _complete(body: dict[str, Any], parts: list[dict[str, Any]], completion_id: str, created: int) -> dict[str, Any]:
    text = "".join(p["delta"].get("content") or "" for p in parts)
    calls: dict[int, dict[str, Any]] = {}
    for part in parts:
        for call in part["delta"].get("tool_calls") or []:
            slot = calls.setdefault(
                call["index"], {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
            )
            slot["id"] = call.get("id") or slot["id"]
            fn = call.get("function") or {}
            slot["function"]["name"] += fn.get("name") or ""
            slot["function"]["arguments"] += fn.get("arguments") or ""
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": body.get("model", ""),
        "choices": [{"index": 0, "message": message, "finish_reason": parts[-1]["finish_reason"]}],
        "usage": parts[-1]["usage"],
    }


class FakeUpstream:
    """Runs the fake in a background thread of this process, on a free loopback port."""

    def __init__(self, port: int | None = None) -> None:
        from assistd.testing.server import free_port

        self.port = port or free_port()
        self.state = _State()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeUpstream:
        import uvicorn

        config = uvicorn.Config(
            create_app(self.state),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-upstream", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake upstream did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def script(self, model: str, *replies: Reply) -> None:
        with self.state.lock:
            self.state.scripts[model].extend(replies)

    def limit_context(self, model: str, window: int) -> None:
        """Refuse `model`'s requests over `window` tokens of the fake tokenizer, as vLLM does (HTTP 400)."""
        with self.state.lock:
            self.state.windows[model] = window

    def requests(self, model: str | None = None) -> list[dict[str, Any]]:
        with self.state.lock:
            return [r for r in self.state.requests if model is None or r.get("model") == model]

    def request_times(self, model: str | None = None) -> list[float]:
        """When each request (for `model`) arrived, as Unix times."""
        with self.state.lock:
            pairs = zip(self.state.requests, self.state.times, strict=True)
            return [at for r, at in pairs if model is None or r.get("model") == model]

    def reset(self) -> None:
        with self.state.lock:
            self.state.scripts.clear()
            self.state.requests.clear()
            self.state.times.clear()
            self.state.windows.clear()

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="assistd's scripted fake OpenAI-compatible upstream")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
