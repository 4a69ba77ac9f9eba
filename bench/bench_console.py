"""Web console benchmark: first render of the thread viewer on a 1,000-message thread.

    python bench/bench_console.py [--backends sqlite,postgres] [--loads 9] [--messages 1000]
                                  [--baseline bench/results/OLD.json]

Needs the system Chromium (/usr/bin/chromium) and the `playwright` package (the `test` extra).
For each backend it starts a real `assistd serve` (assistd.testing.server.LiveServer) routed to the
scripted fake upstream, seeds one thread with `--messages` messages through the API, then loads
`/#/threads/{id}` `--loads` times, each in a fresh browser context (cold page: HTML, scripts and
API calls all fetched again), and reports the median, min and max of:

  page loaded        ms from navigation start to DOMContentLoaded (HTML, CSS, the modules parsed)
  messages visible   ms from navigation start until the newest page of messages is in the DOM
                     (the viewer records performance.now() when it sets body[data-thread-ready])
  viewer render      ms from the viewer's route starting to that point (its API calls + DOM)
  load older         ms for one "Load older messages" click: fetch and prepend the next 50
  render all (ref)   ms to fetch all messages (pages of 100) and render them with the same code,
                     for comparison: what showing the whole thread at once would cost

Prints markdown and writes JSON to bench/results/ (gitignored).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    add_backends_arg,
    add_output_args,
    database_urls,
    fmt,
    load_baseline,
    machine,
    parse_backends,
    result_head,
    settings,
    versions,
    warn_if_loaded,
    write_result,
)

from assistd.testing.fake_upstream import FakeUpstream  # noqa: E402
from assistd.testing.server import LiveServer  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
METRICS = ["page loaded", "messages visible", "viewer render", "load older", "render all (ref)"]

LOAD_OLDER_JS = """async () => {
  const box = document.getElementById('thread-messages');
  const before = box.children.length;
  const t0 = performance.now();
  document.getElementById('load-older').click();
  while (box.children.length === before) await new Promise(requestAnimationFrame);
  return performance.now() - t0;
}"""

RENDER_ALL_JS = """async (threadId) => {
  const { renderMessage } = await import('/console/js/render.js');
  const t0 = performance.now();
  const all = [];
  let after = null;
  for (;;) {
    const q = new URLSearchParams({limit: '100', order: 'desc'});
    if (after) q.set('after', after);
    const page = await (await fetch(`/v1/threads/${threadId}/messages?${q}`)).json();
    all.push(...page.data);
    if (!page.has_more) break;
    after = page.last_id;
  }
  const box = document.createElement('div');
  for (const m of all.reverse()) box.append(renderMessage(m));
  document.getElementById('main').append(box);
  await new Promise(requestAnimationFrame);
  const elapsed = performance.now() - t0;
  box.remove();
  return [elapsed, all.length];
}"""


def seed(server: LiveServer, count: int) -> str:
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"Message {i}: " + "lorem ipsum dolor " * 8}
        for i in range(count)
    ]
    with httpx.Client(base_url=server.url, timeout=120) as c:
        r = c.post("/v1/threads", json={"messages": messages})
        r.raise_for_status()
        return str(r.json()["id"])


def measure(browser: Any, server: LiveServer, thread_id: str, loads: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {m: [] for m in METRICS}
    for i in range(loads + 1):  # the first load warms the server's caches and is not counted
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(f"{server.url}/#/threads/{thread_id}")
        page.wait_for_selector(f"body[data-thread-ready='{thread_id}']", timeout=60_000)
        timings = page.evaluate("() => window.__assistdTimings")
        loaded = page.evaluate("() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
        shown = page.eval_on_selector_all("#thread-messages .msg", "els => els.length")
        older = page.evaluate(LOAD_OLDER_JS)
        render_all, total = page.evaluate(RENDER_ALL_JS, thread_id)
        context.close()
        if i == 0:
            print(f"  {shown} messages on first render of {total}", file=sys.stderr)
            continue
        samples["page loaded"].append(loaded)
        samples["messages visible"].append(timings["threadMessagesVisible"])
        samples["viewer render"].append(timings["threadRender"])
        samples["load older"].append(older)
        samples["render all (ref)"].append(render_all)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_backends_arg(parser, "sqlite")
    parser.add_argument("--loads", type=int, default=9, help="measured page loads per backend")
    parser.add_argument("--messages", type=int, default=1000, help="messages in the thread")
    add_output_args(parser, "console")
    args = parser.parse_args()
    parse_backends(parser, args)
    baseline = load_baseline(args.baseline)
    from playwright.sync_api import sync_playwright

    started = time.time()
    load_before = machine([])["loadavg_after"]
    warn_if_loaded("bench_console.py", load_before)
    results: dict[str, dict[str, list[float]]] = {}
    with FakeUpstream() as fake, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for backend in args.backends:
            with database_urls(backend, 1) as (url,), tempfile.TemporaryDirectory() as data_dir:
                env = {
                    "ASSISTD_UPSTREAM_BASE_URL": fake.base_url,
                    "ASSISTD_LOCAL_ENABLED": "false",
                    "ASSISTD_LOG_REQUESTS": "false",
                }
                with LiveServer(Path(data_dir), database_url=url, env=env) as server:
                    print(f"{backend}: seeding {args.messages} messages", file=sys.stderr)
                    thread_id = seed(server, args.messages)
                    results[backend] = measure(browser, server, thread_id, args.loads)
        browser.close()

    result = result_head("console", started, machine(load_before), versions(["playwright", "starlette"]))
    result["settings"] = settings(args)
    result["samples"] = results
    print(f"\n## Console: thread viewer on a {args.messages}-message thread ({args.loads} cold loads, ms)\n")
    print("| backend | metric | median | min | max |" + (" baseline median |" if baseline else ""))
    print("| --- | --- | ---: | ---: | ---: |" + (" ---: |" if baseline else ""))
    for backend, samples in results.items():
        for metric in METRICS:
            values = samples[metric]
            row = (
                f"| {backend} | {metric} | {fmt(statistics.median(values), 1)} | {fmt(min(values), 1)} | "
                f"{fmt(max(values), 1)} |"
            )
            if baseline:
                old = baseline.get("samples", {}).get(backend, {}).get(metric)
                row += f" {fmt(statistics.median(old), 1) if old else '—'} |"
            print(row)
    print(f"\nresults: {write_result(result, args.output, started)}")


if __name__ == "__main__":
    main()
