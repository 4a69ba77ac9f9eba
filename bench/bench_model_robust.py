"""Model robustness (issue 14): the seed programs, N times each, on the bundled model and on a scripted
imperfect upstream, through the official SDK against a live `assistd serve`.

    python bench/bench_model_robust.py [--tries 20] [--targets bundled,scripted] [--programs ...]
        [--compare-src DIR]

Programs (each try is a fresh assistant and thread):
  investor-polled    Investor Assistant: 4 function tools, `create_and_poll` + `submit_tool_outputs_and_poll`
  investor-streamed  the same with `runs.stream(event_handler=...)` + `submit_tool_outputs_stream`
  book               Book Assistant: a chapter attached to the message (file_search), two questions
  code               a code_interpreter request (needs bubblewrap and the sandbox Python)

Targets:
  bundled            the bundled SmolLM2-135M (no upstream configured)
  scripted           the scripted fake upstream playing an imperfect model, one fault per try, in turn:
                     investor: malformed JSON arguments, an unknown tool then the right one, a huge
                     tool output (300 KB), an overlong answer (20k words);
                     book: answers without citation markers (and once malformed file_search arguments);
                     code: arguments that are not JSON (the code itself), then valid ones.

The chapter is made of BEIR SciFact abstracts read in place (`--data`, default ../shared/data/beir-scifact);
nothing is copied into the repo. Counts per target and program: runs, completed, failed (with the
reasons), book answers with >= 1 file_citation when file_search returned results, and messages that
leak the internal call syntax. With --compare-src the same table is made for another source tree
(e.g. a checkout of the previous main), side by side in one run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

LEAK = re.compile(r'(?i)\bcall\s*:\s*\{|\{\s*"tool_calls"|^\s*message\s*:|【?\s*\{\s*"name"\s*:', re.MULTILINE)
PROGRAMS = ("investor-polled", "investor-streamed", "code", "book")
TARGETS = ("bundled", "scripted")
API_KEY = "sk-bench-0123456789abcdef0123456789abcdef"

FUNCTIONS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_company_ticker",
            "description": "The stock ticker symbol of a company.",
            "parameters": {
                "type": "object",
                "properties": {"company_name": {"type": "string"}},
                "required": ["company_name"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_stock_price",
            "description": "The latest price of a stock, by ticker symbol.",
            "parameters": {"type": "object", "properties": {"symbol": {"type": "string"}}, "required": ["symbol"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_company_news",
            "description": "Recent news headlines about a company, by ticker symbol.",
            "parameters": {"type": "object", "properties": {"symbol": {"type": "string"}}, "required": ["symbol"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_financial_statements",
            "description": "The latest income statement of a company, by ticker symbol.",
            "parameters": {"type": "object", "properties": {"symbol": {"type": "string"}}, "required": ["symbol"]},
        },
    },
]
INVESTOR = "You are an investor assistant. Use the functions to answer questions about stocks."
INVESTOR_ASK = "What is the ticker of Apple, and what is its stock price today?"
BOOK_INSTRUCTIONS = "You are a helpful assistant that answers questions about the attached chapter."
CODE_ASK = "Use code to compute the sum of the squares of the integers from 1 to 100."


@dataclass
class Tally:
    runs: int = 0
    completed: int = 0
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    searched: int = 0  # book answers whose run's file_search returned results
    cited: int = 0  # of those, answers with >= 1 file_citation
    leaks: int = 0
    leaked: list[str] = field(default_factory=list)  # the first few leaking texts, to read
    seconds: float = 0.0

    def row(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "completed": self.completed,
            "failures": dict(self.failures),
            "searched": self.searched,
            "cited": self.cited,
            "leaks": self.leaks,
            "leaked": self.leaked[:5],
            "seconds": round(self.seconds, 1),
        }


# --- the chapter ---------------------------------------------------------------------------------


def chapter(data: Path, seed: int = 7) -> tuple[str, list[str]]:
    """A chapter of 30 SciFact abstracts, and two questions answered by it (the titles of two of them)."""
    docs = []
    with open(data / "corpus.jsonl", encoding="utf-8") as corpus:
        for n, line in enumerate(corpus):
            if n >= 600:
                break
            doc = json.loads(line)
            if 400 < len(doc["text"]) < 1600:
                docs.append(doc)
    chosen = random.Random(seed).sample(docs, 30)
    text = "\n\n".join(f"{d['title']}\n\n{d['text']}" for d in chosen)
    questions = [f"What does the chapter say about this: {d['title'].rstrip('.')}?" for d in chosen[:2]]
    return text, questions


def supporting_answer(text: str, question: str) -> str:
    """What a model that read the results but cites nothing says: two sentences of the chapter, and one of its own."""
    title = question.split(": ", 1)[1].rstrip("?")
    start = text.find(title)
    parts = text[start:].split("\n\n", 2) if start >= 0 else []
    body = parts[1] if len(parts) > 1 else text  # the abstract under the title
    sentences = re.split(r"(?<=[.!?])\s+", body)
    return " ".join(sentences[:2]) + " I hope this helps with your question."


# --- the imperfect upstream's scripts ----------------------------------------------------------------


def investor_script(fake: Any, model: str, attempt: int) -> str:
    """Script one investor run; returns the fault's name."""
    from assistd.testing.fake_upstream import Reply

    fault = ("malformed_json", "unknown_tool", "huge_output", "overlong")[attempt % 4]
    done = Reply.say("Apple's ticker is AAPL and it trades at 190.12 USD.")
    if fault == "malformed_json":
        fake.script(
            model,
            Reply.call("get_company_ticker", '{"company_name": "Apple"'),
            Reply.call("get_stock_price", "{symbol: 'AAPL',}"),
            done,
        )
    elif fault == "unknown_tool":
        fake.script(
            model,
            Reply.call("get_stock", {"symbol": "AAPL"}),
            Reply.call("get_stock_price", {"symbol": "AAPL"}),
            done,
        )
    elif fault == "huge_output":
        fake.script(model, Reply.call("get_company_news", {"symbol": "AAPL"}), done)
    else:
        fake.script(model, Reply.say("Apple trades as AAPL. " + "The price moves every day. " * 4000))
    return fault


def book_script(fake: Any, model: str, attempt: int, text: str, question: str, first: bool) -> str:
    from assistd.testing.fake_upstream import Reply

    args: dict[str, Any] | str = {"queries": [question.split(": ", 1)[1]]}
    fault = "no_markers"
    if first and attempt % 2:
        args, fault = '{"queries": ["' + question.split(": ", 1)[1][:60] + '"', "malformed_json+no_markers"
    fake.script(model, Reply.call("file_search", args), Reply.say(supporting_answer(text, question)))
    return fault


def code_script(fake: Any, model: str, attempt: int) -> str:
    from assistd.testing.fake_upstream import Reply

    code = "print(sum(i * i for i in range(1, 101)))"
    if attempt % 2:
        fake.script(
            model,
            Reply.call("code_interpreter", code),
            Reply.call("code_interpreter", {"code": code}),
            Reply.say("338350"),
        )
        return "not_json"
    fake.script(model, Reply.call("code_interpreter", {"code": code}), Reply.say("The sum is 338350."))
    return "none"


# --- the programs -------------------------------------------------------------------------------------


def function_output(name: str, arguments: str, huge: bool) -> str:
    """The client's side of the Investor Assistant; a call whose arguments are not JSON is our failure.
    `huge`: the news are 6,000 headlines (300 KB, the scripted target's "huge tool output"), else 5."""
    args = json.loads(arguments or "{}")
    if not isinstance(args, dict):
        raise ValueError(f"arguments are not an object: {arguments!r}")
    if name == "get_company_news":
        count = 6000 if huge else 5
        return json.dumps({"headlines": [f"Headline {i} about {args.get('symbol', '?')}" for i in range(count)]})
    return json.dumps({"get_company_ticker": "AAPL", "get_stock_price": 190.12}.get(name, {"revenue": 383e9}))


def message_texts(client: Any, thread_id: str, run_id: str) -> list[Any]:
    return list(client.beta.threads.messages.list(thread_id, run_id=run_id, order="asc"))


def check_messages(client: Any, thread_id: str, run_id: str, tally: Tally) -> list[Any]:
    messages = message_texts(client, thread_id, run_id)
    for message in messages:
        for part in message.content:
            if part.type == "text" and LEAK.search(part.text.value):
                tally.leaks += 1
                tally.leaked.append(part.text.value[:200])
    return messages


def outcome(run: Any, tally: Tally, fault: str) -> None:
    tally.runs += 1
    if run.status == "completed":
        tally.completed += 1
        return
    error = run.last_error.message if run.last_error else (run.incomplete_details or "")
    tally.failures[f"{fault}: {run.status}: {str(error)[:90]}"] += 1


def investor_polled(client: Any, model: str, tally: Tally, fault: str) -> None:
    assistant = client.beta.assistants.create(model=model, instructions=INVESTOR, tools=FUNCTIONS)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": INVESTOR_ASK}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    for _ in range(8):
        if run.status != "requires_action":
            break
        outputs = []
        for call in run.required_action.submit_tool_outputs.tool_calls:
            try:
                outputs.append(
                    {
                        "tool_call_id": call.id,
                        "output": function_output(call.function.name, call.function.arguments, fault == "huge_output"),
                    }
                )
            except ValueError as exc:
                tally.failures[f"{fault}: arguments the client cannot read: {str(exc)[:60]}"] += 1
                outputs.append({"tool_call_id": call.id, "output": "error"})
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id, thread_id=thread.id, tool_outputs=outputs, poll_interval_ms=50
        )
    check_messages(client, thread.id, run.id, tally)
    outcome(run, tally, fault)


def investor_streamed(client: Any, model: str, tally: Tally, fault: str) -> None:
    from openai import AssistantEventHandler

    assistant = client.beta.assistants.create(model=model, instructions=INVESTOR, tools=FUNCTIONS)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": INVESTOR_ASK}])
    seen: list[str] = []

    class Handler(AssistantEventHandler):
        def on_event(self, event: Any) -> None:
            if event.event in ("thread.run.requires_action", "thread.run.completed", "thread.run.failed"):
                seen.append(event.data.id)
            if event.event == "thread.run.requires_action" and len(seen) < 16:
                outputs = []
                for call in event.data.required_action.submit_tool_outputs.tool_calls:
                    try:
                        output = function_output(call.function.name, call.function.arguments, fault == "huge_output")
                    except ValueError as exc:
                        tally.failures[f"{fault}: arguments the client cannot read: {str(exc)[:60]}"] += 1
                        output = "error"
                    outputs.append({"tool_call_id": call.id, "output": output})
                with client.beta.threads.runs.submit_tool_outputs_stream(
                    thread_id=thread.id, run_id=event.data.id, tool_outputs=outputs, event_handler=Handler()
                ) as stream:
                    stream.until_done()

    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=Handler()) as s:
        s.until_done()
    run = client.beta.threads.runs.list(thread.id, limit=1).data[0]
    check_messages(client, thread.id, run.id, tally)
    outcome(run, tally, fault)


def book(
    client: Any,
    model: str,
    tally: Tally,
    script: Callable[[int], str],
    text: str,
    questions: list[str],
    *,
    script_models: bool,
) -> None:
    upload = client.files.create(file=("chapter.txt", text.encode()), purpose="assistants")
    assistant = client.beta.assistants.create(
        model=model, instructions=BOOK_INSTRUCTIONS, tools=[{"type": "file_search"}]
    )
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": questions[0],
                "attachments": [{"file_id": upload.id, "tools": [{"type": "file_search"}]}],
            }
        ]
    )
    for n in range(len(questions)):
        fault = script(n)  # scripted just before its run: a failed run's unused replies go with its model name
        if n:
            client.beta.threads.messages.create(thread.id, role="user", content=questions[n])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id,
            assistant_id=assistant.id,
            model=f"{model}-{n}" if script_models else model,
            poll_interval_ms=50,
        )
        messages = check_messages(client, thread.id, run.id, tally)
        outcome(run, tally, fault)
        if run.status != "completed":
            continue
        steps = client.beta.threads.runs.steps.list(
            run.id, thread_id=thread.id, include=["step_details.tool_calls[*].file_search.results[*].content"]
        )
        results = sum(
            len(call.file_search.results or [])
            for step in steps
            if step.step_details.type == "tool_calls"
            for call in step.step_details.tool_calls
            if call.type == "file_search"
        )
        if results:
            tally.searched += 1
            notes = [a for m in messages for p in m.content if p.type == "text" for a in p.text.annotations]
            tally.cited += any(a.type == "file_citation" for a in notes)


def code(client: Any, model: str, tally: Tally, fault: str) -> None:
    assistant = client.beta.assistants.create(
        model=model, instructions="You write and run Python to answer.", tools=[{"type": "code_interpreter"}]
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": CODE_ASK}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    check_messages(client, thread.id, run.id, tally)
    outcome(run, tally, fault)


# --- one tree, one target --------------------------------------------------------------------------


def run_target(target: str, programs: list[str], tries: int, data: Path) -> dict[str, dict[str, Any]]:
    import openai

    from assistd.testing.fake_upstream import FakeUpstream
    from assistd.testing.server import LiveServer

    text, questions = chapter(data)
    env = {"ASSISTD_API_KEYS": API_KEY, "ASSISTD_LOG_REQUESTS": "false", "ASSISTD_RUN_EXPIRES_SECONDS": "300"}
    sandbox = Path.home() / ".cache" / "assistd-tests" / "sandbox-python"
    if sandbox.exists():
        env["ASSISTD_SANDBOX_PYTHON"] = str(sandbox)
    fake = FakeUpstream().start() if target == "scripted" else None
    if fake is not None:
        env.update({"ASSISTD_UPSTREAM_BASE_URL": fake.base_url, "ASSISTD_LOCAL_ENABLED": "false"})
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp, LiveServer(Path(tmp), env=env) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0, timeout=600)
        for program in programs:
            tally = Tally()
            started = time.perf_counter()
            for attempt in range(tries):
                model = f"gpt-4-turbo-{program}-{attempt}" if fake else "gpt-4-turbo"
                try:
                    if program.startswith("investor"):
                        fault = investor_script(fake, model, attempt) if fake else "none"
                        play: Callable[..., None] = (
                            investor_polled if program == "investor-polled" else investor_streamed
                        )
                        play(client, model, tally, fault)
                    elif program == "book":

                        def script(n: int, model: str = model, attempt: int = attempt) -> str:
                            if fake is None:
                                return "none"
                            return book_script(fake, f"{model}-{n}", attempt, text, questions[n], n == 0)

                        book(client, model, tally, script, text, questions, script_models=fake is not None)
                    else:
                        code(client, model, tally, code_script(fake, model, attempt) if fake else "none")
                except openai.APIError as exc:
                    tally.runs += 1
                    tally.failures[f"API error: {str(exc)[:90]}"] += 1
            tally.seconds = time.perf_counter() - started
            rows[program] = tally.row()
            print(f"  {target} {program}: {json.dumps(rows[program])}", file=sys.stderr)
    if fake is not None:
        fake.stop()
    return rows


def table(results: dict[str, dict[str, dict[str, dict[str, Any]]]]) -> str:
    lines = [
        "| tree | target | program | runs | completed | failed | cited / searched | leaks | s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    reasons = []
    for tree, targets in results.items():
        for target, programs in targets.items():
            for program, r in programs.items():
                cited = f"{r['cited']}/{r['searched']}" if program == "book" else "-"
                failed = r["runs"] - r["completed"]
                lines.append(
                    f"| {tree} | {target} | {program} | {r['runs']} | {r['completed']} | {failed} | {cited} | "
                    f"{r['leaks']} | {r['seconds']} |"
                )
                reasons += [f"- {tree} {target} {program}: {n}x {why}" for why, n in r["failures"].items()]
                reasons += [f"- {tree} {target} {program}: leaked: {text!r}" for text in r.get("leaked", [])]
    return "\n".join(lines + ([""] + reasons if reasons else []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--programs", default=",".join(PROGRAMS))
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "beir-scifact")
    parser.add_argument("--compare-src", type=Path, help="another source tree (its src/) to run the same table on")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one target in this tree, print JSON
    args = parser.parse_args()
    programs = [p for p in args.programs.split(",") if p]
    if args.one:
        print(json.dumps(run_target(args.one, programs, args.tries, args.data)))
        return
    trees = {"this": ROOT / "src"}
    if args.compare_src:
        trees = {"base": args.compare_src.resolve() / "src", **trees}
    results: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for tree, src in trees.items():
        results[tree] = {}
        for target in [t for t in args.targets.split(",") if t]:
            env = {**os.environ, "PYTHONPATH": str(src)}
            cmd = [sys.executable, __file__, "--one", target, "--tries", str(args.tries), "--programs", args.programs]
            cmd += ["--data", str(args.data)]
            done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, check=True)
            results[tree][target] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    print(f"## assistd model robustness ({git.stdout.strip()}, {args.tries} tries, {os.cpu_count()} CPUs)\n")
    print(table(results))


if __name__ == "__main__":
    main()
