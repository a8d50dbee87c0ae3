"""The playground with the real bundled model: what a new user sees after `haniwa serve` (model marker)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser import open_page

pytestmark = pytest.mark.model

DEFAULT_CHAT = "llamacpp:qwen2.5-coder-1.5b"


def test_chat_with_the_bundled_model(chromium: Any, model_server: str) -> None:
    with open_page(chromium, model_server) as pg:
        page = pg.page
        pg.goto("#/chat")
        page.get_by_test_id("chat-model").select_option(DEFAULT_CHAT)
        page.get_by_test_id("chat-temperature").fill("0")
        page.get_by_test_id("chat-max-tokens").fill("24")
        box = page.get_by_test_id("chat-input")
        box.fill("日本の首都はどこですか？一言で答えてください。")
        box.press("Enter")
        stats = page.get_by_test_id("msg-stats").last
        expect(stats).to_be_visible(timeout=180_000)  # the first call assembles and loads the weights
        expect(page.get_by_test_id("msg-assistant").last).to_contain_text("東京")
        tokens, _latency, *_ = (float(n) for n in re.findall(r"[\d.]+", stats.inner_text()))
        assert 0 < tokens <= 24
        pg.shot("chat-bundled-model")
