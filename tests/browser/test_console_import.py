"""The console and imported data (issue 17 item 5): an OpenAI export imported with `assistd import`
shows under Threads like any other thread, messages in their original order and runs with their steps;
the Import page says how to import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from assistd.testing.server import LiveServer

sys.path.insert(0, str(Path(__file__).parents[1] / "migrate"))
from exportdata import T0, Ids, assistant, rich_thread, write_export  # noqa: E402


def test_imported_thread_shows_like_any_other(
    page: Any, server: LiveServer, http: httpx.Client, tmp_path: Path, shot: Any
) -> None:
    new = Ids(31)
    asst = assistant(new, T0)
    record = rich_thread(new, asst, T0 + 100)
    export = write_export(tmp_path / "export", [asst], [record])
    done = subprocess.run(
        [sys.executable, "-m", "assistd", "import", str(export)], env=server.env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr

    page.goto(server.url + "/#/threads")
    page.fill("#thread-search", record["thread"]["metadata"]["customer"])
    rows = page.locator("#thread-list tbody tr")
    expect(rows.first).to_contain_text(record["thread_id"])
    rows.first.locator("a").click()
    expect(page.locator("body")).to_have_attribute("data-thread-ready", record["thread_id"])
    shown = page.eval_on_selector_all("#thread-messages .msg", "els => els.map(e => e.dataset.id)")
    assert shown == [m["id"] for m in record["messages"]]
    expect(page.locator("#thread-messages")).to_contain_text("Quelle est la politique de congés ? 🌴")
    for run in record["runs"]:
        expect(page.locator("main")).to_contain_text(run["id"])
    shot("imported-thread")

    page.goto(server.url + "/#/import")
    expect(page.locator("#import-steps")).to_contain_text("assistd import ./export --project myapp --dry-run")
    expect(page.locator("#nav a.active")).to_have_text("Import")
    for file_id, meta in record["files"].items():  # the export had no bytes for them
        row = page.locator(f'#missing-files tr[data-id="{file_id}"]')
        expect(row).to_contain_text(meta["filename"])
        expect(row).to_contain_text(record["thread_id"])
    shot("import-page")
