"""The web page in real headless Chromium (Playwright, /usr/bin/chromium): drop a mesh,
see its views, its label and the nearest shapes with their thumbnails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import KEY, Server, held_out, service_env, train_only
from tests.polling import wait_job, wait_until

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, synthetic_set: Path) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("page")
    allowed = root / "allowed"
    folder = train_only(synthetic_set, allowed / "train")
    server = Server(service_env(root / "var", allowed_roots=allowed), root / "server.log")
    job = server.http.post("/reindex", data={"folder": str(folder)}, headers=KEY).json()
    assert wait_job(server.http, job["id"])["state"] == "succeeded"
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def open_page(browser, url: str):
    """A new page at `url`, collecting what the browser refuses under the page's
    Content-Security-Policy (each would be a broken feature)."""
    page = browser.new_page()
    page.refused = []
    page.on(
        "console",
        lambda message: (
            page.refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    response = page.goto(url)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    return page


def test_upload_shows_views_label_and_neighbours(server, browser, synthetic_set) -> None:
    from playwright.sync_api import expect

    label, mesh = held_out(synthetic_set)[0]
    page = open_page(browser, server.url + "/")
    try:
        expect(page.locator("#status")).to_contain_text("shapes indexed")
        expect(page.locator("#formats")).to_contain_text(".off")
        assert ".glb" in page.get_attribute("#file-input", "accept")

        page.fill("#top-k", "1")
        page.set_input_files("#file-input", str(mesh))
        page.wait_for_selector("#result", state="visible", timeout=120_000)

        assert page.text_content("#label").strip()
        assert page.text_content("#vote-label").strip() == label
        assert page.get_attribute("#views img", "src").startswith("data:image/png;base64,")
        assert page.eval_on_selector("#views img", "img => img.naturalWidth") > 0
        assert page.locator("#probabilities tbody tr").count() >= 2
        neighbours = page.locator("#neighbors li.neighbor")
        assert neighbours.count() == 1
        assert label in neighbours.first.text_content()
        wait_until(
            lambda: page.evaluate(
                "[...document.querySelectorAll('#neighbors img')]"
                ".every(img => img.complete && img.naturalWidth > 0)"
            ),
            30,
            "the neighbours' thumbnails loaded",
        )
        assert page.is_hidden("#error")
        assert page.refused == []
    finally:
        page.close()


def test_a_bad_file_shows_the_servers_message(server, browser, tmp_path) -> None:
    junk = tmp_path / "notes.off"
    junk.write_bytes(b"OFF\nthis is not a mesh\n")
    page = open_page(browser, server.url + "/")
    try:
        page.set_input_files("#file-input", str(junk))
        page.wait_for_selector("#error", state="visible", timeout=60_000)
        message = page.text_content("#error")
        assert message.startswith("notes.off: ") and len(message) > len("notes.off: ") + 10
        assert page.is_hidden("#result")
    finally:
        page.close()


def test_adding_from_the_page_needs_the_key(server, browser, synthetic_set) -> None:
    from playwright.sync_api import expect

    _, mesh = held_out(synthetic_set)[-1]
    page = open_page(browser, server.url + "/")
    try:
        page.set_input_files("#file-input", str(mesh))
        page.wait_for_selector("#result", state="visible", timeout=120_000)
        page.click("#add-form button")
        expect(page.locator("#add-result")).to_contain_text("X-API-Key", timeout=60_000)

        page.fill("#api-key", KEY["X-API-Key"])
        page.dispatch_event("#api-key", "change")
        page.fill("#add-label", "from-the-page")
        page.click("#add-form button")
        expect(page.locator("#add-result")).to_contain_text("added as shape", timeout=60_000)
        shapes = server.http.get("/shapes", params={"label": "from-the-page"}).json()
        assert shapes["total"] == 1
        # Not kept on the device unless asked; kept when asked.
        assert page.evaluate("localStorage.getItem('gmvit-api-key')") is None
        page.check("#remember-key")
        assert page.evaluate("localStorage.getItem('gmvit-api-key')") == KEY["X-API-Key"]
        page.uncheck("#remember-key")
        assert page.evaluate("localStorage.getItem('gmvit-api-key')") is None
        assert page.refused == []
    finally:
        page.close()


def test_names_and_labels_from_the_index_are_shown_as_text(server, browser, synthetic_set) -> None:
    label, mesh = held_out(synthetic_set)[1]
    hostile = '<img src=x onerror="window.pwned=1">'
    added = server.http.post(
        "/shapes",
        files={"file": ("x.off", mesh.read_bytes() + b"\n")},
        data={"name": hostile, "label": hostile},
        headers=KEY,
    )
    assert added.status_code == 201, added.text
    page = open_page(browser, server.url + "/")
    try:
        page.fill("#top-k", "50")
        page.set_input_files("#file-input", str(mesh))
        page.wait_for_selector("#result", state="visible", timeout=120_000)
        assert hostile in page.text_content("#neighbors")  # shown as the text it is
        assert page.locator("#neighbors img[src='x']").count() == 0
        assert page.evaluate("window.pwned") is None
    finally:
        page.close()
