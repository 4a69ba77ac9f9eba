"""The console behind API keys: it asks for one, keeps it in sessionStorage, and says when it is wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from assistd.testing.server import LiveServer

KEY = "console-secret-key-0123456789"


@pytest.fixture(scope="module")
def keyed(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    backend: str,
    launch: Callable[..., LiveServer],
) -> LiveServer:
    return launch(request, tmp_path_factory, backend, env={"ASSISTD_API_KEYS": KEY})


def test_the_page_asks_for_a_key_and_keeps_it_for_the_tab(page: Any, keyed: LiveServer, shot: Any) -> None:
    with httpx.Client(base_url=keyed.url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        made = c.post("/v1/assistants", json={"model": "gpt-4o", "name": "Behind a key"}).json()

    page.goto(keyed.url + "/")
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#key-error")).to_be_hidden()  # a first visit just asks
    expect(page.locator("#assistant-list")).to_have_count(0)

    page.fill("#key-input", "sk-wrong-key-0000000000000000")
    page.click("#key-form button[type=submit]")
    error = page.locator("#key-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Incorrect API key provided")
    expect(dialog).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('assistd.apiKey')") is None
    shot("key-prompt")

    page.fill("#key-input", KEY)
    page.click("#key-form button[type=submit]")
    expect(dialog).to_be_hidden()
    expect(page.locator(f"#assistant-list tr[data-id={made['id']}]")).to_contain_text("Behind a key")
    assert page.evaluate("() => sessionStorage.getItem('assistd.apiKey')") == KEY

    # A reload in the same tab keeps the key; "Forget key" drops it.
    page.reload()
    expect(page.locator(f"#assistant-list tr[data-id={made['id']}]")).to_be_visible()
    expect(dialog).to_be_hidden()
    page.click("#sign-out")
    expect(dialog).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('assistd.apiKey')") is None


def test_a_stored_key_that_stops_working_brings_the_prompt_back(page: Any, keyed: LiveServer) -> None:
    page.goto(keyed.url + "/")
    expect(page.locator("#key-dialog")).to_be_visible()  # the first visit's 401 is in: it cannot clear the key below
    page.evaluate("() => sessionStorage.setItem('assistd.apiKey', 'revoked-key-00000000000000')")
    page.reload()
    expect(page.locator("#key-dialog")).to_be_visible()
    expect(page.locator("#key-error")).to_contain_text("Incorrect API key provided")


def test_an_open_server_opens_directly(page: Any, server: LiveServer) -> None:
    page.goto(server.url + "/")
    expect(page.locator("h1")).to_have_text("Assistants")
    expect(page.locator("#key-dialog")).to_be_hidden()
    expect(page.locator("#sign-out")).to_be_hidden()
