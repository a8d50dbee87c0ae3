"""The playground's shell and Chat panel in headless Chromium against a real haniwa (tests/browser.py).

The page talks only to the public APIs: it streams from /v1/chat/completions and keeps conversations
through /haniwa/v1/conversations, so a reload resumes what was said."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.testing.server import serve_in_thread
from tests.browser import PlaygroundPage, open_page
from tests.conftest import ECHO_CATALOG

SLOW = "echo:slow"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "haniwa-home"
    h.mkdir()
    catalog = (
        ECHO_CATALOG
        + f'\n[models."{SLOW}"]\nbackend = "echo"\nkind = "chat"\noptions = {{ delay_ms = 25 }}\n'
    )
    (h / "models.toml").write_text(catalog, encoding="utf-8")
    return h


def send(pg: PlaygroundPage, text: str) -> None:
    box = pg.page.get_by_test_id("chat-input")
    box.fill(text)
    box.press("Enter")


def test_chat_streams_and_resumes_after_reload(pg_page: PlaygroundPage, server: str) -> None:
    page = pg_page.page
    pg_page.goto("#/chat")
    page.get_by_test_id("chat-model").select_option(SLOW)
    page.get_by_test_id("chat-system").fill("あなたは埴輪工場の案内係です。")
    question = "ハニワロボ HR-7 の材料を三つ、順番に教えてください。"
    send(pg_page, question)

    answer = page.get_by_test_id("msg-assistant").last
    # streamed: part of the answer is on screen before all of it is
    expect(answer).not_to_have_text("", timeout=10_000)
    partial = answer.inner_text()
    expect(page.get_by_test_id("msg-stats").last).to_be_visible(timeout=20_000)
    assert answer.inner_text() == question  # the echo model answers with the last user message
    assert len(partial) < len(question), f"no partial text was seen: {partial!r}"
    stats = page.get_by_test_id("msg-stats").last.inner_text()
    tokens, latency = (int(n) for n in re.findall(r"\d+", stats)[:2])
    assert tokens > 5 and latency > 100  # 25 ms a token
    pg_page.shot("chat")

    # the conversation was saved through the public REST API, with the system prompt and both turns
    convs = httpx.get(server + "/haniwa/v1/conversations").json()["data"]
    assert len(convs) == 1 and convs[0]["title"] == question and convs[0]["model_id"] == SLOW
    saved = httpx.get(server + f"/haniwa/v1/conversations/{convs[0]['id']}").json()
    assert saved["system"] == "あなたは埴輪工場の案内係です。"
    assert [(m["role"], m["content"]) for m in saved["messages"]] == [
        ("user", question),
        ("assistant", question),
    ]

    # reload: the conversation is listed and resumes with its history, and a second turn continues it
    page.reload()
    page.get_by_test_id("conv-item").first.click()
    expect(page.get_by_test_id("msg-user")).to_have_count(1)
    expect(page.get_by_test_id("msg-assistant").first).to_have_text(question)
    send(pg_page, "二つ目は？")
    expect(page.get_by_test_id("msg-assistant")).to_have_count(2)
    expect(page.get_by_test_id("msg-assistant").last).to_have_text("二つ目は？", timeout=20_000)
    saved = httpx.get(server + f"/haniwa/v1/conversations/{convs[0]['id']}").json()
    assert len(saved["messages"]) == 4
    assert len(httpx.get(server + "/haniwa/v1/conversations").json()["data"]) == 1


def test_conversation_rename_export_delete(pg_page: PlaygroundPage, server: str) -> None:
    page = pg_page.page
    pg_page.goto("#/chat")
    page.get_by_test_id("chat-model").select_option("echo:echo")
    send(pg_page, "最初の質問")
    expect(page.get_by_test_id("msg-assistant").last).to_have_text("最初の質問")
    expect(page.get_by_test_id("msg-stats").last).to_be_visible()
    item = page.get_by_test_id("conv-item").first
    expect(item).to_contain_text("最初の質問")

    item.hover()
    item.get_by_role("button", name=re.compile("Rename")).click()
    page.get_by_test_id("conv-rename-input").fill("材料の相談")
    page.get_by_test_id("conv-rename-input").press("Enter")
    expect(page.get_by_test_id("conv-item").first).to_contain_text("材料の相談")
    assert httpx.get(server + "/haniwa/v1/conversations").json()["data"][0]["title"] == "材料の相談"

    with page.expect_download() as dl:
        page.get_by_test_id("conv-item").first.get_by_role("button", name=re.compile("Export")).click()
    exported = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    assert exported["title"] == "材料の相談" and exported["messages"][0]["content"] == "最初の質問"

    page.get_by_test_id("conv-item").first.get_by_role("button", name=re.compile("Delete")).click()
    page.get_by_test_id("conv-delete-confirm").click()
    expect(page.get_by_test_id("conv-item")).to_have_count(0)
    assert httpx.get(server + "/haniwa/v1/conversations").json()["data"] == []


def test_model_errors_show_in_the_conversation(pg_page: PlaygroundPage) -> None:
    page = pg_page.page
    pg_page.goto("#/chat")
    page.get_by_test_id("chat-model").select_option("echo:echo")
    page.get_by_test_id("chat-max-tokens").fill("0")  # out of range: the API answers 400
    pg_page.expect_http_error(r"^400 POST /v1/chat/completions")
    send(pg_page, "こんにちは")
    expect(page.get_by_test_id("msg-error")).to_contain_text("max_tokens")


def test_japanese_ui_and_keyboard(pg_page: PlaygroundPage) -> None:
    page = pg_page.page
    pg_page.goto("#/chat")
    page.get_by_test_id("lang-toggle").click()
    expect(page.get_by_test_id("tab-chat")).to_have_text("チャット")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    page.keyboard.press("Alt+2")
    expect(page).to_have_url(re.compile("#/compare$"))
    # the compare panel loads its module on first visit; let it finish, or the reload below cancels it
    expect(page.get_by_test_id("compare-new")).to_be_visible()
    page.keyboard.press("Alt+1")
    page.locator("body").click()
    page.keyboard.press("/")
    expect(page.get_by_test_id("chat-input")).to_be_focused()
    page.reload()  # the choice is kept
    expect(page.get_by_test_id("tab-chat")).to_have_text("チャット")


def test_narrow_window(chromium: Any, server: str) -> None:
    with open_page(chromium, server, width=420, height=800) as pg:
        pg.goto("#/chat")
        pg.page.get_by_test_id("chat-model").select_option("echo:echo")
        send(pg, "narrow")
        expect(pg.page.get_by_test_id("msg-assistant").last).to_have_text("narrow")
        width = pg.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 420, f"the page scrolls sideways at 420 px ({width} px wide)"
        pg.shot("chat-narrow")


@pytest.fixture
def keyed_server(tmp_path: Path) -> Iterator[str]:
    home = tmp_path / "keyed"
    home.mkdir()
    (home / "models.toml").write_text(ECHO_CATALOG, encoding="utf-8")
    settings = Settings(home=home, access_key_id="AK", secret_access_key="SK", api_keys=["pg-key"])
    with serve_in_thread(create_app(settings)) as url:
        yield url


def test_api_key_dialog(chromium: Any, keyed_server: str) -> None:
    with open_page(chromium, keyed_server) as pg:
        pg.expect_http_error(r"^401 ")  # before the key is given
        pg.expect_http_error(r"^403 ")
        page = pg.page
        pg.goto("#/chat")
        page.get_by_test_id("api-key-button").click()
        page.get_by_test_id("api-key-input").fill("pg-key")
        page.get_by_test_id("api-key-save").click()
        page.reload()
        page.get_by_test_id("chat-model").select_option("echo:echo")
        send(pg, "鍵あり")
        expect(page.get_by_test_id("msg-assistant").last).to_have_text("鍵あり")


def test_image_attachment_follows_the_model(pg_page: PlaygroundPage, tmp_path: Path) -> None:
    import base64

    png = tmp_path / "book-back.png"  # a 1×1 PNG
    png.write_bytes(
        base64.b64decode(
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
        )
    )
    page = pg_page.page
    pg_page.goto("#/chat")
    page.get_by_test_id("chat-model").select_option("echo:blind")  # vision = false
    expect(page.get_by_test_id("chat-attach")).to_be_disabled()
    page.get_by_test_id("chat-model").select_option("echo:echo")
    expect(page.get_by_test_id("chat-attach")).to_be_enabled()
    page.get_by_test_id("chat-attach-input").set_input_files(str(png))
    expect(page.get_by_test_id("chat-attachment")).to_contain_text("book-back.png")
    send(pg_page, "この本の価格は？")
    expect(page.locator(".msg-image")).to_have_count(1)
    expect(page.get_by_test_id("msg-assistant").last).to_have_text("この本の価格は？")
    expect(page.get_by_test_id("chat-attachment")).to_have_count(0)  # sent with that message only
