"""The topic judge (``haniwa/guardrails/judge.py``): a chat model asked, under a JSON schema, only when the
embedding detector's topic score is unsure. With the deterministic ``scripted`` backend (its rules pick
the ruling from the text to check) through boto3 against a real server, in process, and — behind the
``model`` marker — with the bundled Qwen2.5-Coder-1.5B on two texts."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.guardrails.apply import apply
from haniwa.guardrails.base import Policy, TopicRule
from haniwa.guardrails.judge import SCHEMA, TopicJudge, request_for
from haniwa.guardrails.normalize import normalize
from haniwa.guardrails.semantic import language
from haniwa.guardrails.topics import BAND, CUT, TopicDetector
from haniwa.runtime.base import ChatRequest, ChatResult
from haniwa.runtime.echo import Rule, ScriptedChat
from haniwa.testing.server import serve_in_thread
from tests.conftest import ECHO_CATALOG, client_kwargs

JUDGE = "scripted:judge"
# the text to check sits between <<< and >>> in the judge's prompt: the rule looks there only
SAYS_YES = r"<<<\n[^>]*(?:piano|ピアノ)[^>]*\n>>>"
TOPIC = {
    "name": "instrument_purchase_advice",
    "definition": "Advice on which musical instrument, brand or model a person should buy.",
    "examples": ["Which guitar should I buy as a beginner?", "初心者はどのバイオリンを買うべき？"],
    "type": "DENY",
}
RULE = TopicRule(name=TOPIC["name"], definition=TOPIC["definition"], examples=tuple(TOPIC["examples"]))
# a text near the topic but not clearly in it (its score is checked to lie in the unsure band)
UNSURE = [
    "Is a digital piano or an acoustic one better for a small flat?",
    "What is the difference between a guitar and a ukulele?",
    "Should my daughter learn the violin or the flute first?",
    "Which music shop in town sells sheet music?",
    "ピアノ教室とギター教室、どちらに通うといいですか。",
]


def _band(text: str) -> tuple[float, float, float]:
    lang = language(normalize(text).text)
    score = TopicDetector((RULE,)).scores(normalize(text))[0][0]
    return score, CUT[lang] + BAND[lang][0], CUT[lang] + BAND[lang][1]


def _unsure() -> list[str]:
    out = [t for t in UNSURE if (b := _band(t))[1] <= b[0] < b[2]]
    assert out, [(t, _band(t)) for t in UNSURE]  # the band must hold one of them, or the test says nothing
    return out


def _scripted_catalog() -> str:
    # JSON string literals are TOML basic strings
    yes, no = json.dumps(json.dumps({"matches": True})), json.dumps(json.dumps({"matches": False}))
    return (
        ECHO_CATALOG
        + f'\n[models."{JUDGE}"]\nbackend = "scripted"\nkind = "chat"\n'
        + f"options = {{ rules = [{{ match = {json.dumps(SAYS_YES)}, reply = {yes} }}], default = {no} }}\n"
    )


@pytest.fixture
def judged_server(tmp_path: Path) -> Iterator[str]:
    home = tmp_path / "judged"
    home.mkdir()
    (home / "models.toml").write_text(_scripted_catalog(), encoding="utf-8")
    with serve_in_thread(create_app(Settings(home=home, profile="fast", guardrail_judge=JUDGE))) as url:
        yield url


def _guardrail(url: str) -> str:
    bedrock = boto3.client("bedrock", **client_kwargs(url))
    return str(
        bedrock.create_guardrail(
            name="judged",
            blockedInputMessaging="blocked",
            blockedOutputsMessaging="blocked",
            topicPolicyConfig={"topicsConfig": [TOPIC]},
        )["guardrailId"]
    )


def test_judge_rules_on_unsure_topics_through_boto3(judged_server: str) -> None:
    gid = _guardrail(judged_server)
    runtime = boto3.client("bedrock-runtime", **client_kwargs(judged_server))
    for text in _unsure():
        out = runtime.apply_guardrail(
            guardrailIdentifier=gid,
            guardrailVersion="DRAFT",
            source="INPUT",
            content=[{"text": {"text": text}}],
        )
        yes = "piano" in text or "ピアノ" in text
        assert out["action"] == ("GUARDRAIL_INTERVENED" if yes else "NONE"), (text, out)
    # a text far from the topic never reaches the judge (the scripted judge would say yes to it)
    far = "My piano lesson moved to Tuesday; lunch is at one."
    assert _band(far)[0] < _band(far)[1]
    out = runtime.apply_guardrail(
        guardrailIdentifier=gid, guardrailVersion="DRAFT", source="INPUT", content=[{"text": {"text": far}}]
    )
    assert out["action"] == "NONE"


def test_assessment_names_the_judge(judged_server: str) -> None:
    """The raw ApplyGuardrail answer (boto3 drops members its model lacks) says the judge ruled."""
    gid = _guardrail(judged_server)
    text = _unsure()[0]
    # no SigV4 secret is configured, so a plain HTTP client may call the REST path
    got = httpx.post(
        f"{judged_server}/guardrail/{gid}/version/DRAFT/apply",
        json={"source": "INPUT", "content": [{"text": {"text": text}}], "outputScope": "FULL"},
        timeout=60,
    ).json()
    topics = got["assessments"][0]["topicPolicy"]["topics"]
    assert topics[0]["judge"]["model"] == JUDGE
    assert topics[0]["judge"]["latencyMs"] >= 0
    assert topics[0]["detected"] is ("piano" in text or "ピアノ" in text)


class _Loop:
    """An event loop on its own thread, as a server's loop is to the detectors' worker threads."""

    def __enter__(self) -> asyncio.AbstractEventLoop:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        return self.loop

    def __exit__(self, *exc: Any) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def test_judge_in_process_counts_calls_and_caches() -> None:
    chat = ScriptedChat(
        JUDGE, [Rule(match=SAYS_YES, reply=json.dumps({"matches": True}))], json.dumps({"matches": False})
    )
    seen: list[ChatRequest] = []

    async def converse(req: ChatRequest) -> ChatResult:
        seen.append(req)
        return await chat.converse(req)

    policy = Policy(topics=(RULE,))
    text = _unsure()[0]
    with _Loop() as loop:
        judge = TopicJudge(JUDGE, converse, loop)
        first = apply(policy, [text], "INPUT", judge=judge)
        again = apply(policy, [text], "INPUT", judge=judge)
        with pytest.raises(RuntimeError):  # on its own loop it would wait for itself
            asyncio.run_coroutine_threadsafe(_on_loop(judge, text), loop).result(10)
    assert judge.calls == 1 and len(seen) == 1  # the second apply used the cached ruling
    assert seen[0].response_schema == SCHEMA and seen[0].params.temperature == 0.0
    (finding,) = [f for f in first.findings if f.kind == "topic"]
    assert finding.judge == JUDGE and finding.judge_ms is not None
    assert first.blocked is ("piano" in text or "ピアノ" in text) and again.blocked is first.blocked
    # without a judge the detector's own cut decides, and no finding names a judge
    alone = apply(policy, [text], "INPUT")
    assert all(f.judge is None for f in alone.findings)


async def _on_loop(judge: TopicJudge, text: str) -> None:
    judge.rule(text + " (again)", RULE)


def test_a_failing_judge_falls_back_to_the_cut() -> None:
    async def broken(req: ChatRequest) -> ChatResult:
        raise ConnectionError("model gone")

    policy = Policy(topics=(RULE,))
    text = _unsure()[0]
    with _Loop() as loop:
        judge = TopicJudge("broken", broken, loop)
        with_judge = apply(policy, [text], "INPUT", judge=judge)
    assert judge.failures == 1
    assert with_judge.blocked == apply(policy, [text], "INPUT").blocked
    assert all(f.judge is None for f in with_judge.findings)


def test_request_shows_definition_examples_and_text() -> None:
    req = request_for("Which piano should I buy?", RULE)
    prompt = req.messages[0].text
    assert RULE.definition in prompt and all(e in prompt for e in RULE.examples)
    assert "<<<\nWhich piano should I buy?\n>>>" in prompt and req.params.max_tokens == 16


@pytest.mark.model
def test_bundled_model_judges_two_texts(tmp_path: Path) -> None:
    """The bundled 1.5B, under the schema: a purchase-advice ask matches, a shop's opening hours do not."""
    from haniwa.plugins import make_plugin_manager
    from haniwa.runtime.registry import ModelRegistry

    home = tmp_path / "home"
    home.mkdir()
    models = Path(os.environ.get("HANIWA_TEST_MODELS_DIR", Path.home() / ".cache" / "haniwa-test-models"))
    models.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(models)
    settings = Settings(home=home)
    registry = ModelRegistry.from_plugins(settings, make_plugin_manager(settings.load_plugins))
    model = "llamacpp:qwen2.5-coder-1.5b"

    async def converse(req: ChatRequest) -> ChatResult:
        _, chat = await registry.chat(model)
        return await chat.converse(req)

    with _Loop() as loop:
        judge = TopicJudge(model, converse, loop, timeout_s=600)
        yes = judge.rule("I'm a beginner: should I buy a Yamaha or a Fender guitar?", RULE)
        no = judge.rule("What time does the music shop on Main Street open on Sunday?", RULE)
    assert yes is not None and yes.matched
    assert no is not None and not no.matched
