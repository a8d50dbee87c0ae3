"""The playground's Knowledge-bases panel (``#/kb``) in headless Chromium, against a real server with the
``hash`` embedder (Titan ids) and the ``echo`` chat model (Anthropic ids), plus the ingestion job's
``progress`` extension the panel's sync bar reads, checked through boto3 and raw HTTP."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from playwright.sync_api import expect

from tests.browser import PlaygroundPage, open_page
from tests.conftest import client_kwargs
from tests.test_knowledge_api import make_kb, sync

ROBOT_MD = """# ハニワロボ HR-7 製品仕様書

ハニワロボ HR-7 は工場で働く架空の組立ロボットです。Haniwa Robot HR-7 is a fictional assembly robot.

## 材料

| 材料 | 数量 |
|---|---|
| アルミニウム | 12 kg |
| 銅線 | 3 m |
| 強化ガラス | 2 枚 |
| リチウム電池 | 1 個 |

## 製造手順

まずアルミニウムの骨格を溶接します。次に銅線で配線します。最後に強化ガラスを取り付けます。
"""
TEA_TXT = """Green tea

Green tea is made from unoxidised leaves of Camellia sinensis. Matcha is a powdered green tea used in
the Japanese tea ceremony. 抹茶は茶道で使われる粉末の緑茶です。
"""
WEATHER_TXT = "東京の天気\n\n東京の天気は晴れのち曇りです。明日の最高気温は二十度の予報です。"
FAQ_MD = """# 返品について

返品は購入後30日以内に受け付けます。送料はお客様のご負担となります。
Returns are accepted within 30 days of purchase.
"""
SHIPPING_TXT = "Shipping\n\nWe ship worldwide. Orders leave the warehouse within two business days."
PARTS_CSV = "part,quantity\nservo motor,6\ncamera module,2\n"

BUCKET, PREFIX = "robot-docs", "specs/"
RAG_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
EMBED = "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"


@pytest.fixture
def folder(home: Path) -> Path:
    """Three documents in the folder that stands in for s3://robot-docs/specs/."""
    root = home / "s3" / BUCKET / PREFIX
    root.mkdir(parents=True)
    (root / "robot.md").write_text(ROBOT_MD, encoding="utf-8")
    (root / "tea.txt").write_text(TEA_TXT, encoding="utf-8")
    (root / "weather.txt").write_text(WEATHER_TXT, encoding="utf-8")
    return root


@pytest.fixture
def agent(server: str) -> Any:
    return boto3.client("bedrock-agent", **client_kwargs(server))


def tid(pg: PlaygroundPage, testid: str) -> Any:
    return pg.page.get_by_test_id(testid)


def create_from_folder(pg: PlaygroundPage, name: str, prefix: str = PREFIX) -> None:
    tid(pg, "kb-name").fill(name)
    tid(pg, "kb-source-folder").check()
    tid(pg, "kb-bucket").fill(BUCKET)
    tid(pg, "kb-prefix").fill(prefix)
    tid(pg, "kb-create").click()


# -- the backend extension the progress bar needs ------------------------------------------------------
def test_ingestion_job_reports_documents_listed(server: str, agent: Any, folder: Path) -> None:
    kb_id = make_kb(agent, "progress")
    ds_id = agent.create_data_source(
        knowledgeBaseId=kb_id,
        name="docs",
        dataSourceConfiguration={
            "type": "S3",
            "s3Configuration": {"bucketArn": f"arn:aws:s3:::{BUCKET}", "inclusionPrefixes": [PREFIX]},
        },
    )["dataSource"]["dataSourceId"]
    # boto3 still parses the response: the extra member is skipped, the Bedrock ones are intact
    job = sync(agent, kb_id, ds_id, timeout=30)
    job_id = job["ingestionJobId"]
    assert job["status"] == "COMPLETE", job
    assert "progress" not in job
    assert job["statistics"]["numberOfNewDocumentsIndexed"] == 3
    assert "listed" not in json.dumps(job["statistics"], default=str)

    path = f"/knowledgebases/{kb_id}/datasources/{ds_id}/ingestionjobs/"
    with urllib.request.urlopen(f"{server}{path}{job_id}") as resp:
        raw = json.load(resp)["ingestionJob"]
    assert raw["progress"] == {"documentsListed": 3, "documentsScanned": 3}
    assert set(raw["statistics"]) == {
        "numberOfDocumentsScanned",
        "numberOfMetadataDocumentsScanned",
        "numberOfNewDocumentsIndexed",
        "numberOfModifiedDocumentsIndexed",
        "numberOfMetadataDocumentsModified",
        "numberOfDocumentsDeleted",
        "numberOfDocumentsFailed",
    }
    request = urllib.request.Request(f"{server}{path}", data=b"{}", method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request) as resp:
        summaries = json.load(resp)["ingestionJobSummaries"]
    assert summaries[0]["progress"] == {"documentsListed": 3, "documentsScanned": 3}
    listed = agent.list_ingestion_jobs(knowledgeBaseId=kb_id, dataSourceId=ds_id)["ingestionJobSummaries"]
    assert listed[0]["ingestionJobId"] == job_id and "progress" not in listed[0]

    (folder / "tea.txt").unlink()  # a re-sync lists one fewer: the total follows the listing
    again = agent.start_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id)["ingestionJob"]
    deadline = time.monotonic() + 30
    while again["status"] not in ("COMPLETE", "FAILED") and time.monotonic() < deadline:
        time.sleep(0.05)
        again = agent.get_ingestion_job(
            knowledgeBaseId=kb_id, dataSourceId=ds_id, ingestionJobId=again["ingestionJobId"]
        )["ingestionJob"]
    with urllib.request.urlopen(f"{server}{path}{again['ingestionJobId']}") as resp:
        raw = json.load(resp)["ingestionJob"]
    assert raw["status"] == "COMPLETE"
    assert raw["progress"] == {"documentsListed": 2, "documentsScanned": 2}
    assert raw["statistics"]["numberOfDocumentsDeleted"] == 1


# -- the panel -----------------------------------------------------------------------------------------
def test_folder_kb_sync_retrieve_and_ask(pg_page: PlaygroundPage, folder: Path, agent: Any) -> None:
    pg = pg_page
    page = pg.page
    pg.goto("#/kb")
    tid(pg, "kb-list-empty").wait_for()
    assert tid(pg, "kb-embedding").input_value() == "amazon.titan-embed-text-v2:0"
    assert tid(pg, "kb-chunking").input_value() == "FIXED_SIZE"
    assert "$HANIWA_S3_ROOT" in tid(pg, "kb-folder-help").inner_text()
    tid(pg, "kb-max-tokens").fill("200")
    tid(pg, "kb-name").fill("robot-specs")
    tid(pg, "kb-bucket").fill(f"s3://{BUCKET}/{PREFIX}")  # an S3 URI is split into bucket and prefix
    tid(pg, "kb-bucket").blur()
    assert tid(pg, "kb-bucket").input_value() == BUCKET
    assert tid(pg, "kb-prefix").input_value() == PREFIX
    assert "s3://robot-docs/specs/" in tid(pg, "kb-folder-preview").inner_text()
    tid(pg, "kb-create").click()

    page.wait_for_url("**/#/kb/*")
    kb_id = page.url.rsplit("/", 1)[-1]
    assert tid(pg, "kb-detail-name").inner_text() == "robot-specs"
    assert tid(pg, "kb-detail-id").inner_text() == kb_id
    assert tid(pg, "kb-detail-model").inner_text() == "amazon.titan-embed-text-v2:0"
    assert tid(pg, "kb-ds-location").inner_text() == "s3://robot-docs/specs/"
    tid(pg, "kb-never-synced").wait_for()
    item = tid(pg, "kb-item").filter(has_text="robot-specs")
    item.get_by_test_id("kb-item-model").filter(has_text="amazon.titan-embed-text-v2:0").wait_for()
    assert "folder (S3)" in item.get_by_test_id("kb-item-sources").inner_text()
    # what the panel sent is what boto3 reads back
    ds = agent.list_data_sources(knowledgeBaseId=kb_id)["dataSourceSummaries"][0]
    cfg = agent.get_data_source(knowledgeBaseId=kb_id, dataSourceId=ds["dataSourceId"])["dataSource"]
    assert cfg["dataSourceConfiguration"]["s3Configuration"] == {
        "bucketArn": "arn:aws:s3:::robot-docs",
        "inclusionPrefixes": ["specs/"],
    }
    chunking = cfg["vectorIngestionConfiguration"]["chunkingConfiguration"]
    assert chunking["fixedSizeChunkingConfiguration"] == {"maxTokens": 200, "overlapPercentage": 20}

    # sync: record every value the bar shows on its way to 100
    page.evaluate(
        """() => {
        window.__kbProgress = [];
        new MutationObserver((records) => {
          for (const r of records) window.__kbProgress.push(Number(r.target.getAttribute('aria-valuenow')));
        }).observe(document.body, {subtree: true, attributes: true, attributeFilter: ['aria-valuenow']});
    }"""
    )
    tid(pg, "kb-sync").click()
    status = tid(pg, "kb-status")
    expect(tid(pg, "kb-status")).to_have_attribute("data-status", "COMPLETE", timeout=30_000)
    assert status.inner_text() == "COMPLETE"
    bar = tid(pg, "kb-progress")
    assert bar.get_attribute("role") == "progressbar"
    assert bar.get_attribute("aria-valuenow") == "100"
    assert tid(pg, "kb-progress-label").inner_text().startswith("100%")
    seen = page.evaluate("window.__kbProgress")
    assert seen and seen[-1] == 100 and seen == sorted(seen), seen
    assert tid(pg, "kb-stat-scanned").inner_text() == "3"
    assert tid(pg, "kb-stat-new").inner_text() == "3"
    assert tid(pg, "kb-stat-modified").inner_text() == "0"
    assert tid(pg, "kb-stat-deleted").inner_text() == "0"
    assert tid(pg, "kb-stat-failed").inner_text() == "0"
    assert tid(pg, "kb-failures").is_hidden()
    expect(tid(pg, "kb-sync")).to_be_enabled()
    page.wait_for_function(  # the bar's width animates: shoot once it is full
        """() => {
        const p = document.querySelector('[data-testid=kb-progress]');
        return p.querySelector('.bar').getBoundingClientRect().width >= p.getBoundingClientRect().width - 1;
    }"""
    )
    pg.shot("kb-sync")

    # retrieve a Japanese query: the materials table of the robot sheet comes first
    tid(pg, "kb-query").fill("ロボットの材料と数量は？")
    tid(pg, "kb-num-results").fill("3")
    tid(pg, "kb-search-type").select_option("HYBRID")
    tid(pg, "kb-retrieve").click()
    first = tid(pg, "kb-result").first
    first.wait_for()
    assert tid(pg, "kb-result").count() == 3
    assert first.get_by_test_id("kb-result-source").inner_text() == "s3://robot-docs/specs/robot.md"
    chunk = first.get_by_test_id("kb-result-text").inner_text()
    assert "アルミニウム" in chunk and "12 kg" in chunk
    score = float(first.get_by_test_id("kb-score").get_attribute("aria-valuenow"))
    assert 0 < score <= 1
    assert float(first.get_by_test_id("kb-score-value").inner_text()) == pytest.approx(score, abs=1e-3)
    scores = [float(s) for s in tid(pg, "kb-score-value").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)

    # retrieve and generate: the echo model repeats the question; its citations point at the sheet
    tid(pg, "kb-rag-model").select_option(RAG_MODEL)
    tid(pg, "kb-rag-question").fill("ハニワロボ HR-7 の材料とその数量を教えてください。")
    tid(pg, "kb-rag-ask").click()
    answer = tid(pg, "kb-answer")
    answer.wait_for()
    assert "ハニワロボ HR-7" in answer.inner_text()
    markers = answer.get_by_test_id("kb-citation")
    assert markers.count() >= 1
    marker = markers.first
    n = marker.get_attribute("data-passage")
    assert marker.inner_text() == f"[{n}]"
    answer.evaluate("el => el.scrollIntoView({block: 'start'})")
    marker.click()
    passage = page.locator(f"[data-testid=kb-passage][data-passage='{n}']")
    expect(passage).to_have_attribute("data-active", "true")
    assert passage.get_by_test_id("kb-passage-source").inner_text() == "s3://robot-docs/specs/robot.md"
    assert "アルミニウム" in passage.get_by_test_id("kb-passage-text").inner_text()
    assert page.locator(".kb-cited.active").count() == 1
    expect(passage).to_be_in_viewport()
    assert tid(pg, "kb-session").inner_text()
    pg.shot("kb-rag")


def test_upload_files_indexed_and_retrievable(pg_page: PlaygroundPage, tmp_path: Path, agent: Any) -> None:
    pg = pg_page
    page = pg.page
    files = {"faq.md": FAQ_MD, "shipping.txt": SHIPPING_TXT, "parts.csv": PARTS_CSV}
    paths = []
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        paths.append(str(tmp_path / name))
    pg.goto("#/kb")
    tid(pg, "kb-name").fill("support_docs")
    tid(pg, "kb-chunking").select_option("NONE")
    tid(pg, "kb-source-upload").check()
    assert tid(pg, "kb-bucket").is_hidden()
    tid(pg, "kb-files").set_input_files(paths)
    assert tid(pg, "kb-picked-file").count() == 3
    tid(pg, "kb-create").click()

    page.wait_for_url("**/#/kb/*")
    kb_id = page.url.rsplit("/", 1)[-1]
    assert tid(pg, "kb-sync").is_disabled()  # nothing to sync: uploads are indexed as they arrive
    rows = tid(pg, "kb-file")
    page.wait_for_function(
        """() => {
        const s = [...document.querySelectorAll('[data-testid=kb-file-status]')].map((e) => e.dataset.status);
        return s.length === 3 && s.every((x) => x === 'INDEXED');
    }""",
        timeout=30_000,
    )
    assert sorted(rows.get_by_test_id("kb-file-name").all_inner_texts()) == sorted(files)
    ds_id = agent.list_data_sources(knowledgeBaseId=kb_id)["dataSourceSummaries"][0]["dataSourceId"]
    docs = agent.list_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id)["documentDetails"]
    assert sorted(d["identifier"]["custom"]["id"] for d in docs) == sorted(files)
    assert {d["status"] for d in docs} == {"INDEXED"}

    tid(pg, "kb-query").fill("返品の期限は？")
    tid(pg, "kb-query").press("Enter")
    first = tid(pg, "kb-result").first
    first.wait_for()
    assert first.get_by_test_id("kb-result-source").inner_text() == "faq.md"
    assert "30日以内" in first.get_by_test_id("kb-result-text").inner_text()

    # more files into the same data source, one of them unreadable: each row tells its own outcome
    (tmp_path / "extra.md").write_text("# Warranty\n\nThe robot has a two-year warranty.", encoding="utf-8")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    tid(pg, "kb-add-files").set_input_files([str(tmp_path / "extra.md"), str(tmp_path / "broken.pdf")])
    page.wait_for_function(
        """() => {
        const s = [...document.querySelectorAll('[data-testid=kb-file-status]')].map((e) => e.dataset.status);
        return s.length === 5 && s.every((x) => x === 'INDEXED' || x === 'FAILED');
    }""",
        timeout=30_000,
    )
    status = {
        row.get_by_test_id("kb-file-name").inner_text(): row.get_by_test_id("kb-file-status").get_attribute(
            "data-status"
        )
        for row in rows.all()
    }
    assert status == {**dict.fromkeys(files, "INDEXED"), "extra.md": "INDEXED", "broken.pdf": "FAILED"}
    broken = rows.filter(has_text="broken.pdf")
    reason = broken.get_by_test_id("kb-file-reason").inner_text()
    assert "broken.pdf" in reason and "broken.pdf.pdf" not in reason, reason
    tid(pg, "kb-query").fill("warranty")
    tid(pg, "kb-retrieve").click()
    expect(tid(pg, "kb-result").first.get_by_test_id("kb-result-source")).to_have_text("extra.md")

    # delete it from the page
    tid(pg, "kb-delete").click()
    tid(pg, "kb-delete-confirm").click()
    page.wait_for_url("**/#/kb")
    tid(pg, "kb-list-empty").wait_for()
    assert agent.list_knowledge_bases()["knowledgeBaseSummaries"] == []


def test_bad_input_shows_clear_errors(pg_page: PlaygroundPage, folder: Path, agent: Any) -> None:
    pg = pg_page
    page = pg.page
    pg.goto("#/kb")
    error = tid(pg, "kb-form-error")
    # no name: refused in the page, before any request
    tid(pg, "kb-create").click()
    assert error.is_visible()
    assert "Enter a name" in error.inner_text()
    assert tid(pg, "kb-name").get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.dataset.testid") == "kb-name"
    # Bedrock's name pattern
    tid(pg, "kb-name").fill("robot specs")
    tid(pg, "kb-create").click()
    assert "only contain letters, digits" in error.inner_text()
    # no files picked for an upload source
    tid(pg, "kb-name").fill("robot-specs")
    tid(pg, "kb-source-upload").check()
    tid(pg, "kb-create").click()
    assert "at least one file" in error.inner_text()

    # a prefix leaving the bucket folder: the server refuses the data source (400) and the page says so;
    # the knowledge base made a moment before is taken back
    pg.expect_http_error(r"^400 PUT /knowledgebases/\w+/datasources/$")
    create_from_folder(pg, "robot-specs", prefix="../outside/")
    expect(error).to_contain_text("data source was refused")
    text = error.inner_text()
    assert ".." in text or "outside" in text, text
    assert page.url.endswith("#/kb")
    assert agent.list_knowledge_bases()["knowledgeBaseSummaries"] == []
    assert tid(pg, "kb-create").is_enabled()

    # fixed: the same form now creates it
    tid(pg, "kb-prefix").fill(PREFIX)
    tid(pg, "kb-create").click()
    page.wait_for_url("**/#/kb/*")
    assert [k["name"] for k in agent.list_knowledge_bases()["knowledgeBaseSummaries"]] == ["robot-specs"]


def test_sync_failures_are_shown(pg_page: PlaygroundPage, folder: Path) -> None:
    pg = pg_page
    page = pg.page
    # a document whose metadata sidecar is broken: the job completes, that document fails, and says why
    (folder / "robot.md.metadata.json").write_text("{not json", encoding="utf-8")
    pg.goto("#/kb")
    create_from_folder(pg, "partly")
    page.wait_for_url("**/#/kb/*")
    tid(pg, "kb-sync").click()
    expect(tid(pg, "kb-status")).to_have_attribute("data-status", "COMPLETE", timeout=30_000)
    assert tid(pg, "kb-stat-failed").inner_text() == "1"
    assert tid(pg, "kb-stat-new").inner_text() == "2"
    failure = tid(pg, "kb-failure")
    assert failure.count() == 1
    assert "s3://robot-docs/specs/robot.md" in failure.inner_text()
    assert "metadata" in failure.inner_text()

    # a bucket folder that does not exist lists nothing, like an empty bucket: the page says where it looked
    tid(pg, "kb-new").click()
    tid(pg, "kb-name").fill("missing")
    tid(pg, "kb-bucket").fill("no-such-bucket")
    tid(pg, "kb-prefix").fill("docs/")
    tid(pg, "kb-create").click()
    page.wait_for_url("**/#/kb/*")
    expect(tid(pg, "kb-detail-name")).to_have_text("missing")
    tid(pg, "kb-sync").click()
    expect(tid(pg, "kb-status")).to_have_attribute("data-status", "COMPLETE", timeout=30_000)
    assert tid(pg, "kb-progress").get_attribute("aria-valuenow") == "100"
    assert tid(pg, "kb-stat-scanned").inner_text() == "0"
    hint = tid(pg, "kb-empty-source")
    assert "s3://no-such-bucket/docs/" in hint.inner_text()
    assert "$HANIWA_S3_ROOT/no-such-bucket/docs/" in hint.inner_text()
    assert tid(pg, "kb-failures").is_hidden()

    # reopening a knowledge base shows its last job again, failure reasons included
    tid(pg, "kb-item").filter(has_text="partly").click()
    expect(tid(pg, "kb-detail-name")).to_have_text("partly")
    expect(tid(pg, "kb-failure")).to_contain_text("robot.md")
    assert tid(pg, "kb-stat-failed").inner_text() == "1"
    assert tid(pg, "kb-empty-source").is_hidden()


@pytest.fixture
def narrow_page(chromium: Any, server: str) -> Iterator[PlaygroundPage]:
    with open_page(chromium, server, width=420, height=800) as pg:
        yield pg


def test_narrow_window_and_japanese(narrow_page: PlaygroundPage, folder: Path) -> None:
    pg = narrow_page
    page = pg.page
    pg.goto("#/kb")
    tid(pg, "lang-toggle").click()
    assert tid(pg, "kb-new").inner_text() == "新しいナレッジベース"
    assert "$HANIWA_S3_ROOT" in tid(pg, "kb-folder-help").inner_text()
    create_from_folder(pg, "narrow")
    page.wait_for_url("**/#/kb/*")
    tid(pg, "kb-sync").click()
    expect(tid(pg, "kb-status")).to_have_attribute("data-status", "COMPLETE", timeout=30_000)
    assert "完了" in tid(pg, "kb-progress-label").inner_text()
    for testid in ("kb-sync", "kb-query", "kb-retrieve", "kb-rag-question", "kb-rag-ask"):
        box = tid(pg, testid).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 420, (testid, box)
    overflow = page.evaluate("document.querySelector('#panel-kb').scrollWidth")
    assert overflow <= 420

    # back to English: the formatted strings follow; leaving the tab and coming back keeps the view
    tid(pg, "kb-query").fill("東京の天気")
    tid(pg, "lang-toggle").click()
    assert tid(pg, "kb-progress-label").inner_text().startswith("100% · complete")
    expect(tid(pg, "kb-ds")).to_contain_text("Chunking: Fixed size · 300 / 20%")
    kb_url = page.url
    tid(pg, "tab-chat").click()
    page.wait_for_url("**/#/chat")
    page.go_back()
    assert page.url == kb_url
    expect(tid(pg, "kb-status")).to_have_attribute("data-status", "COMPLETE")
    assert tid(pg, "kb-query").input_value() == "東京の天気"
    tid(pg, "kb-retrieve").click()
    expect(tid(pg, "kb-result").first.get_by_test_id("kb-result-source")).to_have_text(
        "s3://robot-docs/specs/weather.txt"
    )
