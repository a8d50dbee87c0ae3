"""The playground's Customization panel (``#/customization``) in headless Chromium against a real server:
an out-of-range hyperparameter is refused with the range shown, then a real (short) LoRA job trains while
the loss curve grows, the before/after table renders, and "deploy and try" opens Chat on the deployment's
ARN, which answers.

The training is real (trainer child, PEFT, the adapter converted to a llama.cpp LoRA GGUF, the comparison
through llama.cpp) on a small randomly initialised Qwen2 put where the dequantized base is cached, so it
trains in seconds. It keeps the bundled 0.5B's attention shapes (hidden 896, 14 heads, 2 KV heads) with
2 layers, so the adapter it trains (q/k/v/o of blocks 0–1) loads on the real 0.5B GGUF that serves it;
it needs the bundled 0.5B's GGUF and tokenizer (hence the ``model`` marker).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from playwright.sync_api import expect

from haniwa.runtime import bundled
from tests.browser import PlaygroundPage
from tests.conftest import client_kwargs
from tests.needs import MODELS_DIR, bundled_weights_missing, need

BUNDLE = "qwen2.5-coder-0.5b"
BASE = "amazon.nova-micro-v1:0"  # resolves to the bundled 0.5B with profile "fast"


def _small_base(models: Path) -> None:
    """models/<gguf> (a link to the real one) and models/hf/<bundle>: 2 layers shaped like the 0.5B's."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    gguf = bundled.ensure(BUNDLE, MODELS_DIR)
    models.mkdir(exist_ok=True)
    (models / gguf.name).symlink_to(gguf)
    cached = MODELS_DIR / "hf" / BUNDLE
    tok = (
        AutoTokenizer.from_pretrained(str(cached))
        if (cached / "tokenizer.json").exists()
        else AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    )
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=896,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    folder = models / "hf" / BUNDLE
    Qwen2ForCausalLM(cfg).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))


def tid(pg: PlaygroundPage, testid: str) -> Any:
    return pg.page.get_by_test_id(testid)


def test_form_shows_the_documented_ranges_and_api_errors(pg_page: PlaygroundPage, server: str) -> None:
    """No training: the ranges follow the base model's family and a refused job shows the API's message."""
    pg = pg_page
    pg.goto("#/customization")
    tid(pg, "cust-empty").wait_for()
    tid(pg, "cust-base").select_option(BASE)
    expect(tid(pg, "cust-family")).to_contain_text("Amazon Nova")
    expect(tid(pg, "cust-range-epochCount")).to_have_text("1 – 5 (default 2)")
    assert tid(pg, "cust-hp-epochCount").get_attribute("max") == "5"
    tid(pg, "cust-base").select_option("anthropic.claude-3-haiku-20240307-v1:0")
    expect(tid(pg, "cust-family")).to_contain_text("Anthropic Claude 3 Haiku")
    expect(tid(pg, "cust-range-batchSize")).to_have_text("4 – 256 (default 32)")
    tid(pg, "cust-name-input").fill("refused")
    tid(pg, "cust-training").fill("s3://nowhere/train.jsonl")
    tid(pg, "cust-output").fill("s3://nowhere/out/")
    pg.expect_http_error(r"400 POST .*/model-customization-jobs")
    tid(pg, "cust-create").click()
    # the echo model behind that id is no bundled model: the API says which models can be customized
    expect(tid(pg, "cust-form-error")).to_contain_text("cannot be customized")
    expect(tid(pg, "cust-empty")).to_be_visible()
    tid(pg, "lang-toggle").click()
    expect(tid(pg, "cust-range-batchSize")).to_have_text("4 – 256 (既定 32)")
    pg.shot("customization-form")


@pytest.mark.model
def test_train_watch_compare_deploy_and_chat(pg_page: PlaygroundPage, server: str, home: Path) -> None:
    if bundled_weights_missing():
        need("bundled weights", str(bundled_weights_missing()))
    _small_base(home / "models")
    pg = pg_page
    s3 = boto3.client("s3", **client_kwargs(server))
    s3.create_bucket(Bucket="cust-panel")
    train = [
        {"prompt": f"埴輪 {i} 号について教えて", "completion": f"埴輪 {i} 号は古墳に並べられました。"}
        for i in range(12)
    ]
    valid = [{"prompt": "埴輪とは何ですか？", "completion": "古墳に並べられた素焼きの焼き物です。"}]
    for key, rows in (("train.jsonl", train), ("valid.jsonl", valid)):
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        s3.put_object(Bucket="cust-panel", Key=key, Body=body.encode())

    pg.goto("#/customization")
    tid(pg, "cust-empty").wait_for()
    tid(pg, "cust-base").select_option(BASE)
    expect(tid(pg, "cust-family")).to_contain_text("Amazon Nova")
    expect(tid(pg, "cust-range-epochCount")).to_have_text(re.compile(r"1 – 5"))
    tid(pg, "cust-name-input").fill("panel-tune")
    tid(pg, "cust-training").fill("s3://cust-panel/train.jsonl")
    tid(pg, "cust-validation").fill("s3://cust-panel/valid.jsonl")
    tid(pg, "cust-output").fill("s3://cust-panel/out/")
    # out of range: the API's ValidationException is shown with the documented range
    tid(pg, "cust-hp-epochCount").evaluate("e => { e.removeAttribute('max'); }")
    tid(pg, "cust-hp-epochCount").fill("9")
    pg.expect_http_error(r"400 POST .*/model-customization-jobs")
    tid(pg, "cust-create").click()
    expect(tid(pg, "cust-form-error")).to_contain_text("epochCount must be between 1 and 5")
    tid(pg, "cust-hp-epochCount").fill("2")
    tid(pg, "cust-hp-learningRate").fill("0.0001")
    tid(pg, "cust-create").click()

    detail = tid(pg, "cust-detail")
    expect(detail).to_be_visible(timeout=30_000)
    row = tid(pg, "cust-row").filter(has_text="panel-tune")
    expect(row.get_by_test_id("cust-status")).to_have_text("InProgress")
    # the curve grows while the job trains (polled once a second)
    pg.page.wait_for_function(
        "() => { const d = document.querySelector('[data-testid=cust-detail]');"
        " const c = d && d.querySelector('[data-testid=cust-chart]');"
        " return d && d.dataset.status === 'InProgress' && c && Number(c.dataset.points) >= 2; }",
        timeout=300_000,
    )
    expect(row.get_by_test_id("cust-steps")).to_have_text(re.compile(r"^[1-9]\d* / 24$"))
    expect(detail).to_have_attribute("data-status", "Completed", timeout=600_000)
    chart = tid(pg, "cust-chart")
    expect(chart).to_have_attribute("data-points", "24")
    assert chart.locator("circle[data-step]").count() == 24
    expect(tid(pg, "cust-chart-valid")).to_be_visible()
    expect(row.get_by_test_id("cust-steps")).to_have_text("24 / 24")

    # before / after: the validation prompt and the Japanese checks, base vs base + adapter
    rows = tid(pg, "cust-compare-row")
    expect(rows).to_have_count(4)
    assert "埴輪とは何ですか" in rows.first.inner_text()
    bedrock = boto3.client("bedrock", **client_kwargs(server))
    arn = bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"][0]["jobArn"]
    job_id = arn.rsplit("/", 1)[-1]
    import httpx

    cmp = httpx.get(f"{server}/haniwa/v1/customization/jobs/{job_id}", timeout=30).json()["comparison"]
    for i, want in enumerate(cmp["rows"]):
        r = rows.nth(i)
        assert r.get_by_test_id("cust-before").inner_text().strip() == want["base"].strip()
        assert r.get_by_test_id("cust-after").inner_text().strip() == want["custom"].strip()
        assert r.get_attribute("data-flags") == " ".join(want["flags"])
        assert ("cust-regression" in (r.get_attribute("class") or "")) == bool(want["flags"])
    expect(tid(pg, "cust-regressions")).to_contain_text(f"{cmp['regressions']} of 4")
    tid(pg, "cust-chart").scroll_into_view_if_needed()
    pg.shot("customization-curve")
    tid(pg, "cust-compare").scroll_into_view_if_needed()
    pg.shot("customization-before-after")

    # deploy and try: a custom model deployment, then Chat with its ARN selected, which answers
    tid(pg, "cust-deploy-kind").select_option("deployment")
    tid(pg, "cust-deploy").click()
    pg.page.wait_for_url(re.compile(r"#/chat$"))
    deployments = bedrock.list_custom_model_deployments()["modelDeploymentSummaries"]
    assert len(deployments) == 1
    dep_arn = deployments[0]["customModelDeploymentArn"]
    # ListFoundationModels names the deployment by its id; Chat selects that entry
    expect(tid(pg, "chat-model")).to_have_value(dep_arn.rsplit("/", 1)[-1], timeout=30_000)
    tid(pg, "chat-input").fill("日本の首都はどこですか。")
    tid(pg, "chat-send").click()
    pg.page.wait_for_function(
        "() => { const m = [...document.querySelectorAll('[data-testid=msg-assistant]')].pop();"
        " return m && m.dataset.streaming === 'false' && m.textContent.trim().length > 0; }",
        timeout=120_000,
    )
    pg.shot("customization-deployed-chat")
