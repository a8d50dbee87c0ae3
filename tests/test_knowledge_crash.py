"""A real ``haniwa serve`` killed with SIGKILL in the middle of an ingestion job: after a restart the job
resumes, finishes, and the index holds every document exactly once — nothing half-written."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3

from haniwa.testing.server import serve_in_process
from tests.conftest import client_kwargs
from tests.test_knowledge_api import make_kb, make_s3_source

N_DOCS = 600


def _start(home: Path, port: int) -> subprocess.Popen[bytes]:
    return serve_in_process(home, port)


def _job(agent: Any, kb_id: str, ds_id: str) -> dict[str, Any]:
    jobs = agent.list_ingestion_jobs(knowledgeBaseId=kb_id, dataSourceId=ds_id)["ingestionJobSummaries"]
    return dict(jobs[-1])


def test_kill_during_ingestion_then_resume(home: Path) -> None:
    folder = home / "s3" / "factory-docs" / "kb"
    folder.mkdir(parents=True)
    for i in range(N_DOCS):
        (folder / f"doc{i:04d}.txt").write_text(
            f"部品番号 P{i:04d} の在庫は {i} 個です。Part P{i:04d} is stored in bin {i % 17}.\n" * 3,
            encoding="utf-8",
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = _start(home, port)
    try:
        agent = boto3.client("bedrock-agent", **client_kwargs(url))
        kb_id = make_kb(agent)
        ds_id = make_s3_source(agent, kb_id)
        agent.start_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id)
        deadline = time.monotonic() + 60
        while _job(agent, kb_id, ds_id)["statistics"]["numberOfNewDocumentsIndexed"] < 20:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()

    with sqlite3.connect(home / "haniwa.db") as db:  # what the kill left behind
        assert db.execute("SELECT status FROM ingestion_jobs").fetchall() == [("IN_PROGRESS",)]
    proc = _start(home, port)
    try:
        agent = boto3.client("bedrock-agent", **client_kwargs(url))
        rt = boto3.client("bedrock-agent-runtime", **client_kwargs(url))
        deadline = time.monotonic() + 120
        while (job := _job(agent, kb_id, ds_id))["status"] != "COMPLETE":
            assert job["status"] in ("IN_PROGRESS", "STARTING"), job
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert job["statistics"]["numberOfDocumentsScanned"] == N_DOCS
        assert job["statistics"]["numberOfDocumentsFailed"] == 0
        docs = agent.list_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id, maxResults=1000)
        assert len(docs["documentDetails"]) == N_DOCS
        assert {d["status"] for d in docs["documentDetails"]} == {"INDEXED"}
        # every document is found, once, with all of its text
        for i in (0, 7, N_DOCS // 2, N_DOCS - 1):
            res = rt.retrieve(
                knowledgeBaseId=kb_id,
                retrievalQuery={"text": f"P{i:04d}"},
                retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 3}},
            )["retrievalResults"]
            top = res[0]
            assert top["location"]["s3Location"]["uri"] == f"s3://factory-docs/kb/doc{i:04d}.txt"
            assert top["content"]["text"].count(f"P{i:04d}") == 6
            assert [r["location"]["s3Location"]["uri"] for r in res].count(
                top["location"]["s3Location"]["uri"]
            ) == 1
        again = agent.start_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id)["ingestionJob"]
        while (job := _job(agent, kb_id, ds_id))["status"] != "COMPLETE":
            time.sleep(0.05)
        assert job["ingestionJobId"] == again["ingestionJobId"]
        assert job["statistics"]["numberOfNewDocumentsIndexed"] == 0
        assert job["statistics"]["numberOfModifiedDocumentsIndexed"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
