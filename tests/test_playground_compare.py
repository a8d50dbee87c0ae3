"""The playground's Compare and Usage panels in headless Chromium against a real haniwa (tests/browser.py).

Compare sends one prompt to several models in parallel through /v1/chat/completions and keeps each run
through /haniwa/v1/comparisons; Usage reads the invocation log back through /haniwa/v1/usage, whichever
API made the calls (the page, the openai SDK, boto3)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from haniwa.runtime.tokens import rough_tokens
from tests.browser import PlaygroundPage, open_page
from tests.conftest import ECHO_CATALOG

FAST = "echo:echo"
SLOW = "echo:slow"
SCRIPTED = "scripted:guide"
DOWN = "openai:down"  # an OpenAI-compatible server that is not running: every call fails with 503
DELAY_MS = 40
SCRIPTED_REPLY = "埴輪は古墳に並べられた素焼きの焼き物です。"
SYSTEM = "簡潔に答えてください。"
RULES = f'[{{ match = "埴輪|ハニワ", reply = "{SCRIPTED_REPLY}" }}]'

CATALOG = (
    ECHO_CATALOG
    + f'\n[models."{SLOW}"]\nbackend = "echo"\nkind = "chat"\noptions = {{ delay_ms = {DELAY_MS} }}\n'
    + f'\n[models."{SCRIPTED}"]\nbackend = "scripted"\nkind = "chat"\n'
    + f'options = {{ rules = {RULES}, default = "わかりません" }}\n'
    + f'\n[models."{DOWN}"]\nbackend = "openai"\nkind = "chat"\n'
    + 'options = { base_url = "http://127.0.0.1:9/v1", model = "absent", timeout = 2 }\n'
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "haniwa-home"
    h.mkdir()
    (h / "models.toml").write_text(CATALOG, encoding="utf-8")
    return h


def metrics(page: Page, i: int) -> dict[str, float]:
    """The numbers column ``i`` shows (ms, tokens, tokens/s), read from the page."""
    out = {}
    for name in ("ttft", "latency", "in", "out", "tps"):
        out[name] = float(page.get_by_test_id(f"compare-{name}-{i}").inner_text())
    return out


def choose(page: Page, models: list[str]) -> None:
    for i, model in enumerate(models):
        if i >= 2:
            page.get_by_test_id("compare-add-model").click()
        page.get_by_test_id(f"compare-model-{i}").select_option(model)


def run(page: Page, prompt: str) -> None:
    box = page.get_by_test_id("compare-prompt")
    box.fill(prompt)
    box.press("Control+Enter")


def test_compare_two_models_side_by_side(pg_page: PlaygroundPage, server: str, oai: Any) -> None:
    page = pg_page.page
    pg_page.goto("#/compare")
    expect(page.get_by_test_id("compare-history-empty")).to_be_visible()
    choose(page, [FAST, SLOW])
    page.get_by_test_id("compare-system").fill(SYSTEM)
    page.get_by_test_id("compare-temperature").fill("0.2")
    page.get_by_test_id("compare-max-tokens").fill("200")
    prompt = "ハニワロボ HR-7 の材料を三つ、順番に教えてください。"
    run(page, prompt)

    slow_col, slow_text = page.get_by_test_id("compare-col-1"), page.get_by_test_id("compare-text-1")
    # both sides run at once: the fast side is done while the slow one still streams
    expect(page.get_by_test_id("compare-col-0")).to_have_attribute("data-state", "done")
    expect(slow_col).to_have_attribute("data-state", "streaming")
    expect(page.get_by_test_id("compare-stop")).to_be_visible()
    expect(slow_text).not_to_have_text("")
    partial = slow_text.inner_text()
    expect(slow_col).to_have_attribute("data-state", "done", timeout=20_000)
    assert len(partial) < len(prompt), f"no partial text was seen: {partial!r}"

    # the echo models answer with the last user message
    expect(page.get_by_test_id("compare-text-0")).to_have_text(prompt)
    expect(slow_text).to_have_text(prompt)
    fast, slow = metrics(page, 0), metrics(page, 1)
    for side in (fast, slow):
        assert all(v > 0 for v in side.values()), side
        assert side["ttft"] <= side["latency"]
    # the token counts are the server's, as the openai SDK sees them for the same request
    usage = oai.chat.completions.create(
        model=FAST,
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
    ).usage
    assert (fast["in"], fast["out"]) == (usage.prompt_tokens, usage.completion_tokens)
    assert (slow["in"], slow["out"]) == (usage.prompt_tokens, usage.completion_tokens)
    assert slow["out"] == len(rough_tokens(prompt))
    assert slow["latency"] > fast["latency"]
    assert slow["latency"] >= DELAY_MS * slow["out"] * 0.9  # DELAY_MS before each token
    assert slow["tps"] < fast["tps"]
    expect(page.get_by_test_id("compare-fastest-0")).to_be_visible()
    expect(page.get_by_test_id("compare-fastest-1")).to_be_hidden()

    # the picture: one latency bar (TTFT + generation) and one speed bar per model
    chart = page.get_by_test_id("compare-chart")
    expect(chart).to_be_visible()
    expect(page.get_by_test_id("compare-bar-latency-1")).to_contain_text(f"{round(slow['latency'])} ms")
    widths = [
        page.get_by_test_id(f"compare-bar-latency-{i}")
        .locator(".cmp-seg")
        .evaluate_all("els => els.reduce((w, e) => w + e.getBoundingClientRect().width, 0)")
        for i in (0, 1)
    ]
    assert widths[1] > widths[0] > 0
    expect(page.get_by_test_id("compare-note")).to_have_text("Saved to the history.")
    pg_page.shot("compare")

    # saved through the public REST API with what the page measured
    saved = httpx.get(server + "/haniwa/v1/comparisons").json()["data"]
    assert len(saved) == 1
    c = saved[0]
    assert (c["prompt"], c["system"], c["params"]) == (
        prompt,
        SYSTEM,
        {"temperature": 0.2, "max_tokens": 200},
    )
    assert [r["model"] for r in c["results"]] == [FAST, SLOW]
    assert [r["text"] for r in c["results"]] == [prompt, prompt]
    assert c["results"][1]["output_tokens"] == slow["out"] and c["results"][1]["error"] is None
    assert abs(c["results"][1]["latency_ms"] - slow["latency"]) < 1
    expect(page).to_have_url(re.compile(f"#/compare/{c['id']}$"))

    # reload: the saved comparison opens read-only with the same columns
    page.reload()
    expect(page.get_by_test_id("compare-view")).to_be_visible()
    expect(page.get_by_test_id("compare-editor")).to_be_hidden()
    expect(page.get_by_test_id("compare-view-prompt")).to_have_text(prompt)
    expect(page.get_by_test_id("compare-text-1")).to_have_text(prompt)
    assert metrics(page, 1) == slow

    # from a new comparison, the history lists it; clicking opens it; delete removes it
    page.get_by_test_id("compare-new").click()
    expect(page.get_by_test_id("compare-editor")).to_be_visible()
    expect(page.get_by_test_id("compare-col-0")).to_have_count(0)
    item = page.get_by_test_id("compare-history-item")
    expect(item).to_have_count(1)
    expect(item).to_contain_text(prompt)
    expect(item).to_contain_text(SLOW)
    item.get_by_role("link").click()
    expect(page).to_have_url(re.compile(f"#/compare/{c['id']}$"))
    expect(page.get_by_test_id("compare-col-model-1")).to_have_text(SLOW)
    expect(page.get_by_test_id("compare-text-0")).to_have_text(prompt)
    item.get_by_test_id("compare-history-delete").click()
    page.get_by_test_id("compare-delete-confirm").click()
    expect(page.get_by_test_id("compare-history-item")).to_have_count(0)
    expect(page.get_by_test_id("compare-editor")).to_be_visible()
    expect(page).to_have_url(re.compile("#/compare$"))
    assert httpx.get(server + "/haniwa/v1/comparisons").json()["data"] == []


def test_compare_three_models_one_failing(pg_page: PlaygroundPage, server: str) -> None:
    page = pg_page.page
    pg_page.expect_http_error(r"^503 POST /v1/chat/completions$")
    pg_page.goto("#/compare")
    choose(page, [SLOW, SCRIPTED, DOWN])
    expect(page.get_by_test_id("compare-add-model")).to_be_hidden()  # three at most
    prompt = "埴輪とは何ですか？"
    run(page, prompt)

    # the failing side shows its error in its own column; the others finish
    expect(page.get_by_test_id("compare-col-2")).to_have_attribute("data-state", "error")
    expect(page.get_by_test_id("compare-error-2")).to_contain_text("cannot connect")
    expect(page.get_by_test_id("compare-latency-2")).to_have_text("—")
    expect(page.get_by_test_id("compare-col-0")).to_have_attribute("data-state", "done", timeout=20_000)
    expect(page.get_by_test_id("compare-col-1")).to_have_attribute("data-state", "done")
    expect(page.get_by_test_id("compare-text-0")).to_have_text(prompt)
    expect(page.get_by_test_id("compare-text-1")).to_have_text(SCRIPTED_REPLY)
    expect(page.get_by_test_id("compare-error-0")).to_be_hidden()
    scripted = metrics(page, 1)
    assert scripted["out"] == len(rough_tokens(SCRIPTED_REPLY)) and scripted["tps"] > 0
    expect(page.get_by_test_id("compare-bar-latency-2")).to_contain_text("error")

    # the run is saved with the error kept on its side
    expect(page.get_by_test_id("compare-history-item")).to_have_count(1)
    (c,) = httpx.get(server + "/haniwa/v1/comparisons").json()["data"]
    assert [r["model"] for r in c["results"]] == [SLOW, SCRIPTED, DOWN]
    assert "cannot connect" in c["results"][2]["error"] and c["results"][2]["latency_ms"] is None
    assert c["results"][1]["text"] == SCRIPTED_REPLY and c["results"][1]["error"] is None
    assert c["params"] == {} and c["system"] is None

    # three columns come back after a reload, the error included
    page.reload()
    expect(page.get_by_test_id("compare-col-2")).to_have_attribute("data-state", "error")
    expect(page.get_by_test_id("compare-error-2")).to_contain_text("cannot connect")
    expect(page.get_by_test_id("compare-text-1")).to_have_text(SCRIPTED_REPLY)


def test_compare_stop_aborts_every_side(pg_page: PlaygroundPage, server: str) -> None:
    page = pg_page.page
    pg_page.goto("#/compare")
    choose(page, [SLOW, SLOW])
    run(page, "ゆっくり " * 60)
    expect(page.get_by_test_id("compare-text-0")).not_to_have_text("")
    page.get_by_test_id("compare-stop").click()
    for i in (0, 1):
        expect(page.get_by_test_id(f"compare-col-{i}")).to_have_attribute("data-state", "stopped")
    expect(page.get_by_test_id("compare-run")).to_be_visible()
    expect(page.get_by_test_id("compare-note")).to_contain_text("not saved")
    text = page.get_by_test_id("compare-text-0").inner_text()
    page.wait_for_timeout(300)  # nothing streams in after the stop
    assert page.get_by_test_id("compare-text-0").inner_text() == text
    assert httpx.get(server + "/haniwa/v1/comparisons").json()["data"] == []


def test_usage_panel_shows_calls_from_every_api(
    pg_page: PlaygroundPage, server: str, oai: Any, runtime: Any
) -> None:
    page = pg_page.page
    pg_page.goto("#/usage")
    # a fresh server: a friendly empty state, not an error
    expect(page.get_by_test_id("usage-empty")).to_be_visible()
    expect(page.get_by_test_id("usage-total-requests")).to_have_text("0")
    expect(page.get_by_test_id("usage-table")).to_be_hidden()

    # calls through the page (a comparison), the openai SDK and boto3
    pg_page.goto("#/compare")
    choose(page, [FAST, SCRIPTED])
    run(page, "埴輪の材料は？")
    expect(page.get_by_test_id("compare-history-item")).to_have_count(1)
    for text in ("一つ目", "二つ目"):
        oai.chat.completions.create(model=FAST, messages=[{"role": "user", "content": text}])
    runtime.converse(
        modelId="anthropic.claude-3-haiku-20240307-v1:0",
        messages=[{"role": "user", "content": [{"text": "三つ目"}]}],
    )
    calls = 5
    log = httpx.get(server + "/haniwa/v1/usage").json()
    tokens = sum(s["input_tokens"] + s["output_tokens"] for s in log["series"])

    page.get_by_test_id("tab-usage").click()
    expect(page.get_by_test_id("usage-total-requests")).to_have_text(str(calls))
    expect(page.get_by_test_id("usage-empty")).to_be_hidden()
    expect(page.get_by_test_id("usage-total-tokens")).to_have_text(f"{tokens:,}")
    expect(page.get_by_test_id("usage-total-errors")).to_have_text("0")
    assert float(page.get_by_test_id("usage-mean-latency").inner_text()) >= 0
    rows = page.get_by_test_id("usage-row")
    expect(rows).to_have_count(calls)
    # newest first: the boto3 call through a Bedrock alias, served by the echo model
    expect(rows.first).to_contain_text(FAST)
    expect(rows.first).to_contain_text("anthropic.claude-3-haiku-20240307-v1:0")
    expect(rows.first).to_contain_text("Converse")
    expect(rows.last).to_contain_text("ChatCompletions")
    for chart in ("requests", "tokens", "latency"):
        expect(page.get_by_test_id(f"usage-chart-{chart}").locator("canvas")).to_have_count(1)
        legend = page.get_by_test_id(f"usage-chart-{chart}-legend")
        expect(legend).to_contain_text(FAST)
        expect(legend).to_contain_text(SCRIPTED)
    box = page.get_by_test_id("usage-chart-requests").locator("canvas").bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100

    # ranges and refresh ask the server again
    page.get_by_test_id("usage-range-1h").click()
    expect(page.get_by_test_id("usage-range-1h")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("usage-total-requests")).to_have_text(str(calls))
    oai.chat.completions.create(model=SCRIPTED, messages=[{"role": "user", "content": "ハニワ"}])
    page.get_by_test_id("usage-refresh").click()
    expect(page.get_by_test_id("usage-total-requests")).to_have_text(str(calls + 1))
    expect(rows).to_have_count(calls + 1)
    page.get_by_test_id("usage-range-7d").click()
    expect(page.get_by_test_id("usage-range-7d")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("usage-total-requests")).to_have_text(str(calls + 1))
    expect(page.get_by_test_id("usage-chart-latency").locator("canvas")).to_have_count(1)
    pg_page.shot("usage")


def test_japanese_ui(pg_page: PlaygroundPage) -> None:
    page = pg_page.page
    pg_page.goto("#/compare")
    page.get_by_test_id("lang-toggle").click()
    expect(page.get_by_test_id("compare-run")).to_have_text("実行")
    expect(page.get_by_test_id("compare-add-model")).to_have_text("+ モデルを追加")
    expect(page.get_by_test_id("compare-history-empty")).to_have_text("保存された比較はまだありません。")
    choose(page, [FAST, SCRIPTED])
    run(page, "ハニワ")
    expect(page.get_by_test_id("compare-state-1")).to_have_text("完了")
    expect(page.get_by_test_id("compare-note")).to_have_text("履歴に保存しました。")
    expect(page.get_by_test_id("compare-chart")).to_contain_text("レイテンシ (ms)")
    page.get_by_test_id("tab-usage").click()
    expect(page.get_by_test_id("usage-refresh")).to_have_text("更新")
    expect(page.get_by_test_id("usage-range-1h")).to_have_text("1 時間")
    expect(page.get_by_test_id("usage-total-requests")).to_have_text("2")
    expect(page.get_by_test_id("usage-table")).to_contain_text("初回トークン ms")
    page.get_by_test_id("lang-toggle").click()  # back to English, in place
    expect(page.get_by_test_id("usage-refresh")).to_have_text("Refresh")


def test_narrow_window(chromium: Any, server: str) -> None:
    with open_page(chromium, server, width=420, height=800) as pg:
        page = pg.page
        pg.goto("#/compare")
        choose(page, [FAST, SCRIPTED])
        run(page, "narrow 埴輪")
        expect(page.get_by_test_id("compare-col-1")).to_have_attribute("data-state", "done")
        expect(page.get_by_test_id("compare-text-0")).to_have_text("narrow 埴輪")
        expect(page.get_by_test_id("compare-history-item")).to_have_count(1)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 420, f"the compare panel scrolls sideways at 420 px ({width} px wide)"
        pg.shot("compare-narrow", full_page=True)
        page.get_by_test_id("tab-usage").click()
        expect(page.get_by_test_id("usage-row")).to_have_count(2)
        expect(page.get_by_test_id("usage-chart-requests").locator("canvas")).to_have_count(1)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 420, f"the usage panel scrolls sideways at 420 px ({width} px wide)"
