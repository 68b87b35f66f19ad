"""End to end in a real browser: `kefu ui` serves the Streamlit app, Debian's Chromium (driven by
Playwright) asks a question and reads the answer and its sources, as a customer would."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("KEFU_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

pytestmark = pytest.mark.browser


def _require_browser():
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"Chromium not found at {CHROMIUM} (apt-get install chromium fonts-noto-cjk)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is not installed (pip install playwright; never `playwright install`)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {missing}")
        pytest.skip(missing)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def private_kb(use_kb, tmp_path, monkeypatch):
    """A writable copy of the ingested sample knowledge base (for tests that change it)."""
    home = tmp_path / "private-home"
    shutil.copytree(use_kb, home)
    monkeypatch.setenv("KEFU_HOME", str(home))
    return home


@pytest.fixture
def served_app(use_kb, tmp_path):
    """`kefu ui` serving whatever KEFU_HOME points at when the test starts."""
    _require_browser()
    port = _free_port()
    kefu_bin = shutil.which("kefu", path=str(Path(sys.executable).parent)) or "kefu"
    log = (tmp_path / "ui.log").open("w")
    process = subprocess.Popen(
        [kefu_bin, "ui", "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.time() > deadline:
                raise AssertionError("kefu ui did not start:\n" + (tmp_path / "ui.log").read_text())
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def page():
    """A fresh Chromium page (Debian's Chromium, driven by Playwright)."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser.new_page()
        browser.close()


def ask(page, question: str, nth_reply: int):
    """Type a question into the chat and return the locator of the assistant's reply."""
    from playwright.sync_api import expect

    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_be_visible(timeout=60_000)
    box.fill(question)
    box.press("Enter")
    return page.get_by_test_id("stChatMessage").nth(nth_reply)


def test_customer_asks_in_english_and_chinese_and_sees_sources(served_app, page, tmp_path):
    from playwright.sync_api import expect

    page.goto(served_app)
    answer = ask(page, "How long do I have to return an item?", 1)
    expect(answer).to_contain_text("30 days", timeout=60_000)
    expect(answer).to_contain_text("Quoted from the knowledge base")
    answer.get_by_text("Sources (").click()
    expect(answer).to_contain_text("Returns and Refunds Policy")

    chinese = ask(page, "我有多长时间可以退货？", 3)
    expect(chinese).to_contain_text("30 天", timeout=60_000)
    expect(chinese).to_contain_text("退货与退款政策")
    page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)


def test_admin_uploads_a_file_and_a_customer_gets_answers_from_it(private_kb, served_app, page, tmp_path):
    from playwright.sync_api import expect

    upload = tmp_path / "store-hours.md"
    upload.write_text("# Store hours\n\nThe Shanghai flagship store opens from 10:00 to 21:30 every day.\n")
    page.goto(f"{served_app}/knowledge_base")
    expect(page.get_by_text("Add files")).to_be_visible(timeout=60_000)
    page.locator("input[type=file]").set_input_files(str(upload))
    page.get_by_role("button", name="Index these files").click()
    expect(page.get_by_text("1 indexed")).to_be_visible(timeout=60_000)

    page.goto(served_app)
    answer = ask(page, "When does the Shanghai store close?", 1)
    expect(answer).to_contain_text("21:30", timeout=60_000)
