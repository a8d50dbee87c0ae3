"""The playground's Guardrails panel (``#/guardrails``) in headless Chromium against a real server: edit
and save the DRAFT, create a version, try a text with its matches highlighted, and list the decisions that
flip between the DRAFT and the latest version (checked against boto3's view of the same guardrail)."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import expect

from tests.browser import PlaygroundPage


def test_guardrails_panel(pg_page: PlaygroundPage, bedrock: Any) -> None:
    page = pg_page.page
    pg_page.goto("#/guardrails")
    config = page.get_by_test_id("gr-config")
    expect(config).to_have_value(re.compile("my-guardrail"))  # no guardrail yet: a sample to start from
    page.get_by_test_id("gr-create").click()
    expect(page.get_by_test_id("gr-pick")).to_contain_text("my-guardrail")
    gid = bedrock.list_guardrails()["guardrails"][0]["id"]
    page.get_by_test_id("gr-version").click()
    expect(page.locator(".toast")).to_contain_text("1")

    # edit the DRAFT: drop the custom word, mask e-mail as well
    cfg = json.loads(config.input_value())
    cfg["wordPolicyConfig"] = {"managedWordListsConfig": [{"type": "PROFANITY"}]}
    cfg["sensitiveInformationPolicyConfig"]["piiEntitiesConfig"].append(
        {"type": "EMAIL", "action": "ANONYMIZE"}
    )
    config.fill(json.dumps(cfg, ensure_ascii=False))
    page.get_by_test_id("gr-save").click()
    expect(page.locator(".toast")).to_contain_text("DRAFT")
    got = bedrock.get_guardrail(guardrailIdentifier=gid, guardrailVersion="DRAFT")
    assert [p["type"] for p in got["sensitiveInformationPolicy"]["piiEntities"]] == ["PHONE", "EMAIL"]

    # try a text: both matches highlighted, the masked output shown
    page.get_by_test_id("gr-text").fill("電話は090-1234-5678、メールは taro@example.jp です")
    page.get_by_test_id("gr-apply").click()
    expect(page.get_by_test_id("gr-outcome")).to_contain_text("MASKED → 電話は{PHONE}、メールは {EMAIL} です")
    expect(page.get_by_test_id("gr-mark")).to_have_text(["090-1234-5678", "taro@example.jp"])

    # DRAFT vs version 1: the custom word no longer blocks, the e-mail is now masked, the rest is unchanged
    page.get_by_test_id("gr-texts").fill(
        "競合他社より安い？\ntaro@example.jp まで\n090-1234-5678\n今日は晴れ"
    )
    page.get_by_test_id("gr-compare").click()
    expect(page.get_by_test_id("gr-flip-count")).to_contain_text(
        "2 of 4 decisions flip between version 1 and DRAFT"
    )
    flips = page.get_by_test_id("gr-flip")
    expect(flips.nth(0)).to_contain_text("BLOCKED")
    expect(flips.nth(0).get_by_test_id("gr-mark")).to_have_text("競合他社")
    expect(flips.nth(1).get_by_test_id("gr-mark")).to_have_text("taro@example.jp")
    pg_page.shot("guardrails-panel")
