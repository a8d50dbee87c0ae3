"""The playground's Agents panel in headless Chromium against a real haniwa (tests/browser.py).

Agents are built with boto3 (bedrock-agent) exactly as a user would; the page lists and shows them
through the same public API and tests them with InvokeAgent (event stream with trace). A ``scripted``
model drives the orchestration deterministically (as in test_agents_invoke.py), the functions are
tests.agent_tools, registered by name like a user's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from playwright.sync_api import Locator, expect

from haniwa.config import Settings
from tests import agent_tools
from tests.browser import PlaygroundPage, open_page
from tests.conftest import client_kwargs
from tests.test_agents_invoke import (
    INSTRUCTION,
    MODEL,
    catalog,
    final,
    function_group,
    make_agent,
    prepare,
    robot_kb,
    step,
)

FUNCTIONS = {"stock": "tests.agent_tools:get_material_stock", "orders": "tests.agent_tools:order_parts"}
QUESTION = "ロボットの材料の在庫はどれくらいありますか？"
ANSWER = "アルミニウムの在庫は 120 kg、銅線の在庫は 45 m です。"
FOLLOW_UP = "銅線は足りていますか？"
FOLLOW_UP_ANSWER = "はい、銅線は 45 m あり、HR-7 1 台分の 3 m には十分です。"
RULES = [
    # (first: the follow-up's turn also holds the knowledge-base lookup made before its first step)
    ("足りていますか", final(FOLLOW_UP_ANSWER)),
    # the robot factory: KB lookup, one stock call per material, then the answer (citing the sheet)
    ("在庫はどれくらい", step("search_knowledge_base", "まず材料を調べる", query="ハニワロボ 材料")),
    (
        # the result, or (the same passages as the lookup before the first step) that it found nothing new
        "search_knowledge_base (の結果|は前の検索と同じ)",
        step("get_material_stock", "アルミニウムの在庫", material_name="アルミニウム"),
    ),
    ('"material": "アルミニウム"', step("get_material_stock", "銅線の在庫", material_name="銅線")),
    (
        '"material": "銅線"',
        final("ハニワロボ HR-7 の材料はアルミニウム 12 kg と銅線 3 m です [1]。" + ANSWER),
    ),
    # ordering parts: the caller runs (or confirms) order_parts
    ("order_parts の結果.*PO-77", final("注文番号は PO-77 です。")),
    ("order_parts の結果.*ordered 5 of 銅線", final("銅線を 5 個注文しました。")),
    ("実行を断りました", final("注文しませんでした。")),
    ("注文して", step("order_parts", "注文する", material_name="銅線", quantity="5")),
    ("こんにちは", final("こんにちは、工場の案内係です。")),
]
ORDER_PARAMS = {
    "material_name": {"type": "string", "description": "material", "required": True},
    "quantity": {"type": "integer", "description": "how many", "required": True},
}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "haniwa-home"
    h.mkdir()
    (h / "models.toml").write_text(catalog(RULES), encoding="utf-8")
    return h


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings(home=home, profile="fast", agent_functions=FUNCTIONS)


@pytest.fixture
def ba(server: str) -> Iterator[Any]:
    agent_tools.CALLS.clear()
    yield boto3.client("bedrock-agent", **client_kwargs(server))


def ask(page: Any, text: str) -> None:
    box = page.get_by_test_id("agent-input")
    box.fill(text)
    box.press("Enter")


def texts(loc: Locator) -> list[str]:
    return [t.strip() for t in loc.all_inner_texts()]


def test_robot_factory_agent_trace(pg_page: PlaygroundPage, home: Path, ba: Any) -> None:
    kb_id = robot_kb({"home": home, "agent": ba})
    agent_id = make_agent(ba, description="HR-7 の在庫係")
    function_group(ba, agent_id)
    ba.associate_agent_knowledge_base(
        agentId=agent_id, agentVersion="DRAFT", knowledgeBaseId=kb_id, description="製品仕様書"
    )
    prepare(ba, agent_id)
    alias = ba.create_agent_alias(agentId=agent_id, agentAliasName="prod")["agentAlias"]["agentAliasId"]

    page = pg_page.page
    pg_page.goto("#/agents")
    item = page.get_by_test_id("agents-item")
    expect(item).to_have_count(1)
    expect(item.get_by_test_id("agents-item-name")).to_have_text("factory-agent")
    expect(item.get_by_test_id("agents-item-id")).to_have_text(agent_id)
    expect(item.get_by_test_id("agents-item-status")).to_have_text("PREPARED")
    expect(item.get_by_test_id("agents-item-model")).to_have_text(MODEL)
    expect(item.get_by_test_id("agents-item-updated")).to_contain_text("updated")
    item.click()
    expect(page).to_have_url(re.compile(f"#/agents/{agent_id}$"))

    # the configuration: instruction, the action group's function and parameters, the KB, the aliases
    expect(page.get_by_test_id("agent-name")).to_have_text("factory-agent")
    expect(page.get_by_test_id("agent-instruction")).to_have_text(INSTRUCTION)
    group = page.get_by_test_id("agent-action-group")
    expect(group.get_by_test_id("agent-group-name")).to_have_text("stock-group")
    expect(group.get_by_test_id("agent-function-signature")).to_have_text(
        "get_material_stock(material_name: string)"
    )
    expect(group.get_by_test_id("agent-function-param")).to_contain_text("material_name")
    expect(page.get_by_test_id("agent-kb")).to_contain_text("factory")
    expect(page.get_by_test_id("agent-kb")).to_contain_text("製品仕様書")
    aliases = page.get_by_test_id("agent-alias-item")
    expect(aliases).to_have_count(2)
    expect(aliases.nth(0)).to_contain_text("TSTALIASID")
    expect(aliases.nth(1)).to_contain_text("prod")
    expect(aliases.nth(1)).to_contain_text(alias)
    picker = page.get_by_test_id("agent-alias")
    expect(picker).to_have_value("TSTALIASID")
    expect(picker.locator("option")).to_have_count(2)

    # ask in Japanese: the answer streams in from the chunk events, the steps from the trace events
    session = page.get_by_test_id("agent-session").get_attribute("data-session-id")
    assert session
    ask(page, QUESTION)
    answer = page.get_by_test_id("agent-answer")
    expect(answer).to_contain_text(ANSWER)
    expect(answer).to_have_attribute("data-streaming", "false")
    expect(page.get_by_test_id("agent-question")).to_have_text(QUESTION)

    trace = page.get_by_test_id("trace")
    expect(trace).to_have_count(1)
    steps = trace.get_by_test_id("trace-step")
    expect(steps).to_have_count(4)
    kb = trace.get_by_test_id("trace-kb")
    # the knowledge base is looked up over the question before the first step, then the model's own search
    expect(kb).to_have_count(2)
    expect(kb.get_by_test_id("trace-kb-query")).to_have_text([QUESTION, "ハニワロボ 材料"])
    expect(kb.get_by_test_id("trace-kb-source").first).to_have_text("s3://factory/docs/robot.md")
    expect(kb.get_by_test_id("trace-kb-snippet").first).to_contain_text("アルミニウム 12 kg")
    actions = trace.get_by_test_id("trace-action")
    expect(actions).to_have_count(2)
    expect(actions.get_by_test_id("trace-action-name")).to_have_text(
        ["stock-group › get_material_stock", "stock-group › get_material_stock"]
    )
    expect(actions.get_by_test_id("trace-action-params")).to_have_text(
        ["material_name=アルミニウム", "material_name=銅線"]
    )
    results = actions.get_by_test_id("trace-observation")
    expect(results.nth(0)).to_contain_text('"stock": 120')
    expect(results.nth(1)).to_contain_text('"stock": 45')
    expect(trace.get_by_test_id("trace-rationale").first).to_contain_text("まず材料を調べる")
    expect(steps.last.get_by_test_id("trace-final")).to_contain_text(ANSWER)
    # each step's model invocation is folded, with its token usage
    models = trace.get_by_test_id("trace-model")
    expect(models).to_have_count(4)
    assert all(not m.evaluate("e => e.open") for m in models.all())
    usage = trace.get_by_test_id("trace-usage").first
    expect(usage).to_contain_text("tokens")
    assert int(usage.get_attribute("data-input-tokens") or 0) > 0
    assert agent_tools.CALLS == [
        ("get_material_stock", {"material_name": "アルミニウム"}),
        ("get_material_stock", {"material_name": "銅線"}),
    ]
    # the answer's citation points at the product sheet, as a numbered source
    expect(answer.get_by_test_id("agent-cite")).to_have_text(["[1]"])
    expect(page.get_by_test_id("agent-source-uri")).to_have_text(["s3://factory/docs/robot.md"])
    kb.first.evaluate("e => e.scrollIntoView({block: 'start'})")  # the lookup and the calls on screen
    pg_page.shot("agents-trace")

    # a second turn in the same session: the model sees the first turn
    ask(page, FOLLOW_UP)
    expect(page.get_by_test_id("agent-answer")).to_have_count(2)
    # the sheet (looked up before the first step) says 3 m: the answer cites it
    expect(page.get_by_test_id("agent-answer").last).to_have_text(FOLLOW_UP_ANSWER + "[1]")
    expect(page.get_by_test_id("agent-session")).to_have_attribute("data-session-id", session)
    second = page.get_by_test_id("trace").last
    model = second.get_by_test_id("trace-model").first
    model.locator("summary").click()
    prompt = model.get_by_test_id("trace-model-input")
    expect(prompt).to_be_visible()
    expect(prompt).to_contain_text(QUESTION)
    expect(prompt).to_contain_text(ANSWER)
    expect(second.get_by_test_id("trace-final")).to_contain_text(FOLLOW_UP_ANSWER)
    # a trace folds away
    second.locator("summary").first.click()
    expect(second.get_by_test_id("trace-step").first).to_be_hidden()

    # a new session starts empty, with another id
    page.get_by_test_id("agent-new-session").click()
    expect(page.get_by_test_id("agent-turn")).to_have_count(0)
    expect(page.get_by_test_id("agent-session")).not_to_have_attribute("data-session-id", session)


def test_return_of_control_form(pg_page: PlaygroundPage, ba: Any) -> None:
    agent_id = make_agent(ba, "order-agent")
    function_group(
        ba,
        agent_id,
        "orders",
        "order_parts",
        executor={"customControl": "RETURN_CONTROL"},
        parameters=ORDER_PARAMS,
    )
    prepare(ba, agent_id)

    page = pg_page.page
    pg_page.goto(f"#/agents/{agent_id}")
    expect(page.get_by_test_id("agent-group-executor")).to_have_text("return of control")
    ask(page, "銅線を5つ注文して")
    form = page.get_by_test_id("rc-form")
    expect(form).to_be_visible()
    expect(form.get_by_test_id("rc-function")).to_have_text("orders-group › order_parts")
    expect(form.get_by_test_id("rc-param")).to_have_text(["material_name=銅線", "quantity=5"])
    expect(page.get_by_test_id("agent-answer")).to_be_hidden()
    expect(page.get_by_test_id("trace-return-control")).to_contain_text("order_parts")
    expect(form.get_by_test_id("rc-confirm")).to_have_count(0)

    result = form.get_by_test_id("rc-result")
    expect(result).to_be_focused()
    result.fill("ordered; purchase order PO-77")
    pg_page.shot("agents-return-control")
    form.get_by_test_id("rc-submit").click()
    expect(page.get_by_test_id("agent-answer")).to_have_text("注文番号は PO-77 です。")
    expect(page.get_by_test_id("rc-form")).to_have_count(0)
    expect(page.get_by_test_id("rc-sent")).to_contain_text("PO-77")
    # the result came back as the action's observation, then the final step
    trace = page.get_by_test_id("trace")
    expect(trace.get_by_test_id("trace-observation")).to_contain_text("PO-77")
    expect(trace.get_by_test_id("trace-final")).to_contain_text("PO-77")
    assert agent_tools.CALLS == []  # the caller ran it, not haniwa


def test_confirmation_confirm_then_deny(pg_page: PlaygroundPage, ba: Any) -> None:
    agent_id = make_agent(ba, "careful-agent")
    function_group(
        ba, agent_id, "orders", "order_parts", requireConfirmation="ENABLED", parameters=ORDER_PARAMS
    )
    prepare(ba, agent_id)

    page = pg_page.page
    pg_page.goto("#/agents")
    page.get_by_test_id("agents-item").click()
    expect(page.get_by_test_id("agent-function")).to_contain_text("asks for confirmation")
    ask(page, "銅線を5つ注文して")
    form = page.get_by_test_id("rc-form")
    expect(form.get_by_test_id("rc-param")).to_have_text(["material_name=銅線", "quantity=5"])
    expect(form.get_by_test_id("rc-result")).to_have_count(0)
    form.get_by_test_id("rc-confirm").click()
    expect(page.get_by_test_id("agent-answer")).to_have_text("銅線を 5 個注文しました。")
    assert agent_tools.CALLS == [("order_parts", {"material_name": "銅線", "quantity": 5})]

    ask(page, "もう一度注文して")
    page.get_by_test_id("rc-form").get_by_test_id("rc-deny").click()
    expect(page.get_by_test_id("agent-answer").last).to_have_text("注文しませんでした。")
    expect(page.get_by_test_id("rc-sent").last).to_have_text("Denied.")
    assert len(agent_tools.CALLS) == 1  # denied: not run


def test_prepare_from_the_page_and_errors_in_the_turn(pg_page: PlaygroundPage, ba: Any) -> None:
    agent_id = make_agent(ba, "draft-agent")  # created, not prepared yet
    page = pg_page.page
    pg_page.goto(f"#/agents/{agent_id}")
    expect(page.get_by_test_id("agent-status")).to_have_text("NOT_PREPARED")
    expect(page.get_by_test_id("agent-not-prepared")).to_be_visible()
    # InvokeAgent refuses an unprepared draft: the error shows in the turn
    pg_page.expect_http_error(r"400 POST /agents/\w+/agentAliases/TSTALIASID/sessions/[\w-]+/text")
    ask(page, "こんにちは")
    expect(page.get_by_test_id("agent-error")).to_contain_text("prepared")
    expect(page.get_by_test_id("agent-send")).to_be_enabled()

    page.get_by_test_id("agent-prepare").click()
    expect(page.get_by_test_id("agent-status")).to_have_text("PREPARED")
    expect(page.get_by_test_id("agents-item-status")).to_have_text("PREPARED")
    expect(page.get_by_test_id("agent-not-prepared")).to_be_hidden()
    ask(page, "こんにちは")
    expect(page.get_by_test_id("agent-answer").last).to_have_text("こんにちは、工場の案内係です。")
    assert ba.get_agent(agentId=agent_id)["agent"]["agentStatus"] == "PREPARED"


def test_japanese_and_narrow_window(chromium: Any, server: str, ba: Any) -> None:
    agent_id = make_agent(ba, "greeter")
    prepare(ba, agent_id)
    with open_page(chromium, server, width=420, height=800) as pg:
        page = pg.page
        pg.goto("#/agents")
        page.get_by_test_id("lang-toggle").click()
        page.get_by_test_id("agents-item").click()
        expect(page.get_by_test_id("agent-new-session")).to_have_text("新しいセッション")
        expect(page.get_by_test_id("agent-action-groups")).to_contain_text("アクショングループはありません")
        ask(page, "こんにちは")
        answer = page.get_by_test_id("agent-answer")
        expect(answer).to_have_text("こんにちは、工場の案内係です。")
        expect(answer).to_be_in_viewport()
        expect(page.get_by_test_id("trace-summary")).to_contain_text("1 ステップ")
        # nothing sticks out sideways
        assert page.evaluate("document.documentElement.scrollWidth") <= 420
        wide = page.evaluate(
            "Array.from(document.querySelectorAll('#panel-agents *'))"
            ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && e.offsetParent)"
            ".map(e => e.className || e.tagName).slice(0, 5)"
        )
        assert wide == []
        pg.shot("agents-narrow")
