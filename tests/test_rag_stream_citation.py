"""RetrieveAndGenerateStream ``citation`` events carry the current members and the deprecated nested
``citation`` member (Bedrock still sends both; GenU's RAG chat reads ``event.citation.citation``).

boto3 against a real server with the echo chat model and the hash embedder.
"""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from tests.conftest import client_kwargs
from tests.test_knowledge_api import CHAT, ROBOT_JA, TEA_EN, make_kb, make_s3_source, sync


@pytest.fixture
def kb_id(server: str, home: Path) -> str:
    folder = home / "s3" / "factory-docs" / "kb"
    folder.mkdir(parents=True)
    (folder / "robot.md").write_text(ROBOT_JA, encoding="utf-8")
    (folder / "tea.txt").write_text(TEA_EN, encoding="utf-8")
    agent = boto3.client("bedrock-agent", **client_kwargs(server))
    kb = make_kb(agent)
    job = sync(agent, kb, make_s3_source(agent, kb))
    assert job["status"] == "COMPLETE", job
    return kb


def test_stream_citation_has_nested_and_flat_members(server: str, kb_id: str) -> None:
    agent_rt = boto3.client("bedrock-agent-runtime", **client_kwargs(server))
    config = {
        "type": "KNOWLEDGE_BASE",
        "knowledgeBaseConfiguration": {"knowledgeBaseId": kb_id, "modelArn": CHAT},
    }
    out = agent_rt.retrieve_and_generate_stream(
        input={"text": "ハニワロボの材料を教えて"}, retrieveAndGenerateConfiguration=config
    )
    events = list(out["stream"])
    text = "".join(e["output"]["text"] for e in events if "output" in e)
    citations = [e["citation"] for e in events if "citation" in e]
    assert text and citations
    for event in citations:
        assert set(event) == {"citation", "generatedResponsePart", "retrievedReferences"}
        nested = event["citation"]
        assert nested["generatedResponsePart"] == event["generatedResponsePart"]
        assert nested["retrievedReferences"] == event["retrievedReferences"]
        assert event["retrievedReferences"]
        part = event["generatedResponsePart"]["textResponsePart"]
        assert text[part["span"]["start"] : part["span"]["end"] + 1] == part["text"]
    refs = {
        r["location"]["s3Location"]["uri"] for c in citations for r in c["citation"]["retrievedReferences"]
    }
    assert "s3://factory-docs/kb/robot.md" in refs

    # the non-streaming call cites the same documents (and keeps the plain Citation shape)
    whole = agent_rt.retrieve_and_generate(
        input={"text": "ハニワロボの材料を教えて"}, retrieveAndGenerateConfiguration=config
    )
    assert all("citation" not in c for c in whole["citations"])
    whole_refs = {
        r["location"]["s3Location"]["uri"] for c in whole["citations"] for r in c["retrievedReferences"]
    }
    assert whole_refs == refs
