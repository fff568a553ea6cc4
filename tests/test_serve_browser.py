"""The chat page in a real headless Chromium (Debian's, driven by Playwright): type a line,
press Enter, see the reply and the reading; see the server's error on a 4xx; a header in
plain words, and a retrieval model's reply with the title of its work. The page must ask
nothing of other hosts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from pipeline.kana import is_kana_text

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 60_000  # the real model answers in milliseconds; a loaded CI machine may be slow


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Never skipped: a machine without the browser fails here, saying what to install.
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("the browser tests need Debian's chromium: `make browser` (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"), args=ARGS
        )
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(WAIT_MS)
    pg.seen_hosts = set()
    pg.on("request", lambda req: pg.seen_hosts.add(urlsplit(req.url).netloc))
    pg.console_errors = []
    pg.on("console", lambda msg: msg.type == "error" and pg.console_errors.append(msg.text))
    yield pg
    context.close()


def say(page, text: str) -> None:
    box = page.locator("#text")
    box.fill("")
    box.press_sequentially(text)
    box.press("Enter")


def test_type_a_line_and_see_the_reply(page, served_model, tiny_model):
    from playwright.sync_api import expect

    url = served_model.url
    page.goto(url)
    expect(page.locator("#model")).to_contain_text(tiny_model.name)
    say(page, "こんな忘れ物、ある?")
    reply = page.locator("#log li.bot .reply .text")
    expect(reply).to_have_count(1)
    assert is_kana_text(reply.first.text_content())
    # The reading of the user's line, beside it, is the one the model was given.
    kana = requests.post(url + "api/reply", json={"text": "こんな忘れ物、ある?"}, timeout=30).json()["input_kana"]
    expect(page.locator("#log li.user .said").first).to_have_text("こんな忘れ物、ある?")
    expect(page.locator("#log li.user .reading").first).to_have_text(kana)
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#text")).to_have_value("")

    # More candidates, sampled: a numbered list in the next reply.
    page.locator("#num").fill("3")
    page.locator("#temperature").fill("1")
    say(page, "うふふ")
    expect(page.locator("#log li.bot:not(.pending)")).to_have_count(2)
    n = page.locator("#log li.bot").nth(1).locator(".reply").count()
    assert 1 <= n <= 3
    assert page.seen_hosts == {urlsplit(url).netloc}  # nothing from other hosts
    assert page.console_errors == []


def test_the_servers_4xx_error_is_shown(page, served_model):
    from playwright.sync_api import expect

    page.goto(served_model.url)
    expect(page.locator("#model")).not_to_have_text("connecting…")
    too_long = "あ" * 300
    say(page, too_long)
    expect(page.locator("#error")).to_be_visible()
    expect(page.locator("#error")).to_contain_text("too long")
    expect(page.locator("#log li.user.failed")).to_have_count(1)
    expect(page.locator("#log li.bot")).to_have_count(0)
    expect(page.locator("#text")).to_have_value(too_long)  # given back to fix

    # An option out of range: the server's message, shown as is.
    page.locator("#temperature").fill("9")
    say(page, "はい")
    expect(page.locator("#error")).to_contain_text("temperature")

    # The server is still there, and a good line clears the error.
    page.locator("#temperature").fill("0")
    say(page, "はい")
    expect(page.locator("#log li.bot .reply")).to_have_count(1)
    expect(page.locator("#error")).to_be_hidden()
    assert served_model.proc.poll() is None


def test_the_header_speaks_plainly_and_a_reply_shows_its_work(page, tmp_path):
    """The header says what the model is in words, whatever evaluate.json holds; a retrieval
    model's reply is the line as written, its reading, and the title of its work under it."""
    from playwright.sync_api import expect
    from test_serve import RetrievalEcho, running

    from stages.serve import create_app

    (tmp_path / "evaluate.json").write_text(json.dumps({"bits_per_char": 3.1234, "distinct_1": 0.25, "n": 120}))
    bot = RetrievalEcho()
    bot.config = {"model": {"units": 8}, "data": {"train_pairs": 12345}}
    with running(create_app(bot, model_dir=tmp_path)) as url:
        page.goto(url)
        expect(page.locator("#model")).to_have_text("lines")
        expect(page.locator("#about")).to_contain_text("answers with lines from the stories")
        expect(page.locator("#about")).to_contain_text("12,345 exchanges")
        header = page.locator("header").text_content()
        for jargon in ("bits", "distinct", "3.12", "0.25", "units", "retrieval"):
            assert jargon not in header, jargon
        expect(page.locator("#temperature")).to_be_hidden()  # a retrieval model has no sampling
        say(page, "あいう")
        reply = page.locator("#log li.bot .reply")
        expect(reply.locator(".text")).to_have_text(["そうだ。"])
        expect(reply.locator(".reading")).to_have_text(["ソウダ"])
        expect(reply.locator(".source")).to_have_text(["走れメロス"])
        assert "0.875" not in page.locator("#log").text_content()  # no raw scores
        expect(page.locator("#error")).to_be_hidden()
        assert page.seen_hosts == {urlsplit(url).netloc} and page.console_errors == []


def test_a_generative_reply_shows_no_score_and_no_source(page, tmp_path):
    from playwright.sync_api import expect
    from test_serve import EchoReplier, running

    from stages.serve import create_app

    with running(create_app(EchoReplier(), model_dir=tmp_path)) as url:
        page.goto(url)
        expect(page.locator("#about")).to_contain_text("writes its replies in katakana")
        say(page, "あいう")
        expect(page.locator("#log li.bot .reply .text")).to_have_text(["ウイア"])
        expect(page.locator("#log li.user .reading")).to_have_text(["アイウ"])
        expect(page.locator("#log li.bot .reply .source")).to_have_count(0)
        assert "-0.5" not in page.locator("#log").text_content()
