"""Guardrails where Bedrock applies them, through boto3 against a real server whose models are the echo
backend (it answers with the prompt, so what the output check does is visible): Converse and
ConverseStream (``guardrailConfig``, ``guardContent``, ``trace.guardrail``), InvokeModel and its stream
(guardrail headers, ``amazon-bedrock-guardrailConfig`` tags, the action and trace in the body or the last
chunk), RetrieveAndGenerate (+ stream) and an agent's ``guardrailConfiguration``.

That a blocked prompt costs no generation is shown with a second haniwa in front of the first: the front
one's model is the upstream's echo through the OpenAI-compatible backend, and the upstream's invocation
log counts the generations it ran."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.testing.server import serve_in_thread
from tests.conftest import ECHO_CATALOG, client_kwargs
from tests.test_knowledge_api import make_kb

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
BLOCKED_IN = "申し訳ありませんが、そのご質問にはお答えできません。"
BLOCKED_OUT = "この回答は表示できません。"
OPEN, CLOSE = "<amazon-bedrock-guardrails-guardContent_xyz>", "</amazon-bedrock-guardrails-guardContent_xyz>"


def _config(name: str = "ja-calls") -> dict[str, Any]:
    return {
        "name": name,
        "blockedInputMessaging": BLOCKED_IN,
        "blockedOutputsMessaging": BLOCKED_OUT,
        "wordPolicyConfig": {
            "wordsConfig": [
                {"text": "爆弾"},
                # asked about, never blocked in an answer
                {"text": "社外秘", "inputAction": "BLOCK", "outputAction": "NONE"},
            ]
        },
        "sensitiveInformationPolicyConfig": {
            "piiEntitiesConfig": [
                # the prompt may carry a phone number; the answer may not
                {"type": "PHONE", "action": "ANONYMIZE", "inputAction": "NONE", "outputAction": "ANONYMIZE"},
                {"type": "EMAIL", "action": "ANONYMIZE"},
            ]
        },
    }


@pytest.fixture
def guardrail(bedrock: Any) -> str:
    gid: str = bedrock.create_guardrail(**_config())["guardrailId"]
    return gid


def _converse(runtime: Any, gid: str, text: str, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = runtime.converse(
        modelId=HAIKU,
        messages=kw.pop("messages", None) or [{"role": "user", "content": [{"text": text}]}],
        guardrailConfig={"guardrailIdentifier": gid, "guardrailVersion": "DRAFT", **kw},
    )
    return out


def _text(out: dict[str, Any]) -> str:
    return "".join(b.get("text", "") for b in out["output"]["message"]["content"])


# -- Converse ----------------------------------------------------------------------------------------
def test_converse_blocks_a_japanese_word_before_the_model(runtime: Any, guardrail: str) -> None:
    out = _converse(runtime, guardrail, "爆弾の作り方を教えてください", trace="enabled")
    assert _text(out) == BLOCKED_IN
    assert out["stopReason"] == "guardrail_intervened"
    assert out["usage"] == {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0}
    g = out["trace"]["guardrail"]
    words = g["inputAssessment"][guardrail]["wordPolicy"]["customWords"]
    assert words == [{"match": "爆弾", "action": "BLOCKED", "detected": True}]
    assert "outputAssessments" not in g and g["actionReason"] == "Guardrail blocked."
    # full-width / half-width variants are the same word to the guardrail
    assert _text(_converse(runtime, guardrail, "ｼｬｶﾞｲﾋ 社外秘の資料を要約して")) == BLOCKED_IN


def test_converse_masks_a_phone_number_in_the_answer(runtime: Any, guardrail: str) -> None:
    text = "折り返しは090-1234-5678までお願いします。"
    out = _converse(runtime, guardrail, text, trace="enabled")
    # the prompt passed (PHONE is not checked on input); the echoed answer is masked
    assert _text(out) == "折り返しは{PHONE}までお願いします。"
    assert out["stopReason"] == "guardrail_intervened"
    g = out["trace"]["guardrail"]
    assert g["modelOutput"] == [text]
    (assessment,) = g["outputAssessments"][guardrail]
    pii = assessment["sensitiveInformationPolicy"]["piiEntities"]
    assert pii == [{"type": "PHONE", "match": "090-1234-5678", "action": "ANONYMIZED", "detected": True}]
    assert assessment["invocationMetrics"]["guardrailProcessingLatency"] >= 0
    # trace disabled (the default): the same answer and no trace
    quiet = _converse(runtime, guardrail, text)
    assert _text(quiet) == "折り返しは{PHONE}までお願いします。" and "trace" not in quiet


def test_converse_masks_input_before_the_model(runtime: Any, guardrail: str) -> None:
    # EMAIL is anonymized on input: the model (echo) only ever sees the mask
    out = _converse(runtime, guardrail, "連絡先はhanako@example.jpです")
    assert _text(out) == "連絡先は{EMAIL}です"
    assert out["stopReason"] == "guardrail_intervened"


def test_converse_passes_clean_text(runtime: Any, guardrail: str) -> None:
    # look-alikes: 爆弾低気圧 is weather, but a custom word matches wherever it appears, as in Bedrock;
    # these share nothing with the policy
    out = _converse(runtime, guardrail, "明日の東京の天気を教えてください。", trace="enabled")
    assert _text(out) == "明日の東京の天気を教えてください。"
    assert out["stopReason"] == "end_turn"
    g = out["trace"]["guardrail"]
    assert set(g["inputAssessment"]) == {guardrail} and len(g["outputAssessments"][guardrail]) == 1
    assert "actionReason" not in g


def test_guard_content_only_is_checked(runtime: Any, guardrail: str) -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"text": "社外秘の資料を参照して答えてください。"},
                {"guardContent": {"text": {"text": "会議室の予約方法は？"}}},
            ],
        }
    ]
    out = _converse(runtime, guardrail, "", messages=messages, trace="enabled")
    # 社外秘 is outside the guarded block, so the request passes; the guarded text reached the model too
    assert out["stopReason"] == "end_turn"
    assert _text(out) == "社外秘の資料を参照して答えてください。会議室の予約方法は？"
    assert out["trace"]["guardrail"]["inputAssessment"][guardrail]["invocationMetrics"]["guardrailCoverage"][
        "textCharacters"
    ]["guarded"] == len("会議室の予約方法は？")
    messages[0]["content"][1] = {"guardContent": {"text": {"text": "爆弾について"}}}
    assert _text(_converse(runtime, guardrail, "", messages=messages)) == BLOCKED_IN
    # the answer is checked whole: an unguarded 爆弾 passes the input check, and the echoed answer is blocked
    messages[0]["content"] = [
        {"text": "爆弾低気圧が来ています。"},
        {"guardContent": {"text": {"text": "備えを教えて"}}},
    ]
    out = _converse(runtime, guardrail, "", messages=messages, trace="enabled")
    assert (_text(out), out["stopReason"]) == (BLOCKED_OUT, "guardrail_intervened")
    assert out["trace"]["guardrail"]["modelOutput"] == ["爆弾低気圧が来ています。備えを教えて"]
    # a guarded system prompt is checked as well
    out = runtime.converse(
        modelId=HAIKU,
        system=[{"guardContent": {"text": {"text": "社外秘の手順に従うこと"}}}],
        messages=[{"role": "user", "content": [{"guardContent": {"text": {"text": "こんにちは"}}}]}],
        guardrailConfig={"guardrailIdentifier": guardrail, "guardrailVersion": "DRAFT"},
    )
    assert _text(out) == BLOCKED_IN


def test_converse_stream(runtime: Any, guardrail: str) -> None:
    def run(text: str, mode: str = "sync", guarded: str = "") -> tuple[str, str, dict[str, Any]]:
        content: list[dict[str, Any]] = [{"text": text}]
        if guarded:
            content.append({"guardContent": {"text": {"text": guarded}}})
        resp = runtime.converse_stream(
            modelId=HAIKU,
            messages=[{"role": "user", "content": content}],
            guardrailConfig={
                "guardrailIdentifier": guardrail,
                "guardrailVersion": "DRAFT",
                "trace": "enabled",
                "streamProcessingMode": mode,
            },
        )
        parts, stop, meta = [], "", {}
        for ev in resp["stream"]:
            if "contentBlockDelta" in ev:
                parts.append(ev["contentBlockDelta"]["delta"]["text"])
            stop = ev["messageStop"]["stopReason"] if "messageStop" in ev else stop
            meta = ev.get("metadata", meta)
        return "".join(parts), stop, meta

    text = "ご案内します。担当は佐藤です。お電話は03-1234-5678へ。以上です。"
    got, stop, meta = run(text)
    assert got == "ご案内します。担当は佐藤です。お電話は{PHONE}へ。以上です。"
    assert stop == "guardrail_intervened"
    # checked a sentence at a time, before each was sent
    assert len(meta["trace"]["guardrail"]["outputAssessments"][guardrail]) == 4
    got, stop, _ = run("爆弾の話")
    assert (got, stop) == (BLOCKED_IN, "guardrail_intervened")
    # async mode: sent as generated (never masked), the guardrail still reports what it saw
    got, stop, meta = run(text, "async")
    assert got == text and stop == "guardrail_intervened"
    # an answer blocked midway (the prompt's unguarded text passed the input check, the echo repeats it):
    # sync sends only the blocked message; async has sent the first sentence and stops there
    prompt = ("爆弾低気圧が来ます。", "備えを教えて。外出は控えますか。")
    got, stop, meta = run(prompt[0], "sync", prompt[1])
    assert (got, stop) == (BLOCKED_OUT, "guardrail_intervened")
    assert meta["trace"]["guardrail"]["actionReason"] == "Guardrail blocked."
    got, stop, _ = run(prompt[0], "async", prompt[1])
    assert (got, stop) == ("爆弾低気圧が来ます。", "guardrail_intervened")


def test_a_missing_guardrail_is_a_validation_error(runtime: Any, guardrail: str) -> None:
    for gid, version in (("nosuchguard1", "DRAFT"), (guardrail, "9")):
        with pytest.raises(ClientError) as err:
            _converse(runtime, gid, "こんにちは", guardrailVersion=version)
        assert err.value.response["Error"]["Code"] == "ValidationException"
        assert "does not exist" in err.value.response["Error"]["Message"]


# -- InvokeModel -------------------------------------------------------------------------------------
def _claude(text: str, **extra: Any) -> str:
    return json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 200,
            "messages": [{"role": "user", "content": text}],
            **extra,
        },
        ensure_ascii=False,
    )


def test_invoke_model_with_guardrail_headers_and_trace(runtime: Any, guardrail: str) -> None:
    def invoke(text: str, **extra: Any) -> dict[str, Any]:
        resp = runtime.invoke_model(
            modelId=HAIKU,
            body=_claude(text, **extra),
            guardrailIdentifier=guardrail,
            guardrailVersion="DRAFT",
            trace="ENABLED",
        )
        out: dict[str, Any] = json.loads(resp["body"].read())
        return out

    out = invoke("至急090-1111-2222に電話して")
    assert out["content"][0]["text"] == "至急{PHONE}に電話して"
    assert out["amazon-bedrock-guardrailAction"] == "INTERVENED"
    trace = out["amazon-bedrock-trace"]["guardrail"]
    assert set(trace["input"]) == {guardrail}
    pii = trace["outputs"][0][guardrail]["sensitiveInformationPolicy"]["piiEntities"]
    assert pii[0]["match"] == "090-1111-2222"

    out = invoke("爆弾について")
    assert out["content"][0]["text"] == BLOCKED_IN and out["usage"]["output_tokens"] == 0
    assert out["amazon-bedrock-guardrailAction"] == "INTERVENED"
    assert "outputs" not in out["amazon-bedrock-trace"]["guardrail"]

    # EMAIL is anonymized on input: the model sees the mask
    assert invoke("メールはtaro@example.jpへ")["content"][0]["text"] == "メールは{EMAIL}へ"

    clean = invoke("こんにちは")
    assert clean["content"][0]["text"] == "こんにちは" and clean["amazon-bedrock-guardrailAction"] == "NONE"

    # tagged input: only the tagged text is checked, and the tags never reach the model
    tagged = f"社外秘の件です。{OPEN}予定を教えて{CLOSE}"
    out = invoke(tagged, **{"amazon-bedrock-guardrailConfig": {"tagSuffix": "xyz"}})
    assert out["content"][0]["text"] == "社外秘の件です。予定を教えて"
    assert out["amazon-bedrock-guardrailAction"] == "NONE"
    tagged = (
        "<amazon-bedrock-guardrails-guardContent_xyz>社外秘の件</amazon-bedrock-guardrails-guardContent_xyz>"
    )
    out = invoke(tagged, **{"amazon-bedrock-guardrailConfig": {"tagSuffix": "xyz"}})
    assert out["content"][0]["text"] == BLOCKED_IN

    # without the guardrail headers, the body's config is accepted and nothing is checked
    plain = json.loads(runtime.invoke_model(modelId=HAIKU, body=_claude("090-1111-2222"))["body"].read())
    assert plain["content"][0]["text"] == "090-1111-2222" and "amazon-bedrock-guardrailAction" not in plain


def test_invoke_model_stream_puts_the_action_on_the_last_chunk(runtime: Any, guardrail: str) -> None:
    def stream(text: str, mode: str = "SYNCHRONOUS") -> list[dict[str, Any]]:
        resp = runtime.invoke_model_with_response_stream(
            modelId=HAIKU,
            body=_claude(text, **{"amazon-bedrock-guardrailConfig": {"streamProcessingMode": mode}}),
            guardrailIdentifier=guardrail,
            guardrailVersion="DRAFT",
            trace="ENABLED",
        )
        return [json.loads(ev["chunk"]["bytes"]) for ev in resp["body"]]

    def text_of(chunks: list[dict[str, Any]]) -> str:
        return "".join(c["delta"].get("text", "") for c in chunks if c["type"] == "content_block_delta")

    chunks = stream("お問い合わせは090-1234-5678まで。受付は平日です。")
    assert text_of(chunks) == "お問い合わせは{PHONE}まで。受付は平日です。"
    last = chunks[-1]
    assert last["amazon-bedrock-guardrailAction"] == "INTERVENED"
    assert "amazon-bedrock-invocationMetrics" in last
    assert len(last["amazon-bedrock-trace"]["guardrail"]["outputs"]) == 2
    assert all("amazon-bedrock-guardrailAction" not in c for c in chunks[:-1])

    chunks = stream("爆弾の作り方")
    assert text_of(chunks) == BLOCKED_IN and chunks[-1]["amazon-bedrock-guardrailAction"] == "INTERVENED"
    chunks = stream("良い一日を。")
    assert text_of(chunks) == "良い一日を。" and chunks[-1]["amazon-bedrock-guardrailAction"] == "NONE"


# -- a blocked prompt costs no generation ----------------------------------------------------------------
@pytest.fixture
def front(server: str, tmp_path: Path) -> Iterator[str]:
    """A haniwa whose Claude is ``server``'s echo, reached through the OpenAI-compatible backend."""
    home = tmp_path / "front"
    home.mkdir()
    (home / "models.toml").write_text(
        f"""
[models."openai:up"]
backend = "openai"
kind = "chat"
options = {{ base_url = "{server}/v1", model = "echo:echo" }}

[aliases]
"{HAIKU}" = "openai:up"
""",
        encoding="utf-8",
    )
    with serve_in_thread(create_app(Settings(home=home, profile="fast"))) as url:
        yield url


def test_a_blocked_prompt_never_reaches_the_model(server: str, front: str) -> None:
    bedrock = boto3.client("bedrock", **client_kwargs(front))
    runtime = boto3.client("bedrock-runtime", **client_kwargs(front))
    gid = bedrock.create_guardrail(**_config())["guardrailId"]

    def generations() -> int:
        rows = httpx.get(f"{server}/haniwa/v1/usage", params={"since": 0}).json()["invocations"]
        return len(rows)

    before = generations()
    for call in (
        lambda: _converse(runtime, gid, "爆弾の作り方"),
        lambda: runtime.converse_stream(
            modelId=HAIKU,
            messages=[{"role": "user", "content": [{"text": "爆弾の作り方"}]}],
            guardrailConfig={"guardrailIdentifier": gid, "guardrailVersion": "DRAFT"},
        )["stream"],
        lambda: runtime.invoke_model(
            modelId=HAIKU, body=_claude("爆弾"), guardrailIdentifier=gid, guardrailVersion="DRAFT"
        ),
        lambda: runtime.invoke_model_with_response_stream(
            modelId=HAIKU, body=_claude("爆弾"), guardrailIdentifier=gid, guardrailVersion="DRAFT"
        )["body"],
    ):
        got = call()
        if hasattr(got, "__iter__") and not isinstance(got, dict):
            list(got)
    assert generations() == before
    assert _text(_converse(runtime, gid, "こんにちは")) == "こんにちは"
    assert generations() == before + 1


# -- RetrieveAndGenerate -------------------------------------------------------------------------------
def test_retrieve_and_generate_with_a_guardrail(server: str, bedrock: Any, guardrail: str) -> None:
    agent = boto3.client("bedrock-agent", **client_kwargs(server))
    rt = boto3.client("bedrock-agent-runtime", **client_kwargs(server))
    kb_id = make_kb(agent, "support-kb")
    config = {
        "type": "KNOWLEDGE_BASE",
        "knowledgeBaseConfiguration": {
            "knowledgeBaseId": kb_id,
            "modelArn": HAIKU,
            "generationConfiguration": {
                "guardrailConfiguration": {"guardrailId": guardrail, "guardrailVersion": "DRAFT"}
            },
        },
    }

    def ask(text: str) -> dict[str, Any]:
        out: dict[str, Any] = rt.retrieve_and_generate(
            input={"text": text}, retrieveAndGenerateConfiguration=config
        )
        return out

    out = ask("爆弾の材料を教えて")
    assert out["output"]["text"] == BLOCKED_IN and out["guardrailAction"] == "INTERVENED"
    assert out["citations"] == []
    # the echo model answers with the question: the phone number in it is masked in the answer
    out = ask("窓口の090-1234-5678は何時まで？")
    assert out["output"]["text"] == "窓口の{PHONE}は何時まで？" and out["guardrailAction"] == "INTERVENED"
    assert ask("窓口は何時まで？")["guardrailAction"] == "NONE"

    def ask_stream(text: str) -> tuple[str, list[str]]:
        resp = rt.retrieve_and_generate_stream(input={"text": text}, retrieveAndGenerateConfiguration=config)
        parts, actions = [], []
        for ev in resp["stream"]:
            if "output" in ev:
                parts.append(ev["output"]["text"])
            if "guardrail" in ev:
                actions.append(ev["guardrail"]["action"])
        return "".join(parts), actions

    assert ask_stream("窓口の090-1234-5678は何時まで？") == ("窓口の{PHONE}は何時まで？", ["INTERVENED"])
    assert ask_stream("爆弾の材料") == (BLOCKED_IN, ["INTERVENED"])
    assert ask_stream("窓口は何時まで？") == ("窓口は何時まで？", [])

    config["knowledgeBaseConfiguration"]["generationConfiguration"]["guardrailConfiguration"] = {  # type: ignore[index]
        "guardrailId": "nosuchguard1",
        "guardrailVersion": "DRAFT",
    }
    with pytest.raises(ClientError) as err:
        ask("こんにちは")
    assert err.value.response["Error"]["Code"] == "ValidationException"


# -- agents --------------------------------------------------------------------------------------------
AGENT_MODEL = "scripted:agent"


@pytest.fixture
def agent_server(tmp_path: Path) -> Iterator[str]:
    """A haniwa whose agent model answers every question with a contact that has a phone number."""
    home = tmp_path / "agents"
    home.mkdir()
    answer = {
        "thought": "done",
        "action": {"tool": "final_answer", "answer": "担当は佐藤です。電話は090-1234-5678です。"},
    }
    (home / "models.toml").write_text(
        ECHO_CATALOG
        + f'\n[models."{AGENT_MODEL}"]\nbackend = "scripted"\nkind = "chat"\n'
        + f"options = {{ rules = [], default = {json.dumps(json.dumps(answer, ensure_ascii=False))} }}\n",
        encoding="utf-8",
    )
    with serve_in_thread(create_app(Settings(home=home, profile="fast"))) as url:
        yield url


def test_agent_guardrail_on_input_and_final_answer(agent_server: str) -> None:
    bedrock = boto3.client("bedrock", **client_kwargs(agent_server))
    agent = boto3.client("bedrock-agent", **client_kwargs(agent_server))
    rt = boto3.client("bedrock-agent-runtime", **client_kwargs(agent_server))
    gid = bedrock.create_guardrail(**_config())["guardrailId"]
    version = bedrock.create_guardrail_version(guardrailIdentifier=gid)["version"]
    agent_id = agent.create_agent(
        agentName="support",
        foundationModel=AGENT_MODEL,
        instruction="お客様の問い合わせに丁寧に答える、ハニワ製作所のサポート窓口のエージェントです。担当者と連絡先を案内します。",
        agentResourceRoleArn="arn:aws:iam::000000000000:role/agent",
        guardrailConfiguration={"guardrailIdentifier": gid, "guardrailVersion": version},
    )["agent"]["agentId"]
    agent.prepare_agent(agentId=agent_id)

    def invoke(text: str, session: str) -> tuple[str, list[dict[str, Any]]]:
        resp = rt.invoke_agent(
            agentId=agent_id, agentAliasId="TSTALIASID", sessionId=session, inputText=text, enableTrace=True
        )
        answer, traces = "", []
        for ev in resp["completion"]:
            if "chunk" in ev:
                answer += ev["chunk"]["bytes"].decode("utf-8")
            elif "trace" in ev:
                traces.append(ev["trace"]["trace"])
        return answer, traces

    answer, traces = invoke("担当者の連絡先は？", "s1")
    assert answer == "担当は佐藤です。電話は{PHONE}です。"
    guard = [t["guardrailTrace"] for t in traces if "guardrailTrace" in t]
    assert [g["action"] for g in guard] == ["NONE", "INTERVENED"]
    pii = guard[1]["outputAssessments"][0]["sensitiveInformationPolicy"]["piiEntities"]
    assert pii[0]["match"] == "090-1234-5678" and pii[0]["action"] == "ANONYMIZED"
    final = [
        t["orchestrationTrace"]["observation"]
        for t in traces
        if "observation" in t.get("orchestrationTrace", {})
    ]
    assert final[-1]["finalResponse"]["text"] == answer

    answer, traces = invoke("爆弾の作り方は？", "s2")
    assert answer == BLOCKED_IN
    # the orchestration never ran: the guardrail's trace is the only one
    assert [list(t) for t in traces] == [["guardrailTrace"]]
    assert (
        traces[0]["guardrailTrace"]["inputAssessments"][0]["wordPolicy"]["customWords"][0]["match"] == "爆弾"
    )


# -- contextual grounding in calls ---------------------------------------------------------------------
SOURCE = "当店の営業時間は午前9時から午後6時まで、定休日は水曜日です。"
QUERY = "営業時間を教えてください。"
GROUNDED = "営業時間は午前9時から午後6時です。"
UNGROUNDED = ["営業時間は午前10時から午後8時です。", "富士山は日本で一番高い山です。"]


@pytest.fixture
def grounded_guardrail(bedrock: Any) -> str:
    config = {
        "name": "grounded-calls",
        "blockedInputMessaging": BLOCKED_IN,
        "blockedOutputsMessaging": BLOCKED_OUT,
        "contextualGroundingPolicyConfig": {
            "filtersConfig": [
                {"type": "GROUNDING", "threshold": 0.7},
                {"type": "RELEVANCE", "threshold": 0.3},
            ]
        },
    }
    gid: str = bedrock.create_guardrail(**config)["guardrailId"]
    return gid


def _qualified(text: str, qualifier: str) -> dict[str, Any]:
    return {"guardContent": {"text": {"text": text, "qualifiers": [qualifier]}}}


@pytest.mark.model
def test_converse_holds_the_answer_to_its_grounding_source(runtime: Any, grounded_guardrail: str) -> None:
    # the grounding source and query ride in the system prompt; the echo answers with the user's text
    def ask(answer: str, stream: bool = False) -> tuple[str, dict[str, Any]]:
        kw = {
            "modelId": HAIKU,
            "system": [_qualified(SOURCE, "grounding_source"), _qualified(QUERY, "query")],
            "messages": [{"role": "user", "content": [{"text": answer}]}],
            "guardrailConfig": {
                "guardrailIdentifier": grounded_guardrail,
                "guardrailVersion": "DRAFT",
                "trace": "enabled_full",
            },
        }
        if not stream:
            out = runtime.converse(**kw)
            return _text(out), out["trace"]["guardrail"]
        text, trace = "", {}
        for ev in runtime.converse_stream(**kw)["stream"]:
            text += ev.get("contentBlockDelta", {}).get("delta", {}).get("text", "")
            trace = ev.get("metadata", {}).get("trace", {}).get("guardrail", trace)
        return text, trace

    text, trace = ask(GROUNDED)
    assert text == GROUNDED
    (assessment,) = trace["outputAssessments"][grounded_guardrail]
    scores = {f["type"]: f for f in assessment["contextualGroundingPolicy"]["filters"]}
    assert scores["GROUNDING"]["score"] >= 0.7 and not scores["GROUNDING"]["detected"]
    assert assessment["invocationMetrics"]["usage"]["contextualGroundingPolicyUnits"] == 1
    for answer in UNGROUNDED:
        text, trace = ask(answer)
        assert text == BLOCKED_OUT and trace["actionReason"] == "Guardrail blocked.", answer
        assert trace["modelOutput"] == [answer]
        assert ask(answer, stream=True)[0] == BLOCKED_OUT
    assert ask(GROUNDED, stream=True)[0] == GROUNDED
    # without a grounding source or query nothing is scored: the same answer passes
    out = runtime.converse(
        modelId=HAIKU,
        messages=[{"role": "user", "content": [{"text": UNGROUNDED[1]}]}],
        guardrailConfig={"guardrailIdentifier": grounded_guardrail, "guardrailVersion": "DRAFT"},
    )
    assert _text(out) == UNGROUNDED[1]


@pytest.mark.model
def test_invoke_model_reads_grounding_tags(runtime: Any, grounded_guardrail: str) -> None:
    def tagged(kind: str, text: str) -> str:
        return f"<amazon-bedrock-guardrails-{kind}_g1>{text}</amazon-bedrock-guardrails-{kind}_g1>"

    def invoke(answer: str) -> dict[str, Any]:
        # the echo answers with the whole prompt: the source and query ride in the system prompt instead
        body = _claude(
            answer,
            system=tagged("groundingSource", SOURCE) + tagged("query", QUERY),
            **{"amazon-bedrock-guardrailConfig": {"tagSuffix": "g1"}},
        )
        resp = runtime.invoke_model(
            modelId=HAIKU, body=body, guardrailIdentifier=grounded_guardrail, guardrailVersion="DRAFT"
        )
        out: dict[str, Any] = json.loads(resp["body"].read())
        return out

    out = invoke(GROUNDED)
    assert (out["content"][0]["text"], out["amazon-bedrock-guardrailAction"]) == (GROUNDED, "NONE")
    out = invoke(UNGROUNDED[0])
    assert (out["content"][0]["text"], out["amazon-bedrock-guardrailAction"]) == (BLOCKED_OUT, "INTERVENED")


@pytest.mark.model
def test_retrieve_and_generate_grounds_the_answer_in_the_passages(
    server: str, grounded_guardrail: str
) -> None:
    agent = boto3.client("bedrock-agent", **client_kwargs(server))
    rt = boto3.client("bedrock-agent-runtime", **client_kwargs(server))
    kb_id = make_kb(agent, "hours-kb")
    ds_id = agent.create_data_source(
        knowledgeBaseId=kb_id, name="faq", dataSourceConfiguration={"type": "CUSTOM"}
    )["dataSource"]["dataSourceId"]
    doc = {"dataSourceType": "CUSTOM", "custom": {"customDocumentIdentifier": {"id": "hours"}}}
    doc["custom"] |= {
        "sourceType": "IN_LINE",
        "inlineContent": {"type": "TEXT", "textContent": {"data": SOURCE}},
    }
    agent.ingest_knowledge_base_documents(
        knowledgeBaseId=kb_id, dataSourceId=ds_id, documents=[{"content": doc}]
    )
    config = {
        "type": "KNOWLEDGE_BASE",
        "knowledgeBaseConfiguration": {
            "knowledgeBaseId": kb_id,
            "modelArn": HAIKU,
            "generationConfiguration": {
                "guardrailConfiguration": {"guardrailId": grounded_guardrail, "guardrailVersion": "DRAFT"}
            },
        },
    }

    def ask(text: str) -> dict[str, Any]:
        out: dict[str, Any] = rt.retrieve_and_generate(
            input={"text": text}, retrieveAndGenerateConfiguration=config
        )
        return out

    # the echo answers with the question: a question that restates the passage is a grounded answer
    out = ask(GROUNDED)
    assert (out["output"]["text"], out["guardrailAction"]) == (GROUNDED, "NONE")
    out = ask(UNGROUNDED[1])
    assert (out["output"]["text"], out["guardrailAction"]) == (BLOCKED_OUT, "INTERVENED")
    resp = rt.retrieve_and_generate_stream(
        input={"text": UNGROUNDED[1]}, retrieveAndGenerateConfiguration=config
    )
    assert "".join(ev["output"]["text"] for ev in resp["stream"] if "output" in ev) == BLOCKED_OUT
