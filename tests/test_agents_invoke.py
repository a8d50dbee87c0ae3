"""InvokeAgent end to end through boto3 against a real server, with a ``scripted`` model (its replies are
picked by regex rules over each step's input, so the orchestration logic is tested deterministically;
the bundled model runs the same scenario in test_agents_models.py), the hash embedder, and functions
registered through HANIWA_AGENT_FUNCTIONS."""

from __future__ import annotations

import contextlib
import http.server
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.testing.server import serve_in_thread
from tests import agent_tools
from tests.conftest import ECHO_CATALOG, client_kwargs
from tests.test_knowledge_api import make_kb, sync

ROBOT_SHEET = """# ハニワロボ HR-7 製品仕様書

## 材料

ハニワロボ HR-7 の材料は、アルミニウム 12 kg と銅線 3 m です。

## 法的事項

販売には電気用品安全法の届出が必要です。
"""
MODEL = "scripted:agent"
FUNCTIONS = {
    "stock": "tests.agent_tools:get_material_stock",
    "orders": "tests.agent_tools:order_parts",
    "broken": "tests.agent_tools:broken",
    "suppliers": "tests.agent_tools:find_supplier",
    "supplier-orders": "tests.agent_tools:order_from",
    "lambda-style": "tests.agent_tools:lambda_handler",
}
INSTRUCTION = (
    "You work in the robot factory. Find the product's materials in the knowledge base, "
    "then check the stock of each material."
)


def step(tool: str, thought: str = "next", **args: Any) -> str:
    return json.dumps({"thought": thought, "action": {"tool": tool, "input": args}}, ensure_ascii=False)


def final(answer: str) -> str:
    return json.dumps(
        {"thought": "done", "action": {"tool": "final_answer", "answer": answer}}, ensure_ascii=False
    )


G1 = "@G1@"  # stands for the rule's first regex group in a reply (JSON would escape a backslash)
GROUP = "\\g<1>"


def catalog(rules: list[tuple[str, str]], default: str = "") -> str:
    table = ", ".join(
        f"{{ match = {json.dumps(m)}, reply = {json.dumps(r.replace(G1, GROUP))} }}" for m, r in rules
    )
    return (
        ECHO_CATALOG
        + f'\n[models."{MODEL}"]\nbackend = "scripted"\nkind = "chat"\n'
        + f"options = {{ rules = [{table}], default = {json.dumps(default)} }}\n"
    )


Start = Callable[..., dict[str, Any]]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start a server whose scripted model follows ``rules``; returns the boto3 clients and home."""
    stack: list[Any] = []

    def _start(rules: list[tuple[str, str]], default: str = "", **settings: Any) -> dict[str, Any]:
        home = tmp_path / f"home{len(stack)}"
        home.mkdir()
        (home / "models.toml").write_text(catalog(rules, default), encoding="utf-8")
        s = Settings(
            home=home, profile="fast", agent_functions=settings.pop("functions", FUNCTIONS), **settings
        )
        cm = serve_in_thread(create_app(s))
        url = cm.__enter__()
        stack.append(cm)
        agent_tools.CALLS.clear()
        return {
            "home": home,
            "url": url,
            "agent": boto3.client("bedrock-agent", **client_kwargs(url)),
            "rt": boto3.client("bedrock-agent-runtime", **client_kwargs(url)),
        }

    yield _start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


def function_group(
    agent: Any, agent_id: str, name: str = "stock", fn: str = "get_material_stock", **kw: Any
) -> str:
    executor = kw.pop("executor", {"lambda": f"arn:aws:lambda:us-east-1:000000000000:function:{name}"})
    group = agent.create_agent_action_group(
        agentId=agent_id,
        agentVersion="DRAFT",
        actionGroupName=kw.pop("group_name", f"{name}-group"),
        actionGroupExecutor=executor,
        functionSchema={
            "functions": [
                {
                    "name": fn,
                    "description": "Stock of one material / 材料1つの在庫",
                    "parameters": kw.pop(
                        "parameters",
                        {"material_name": {"type": "string", "description": "material", "required": True}},
                    ),
                    **kw,
                }
            ]
        },
    )
    return str(group["agentActionGroup"]["actionGroupId"])


def make_agent(agent: Any, name: str = "factory-agent", **kw: Any) -> str:
    a = agent.create_agent(
        agentName=name,
        foundationModel=MODEL,
        instruction=INSTRUCTION,
        agentResourceRoleArn="arn:aws:iam::000000000000:role/agent",
        **kw,
    )
    return str(a["agent"]["agentId"])


def prepare(agent: Any, agent_id: str) -> None:
    assert agent.prepare_agent(agentId=agent_id)["agentStatus"] in ("PREPARED", "PREPARING")
    assert agent.get_agent(agentId=agent_id)["agent"]["agentStatus"] == "PREPARED"


def invoke(
    rt: Any, agent_id: str, text: str, session: str = "s1", alias: str = "TSTALIASID", **kw: Any
) -> dict[str, Any]:
    """Collect one InvokeAgent stream: answer text, citations, traces, returnControl."""
    resp = rt.invoke_agent(agentId=agent_id, agentAliasId=alias, sessionId=session, inputText=text, **kw)
    out: dict[str, Any] = {
        "text": "",
        "citations": [],
        "traces": [],
        "control": None,
        "session": resp["sessionId"],
    }
    for ev in resp["completion"]:
        if "chunk" in ev:
            out["text"] += ev["chunk"]["bytes"].decode("utf-8")
            out["citations"] += ev["chunk"].get("attribution", {}).get("citations", [])
        elif "trace" in ev:
            out["traces"].append(ev["trace"])
        elif "returnControl" in ev:
            out["control"] = ev["returnControl"]
    return out


def orch(traces: list[dict[str, Any]], member: str) -> list[dict[str, Any]]:
    return [
        t["trace"]["orchestrationTrace"][member]
        for t in traces
        if member in t["trace"].get("orchestrationTrace", {})
    ]


ROBOT_RULES = [
    ("在庫はどれくらい", step("search_knowledge_base", "まず材料を調べる", query="ハニワロボ 材料")),
    (
        # the result, or (the same passages as the lookup before the first step) that it found nothing new
        "search_knowledge_base (の結果|は前の検索と同じ)",
        step("get_material_stock", "アルミニウムの在庫", material_name="アルミニウム"),
    ),
    ('"material": "アルミニウム"', step("get_material_stock", "銅線の在庫", material_name="銅線")),
    ('"material": "銅線"', final("アルミニウムの在庫は 120 kg、銅線の在庫は 45 m です。")),
]


def robot_kb(c: dict[str, Any], sheet: str = ROBOT_SHEET) -> str:
    folder = c["home"] / "s3" / "factory" / "docs"
    folder.mkdir(parents=True)
    (folder / "robot.md").write_text(sheet, encoding="utf-8")
    (folder / "tea.txt").write_text("Green tea is made from unoxidised leaves.", encoding="utf-8")
    kb_id = make_kb(c["agent"], "factory")
    ds = c["agent"].create_data_source(
        knowledgeBaseId=kb_id,
        name="docs",
        dataSourceConfiguration={
            "type": "S3",
            "s3Configuration": {"bucketArn": "arn:aws:s3:::factory", "inclusionPrefixes": ["docs/"]},
        },
    )["dataSource"]
    assert sync(c["agent"], kb_id, ds["dataSourceId"])["status"] == "COMPLETE"
    return kb_id


def test_robot_factory_agent_with_trace(start: Start) -> None:
    c = start(ROBOT_RULES)
    kb_id = robot_kb(c)
    agent_id = make_agent(c["agent"])
    function_group(c["agent"], agent_id)
    c["agent"].associate_agent_knowledge_base(
        agentId=agent_id,
        agentVersion="DRAFT",
        knowledgeBaseId=kb_id,
        description="Product sheets / 製品仕様書",
    )
    prepare(c["agent"], agent_id)

    out = invoke(c["rt"], agent_id, "ロボットの材料の在庫はどれくらいありますか？", enableTrace=True)
    assert "120" in out["text"] and "45" in out["text"], out["text"]
    traces = out["traces"]
    assert {t["agentId"] for t in traces} == {agent_id}
    assert all(t["sessionId"] == "s1" and t["agentAliasId"] == "TSTALIASID" for t in traces)

    inputs = orch(traces, "invocationInput")
    kb = [i for i in inputs if i["invocationType"] == "KNOWLEDGE_BASE"]
    # the knowledge base is looked up first, over the user's question, before the model's first step;
    # then the (scripted) model searches it with its own query
    assert [k["knowledgeBaseLookupInput"] for k in kb] == [
        {"knowledgeBaseId": kb_id, "text": "ロボットの材料の在庫はどれくらいありますか？"},
        {"knowledgeBaseId": kb_id, "text": "ハニワロボ 材料"},
    ]
    assert inputs[0] is kb[0]
    actions = [i["actionGroupInvocationInput"] for i in inputs if i["invocationType"] == "ACTION_GROUP"]
    assert [a["function"] for a in actions] == ["get_material_stock", "get_material_stock"]
    assert [a["parameters"] for a in actions] == [
        [{"name": "material_name", "type": "string", "value": "アルミニウム"}],
        [{"name": "material_name", "type": "string", "value": "銅線"}],
    ]
    assert all(a["actionGroupName"] == "stock-group" and a["executionType"] == "LAMBDA" for a in actions)

    obs = orch(traces, "observation")
    assert [o["type"] for o in obs] == [
        "KNOWLEDGE_BASE",
        "KNOWLEDGE_BASE",
        "ACTION_GROUP",
        "ACTION_GROUP",
        "FINISH",
    ]
    refs = obs[0]["knowledgeBaseLookupOutput"]["retrievedReferences"]
    assert refs[0]["location"]["s3Location"]["uri"] == "s3://factory/docs/robot.md"
    assert "アルミニウム 12 kg" in refs[0]["content"]["text"]
    # the unrelated tea note scores far below the sheet: the model never reads it (KB_RELEVANCE_SHARE)
    assert all(not r["location"]["s3Location"]["uri"].endswith("tea.txt") for r in refs), refs
    assert json.loads(obs[2]["actionGroupInvocationOutput"]["text"])["stock"] == 120
    assert obs[-1]["finalResponse"]["text"] == out["text"]
    assert [r["text"] for r in orch(traces, "rationale")][:2] == ["まず材料を調べる", "アルミニウムの在庫"]
    mi, mo = orch(traces, "modelInvocationInput"), orch(traces, "modelInvocationOutput")
    assert len(mi) == len(mo) == 4
    assert mi[0]["type"] == "ORCHESTRATION" and INSTRUCTION in json.loads(mi[0]["text"])["system"]
    assert all(m["metadata"]["usage"]["inputTokens"] > 0 for m in mo)
    assert agent_tools.CALLS == [
        ("get_material_stock", {"material_name": "アルミニウム"}),
        ("get_material_stock", {"material_name": "銅線"}),
    ]
    # without enableTrace: the same answer, no trace parts
    quiet = invoke(c["rt"], agent_id, "ロボットの材料の在庫はどれくらいありますか？", session="s2")
    assert quiet["traces"] == [] and "45" in quiet["text"]


def test_versions_and_aliases_run_the_frozen_agent(start: Start) -> None:
    c = start([("hello", final("v1 answer"))], default=final("other"))
    agent_id = make_agent(c["agent"])
    prepare(c["agent"], agent_id)
    alias = c["agent"].create_agent_alias(agentId=agent_id, agentAliasName="prod")["agentAlias"][
        "agentAliasId"
    ]
    for _ in range(100):
        if (
            c["agent"].get_agent_alias(agentId=agent_id, agentAliasId=alias)["agentAlias"]["agentAliasStatus"]
            == "PREPARED"
        ):
            break
        time.sleep(0.05)
    # the DRAFT gains a function that always fails; the alias still runs version 1 (no tools)
    function_group(c["agent"], agent_id, "broken", "check")
    prepare(c["agent"], agent_id)
    out = invoke(c["rt"], agent_id, "hello", alias=alias, enableTrace=True)
    assert out["text"] == "v1 answer"
    assert {t["agentVersion"] for t in out["traces"]} == {"1"}
    draft = invoke(c["rt"], agent_id, "hello", enableTrace=True)
    assert {t["agentVersion"] for t in draft["traces"]} == {"DRAFT"}
    assert (
        "check(material_name: string)"
        in json.loads(orch(draft["traces"], "modelInvocationInput")[0]["text"])["system"]
    )


def test_return_of_control(start: Start) -> None:
    c = start(
        [
            ("注文して", step("order_parts", "注文する", material_name="銅線", quantity="5")),
            ("order_parts の結果.*PO-77", final("注文番号は PO-77 です。")),
        ]
    )
    agent_id = make_agent(c["agent"])
    function_group(
        c["agent"],
        agent_id,
        "orders",
        "order_parts",
        executor={"customControl": "RETURN_CONTROL"},
        parameters={
            "material_name": {"type": "string", "required": True},
            "quantity": {"type": "integer", "required": True},
        },
    )
    prepare(c["agent"], agent_id)
    first = invoke(c["rt"], agent_id, "銅線を5つ注文して", enableTrace=True)
    assert first["text"] == ""
    ctl = first["control"]
    fn = ctl["invocationInputs"][0]["functionInvocationInput"]
    assert fn["function"] == "order_parts" and fn["actionInvocationType"] == "RESULT"
    # the model wrote "5" as a string: it was coerced to the parameter's integer type
    assert {p["name"]: p["value"] for p in fn["parameters"]} == {"material_name": "銅線", "quantity": "5"}
    assert agent_tools.CALLS == []  # the caller runs it, not haniwa

    result = {
        "functionResult": {
            "actionGroup": fn["actionGroup"],
            "function": "order_parts",
            "responseBody": {"TEXT": {"body": "ordered; purchase order PO-77"}},
        }
    }
    second = c["rt"].invoke_agent(
        agentId=agent_id,
        agentAliasId="TSTALIASID",
        sessionId="s1",
        sessionState={"invocationId": ctl["invocationId"], "returnControlInvocationResults": [result]},
    )
    text = "".join(e["chunk"]["bytes"].decode() for e in second["completion"] if "chunk" in e)
    assert text == "注文番号は PO-77 です。"

    with pytest.raises(ClientError) as e:  # nothing is pending any more
        c["rt"].invoke_agent(
            agentId=agent_id,
            agentAliasId="TSTALIASID",
            sessionId="s1",
            sessionState={"invocationId": ctl["invocationId"], "returnControlInvocationResults": [result]},
        )
    assert e.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.parametrize("decision", ["CONFIRM", "DENY"])
def test_confirmation(start: Start, decision: str) -> None:
    c = start(
        [
            ("order copper", step("order_parts", material_name="copper wire", quantity=2)),
            ("declined", final("Understood, I did not order anything.")),
            ("Observation from order_parts:\nordered", final("Done: ordered 2 copper wire.")),
        ]
    )
    agent_id = make_agent(c["agent"])
    function_group(
        c["agent"],
        agent_id,
        "orders",
        "order_parts",
        requireConfirmation="ENABLED",
        parameters={
            "material_name": {"type": "string", "required": True},
            "quantity": {"type": "integer", "required": True},
        },
    )
    prepare(c["agent"], agent_id)
    first = invoke(c["rt"], agent_id, "Please order copper wire, 2 of them")
    fn = first["control"]["invocationInputs"][0]["functionInvocationInput"]
    assert fn["actionInvocationType"] == "USER_CONFIRMATION"
    assert agent_tools.CALLS == []
    resp = c["rt"].invoke_agent(
        agentId=agent_id,
        agentAliasId="TSTALIASID",
        sessionId="s1",
        enableTrace=True,
        sessionState={
            "invocationId": first["control"]["invocationId"],
            "returnControlInvocationResults": [
                {
                    "functionResult": {
                        "actionGroup": fn["actionGroup"],
                        "function": "order_parts",
                        "confirmationState": decision,
                    }
                }
            ],
        },
    )
    text = "".join(e["chunk"]["bytes"].decode() for e in resp["completion"] if "chunk" in e)
    if decision == "CONFIRM":
        assert agent_tools.CALLS == [("order_parts", {"material_name": "copper wire", "quantity": 2})]
        assert text == "Done: ordered 2 copper wire."
    else:
        assert agent_tools.CALLS == []
        assert text == "Understood, I did not order anything."


def test_action_that_raises_and_unknown_tool_become_observations(start: Start) -> None:
    c = start(
        [
            ("check stock", step("launch_rocket", "wrong tool", target="moon")),
            ("no tool named 'launch_rocket'", step("check", material_name="copper wire")),
            (
                "Observation from check:\nError: RuntimeError: the inventory database is down",
                final("The inventory system is down."),
            ),
        ]
    )
    agent_id = make_agent(c["agent"])
    function_group(c["agent"], agent_id, "broken", "check")
    prepare(c["agent"], agent_id)
    out = invoke(c["rt"], agent_id, "check stock of copper wire", enableTrace=True)
    assert out["text"] == "The inventory system is down."
    obs = orch(out["traces"], "observation")
    assert obs[0]["type"] == "REPROMPT" and "launch_rocket" in obs[0]["repromptResponse"]["text"]
    assert "the inventory database is down" in obs[1]["actionGroupInvocationOutput"]["text"]
    assert obs[-1]["type"] == "FINISH"


def test_bad_arguments_go_back_to_the_model(start: Start) -> None:
    c = start(
        [
            ("how many", step("get_material_stock", material="copper wire")),  # wrong parameter name
            (
                "input for get_material_stock is not valid",
                step("get_material_stock", material_name="copper wire"),
            ),
            ("Observation from get_material_stock", final("45 m of copper wire.")),
        ]
    )
    agent_id = make_agent(c["agent"])
    function_group(c["agent"], agent_id)
    prepare(c["agent"], agent_id)
    out = invoke(c["rt"], agent_id, "how many copper wire do we have?", enableTrace=True)
    assert out["text"] == "45 m of copper wire."
    reprompt = orch(out["traces"], "observation")[0]["repromptResponse"]["text"]
    assert "unknown parameter(s) material" in reprompt and "missing" not in reprompt


def test_step_limit_forces_a_final_answer(start: Start) -> None:
    c = start(
        [
            ("step limit|ステップ数の上限", final("Partial: aluminium 120 kg, copper wire 45 m.")),
            ('"material": "copper wire"', step("get_material_stock", material_name="アルミニウム")),
            ('"material": "aluminium"', step("get_material_stock", material_name="copper wire")),
            ("forever", step("get_material_stock", material_name="aluminium")),
        ],
        agent_max_steps=3,
    )
    agent_id = make_agent(c["agent"])
    function_group(c["agent"], agent_id)
    prepare(c["agent"], agent_id)
    # (a call's inputs must come from the conversation, or the model is asked about it first)
    question = "check the stock of aluminium, copper wire and アルミニウム forever"
    out = invoke(c["rt"], agent_id, question, enableTrace=True)
    assert out["text"] == "Partial: aluminium 120 kg, copper wire 45 m."
    failures = [t["trace"]["failureTrace"] for t in out["traces"] if "failureTrace" in t["trace"]]
    assert [f["failureReason"] for f in failures] == ["the step limit (3) was reached"]
    assert [a["material_name"] for _, a in agent_tools.CALLS] == ["aluminium", "copper wire", "アルミニウム"]
    assert len(orch(out["traces"], "modelInvocationOutput")) == 4  # three steps, then the forced answer


def test_repeated_call_is_answered_from_memory_then_stopped(start: Start) -> None:
    c = start(
        [
            ("results you need", final("aluminium: 120 kg.")),
            ("aluminium", step("get_material_stock", material_name="aluminium")),
        ]
    )
    agent_id = make_agent(c["agent"])
    function_group(c["agent"], agent_id)
    prepare(c["agent"], agent_id)
    out = invoke(c["rt"], agent_id, "stock of aluminium, again and again", enableTrace=True)
    assert out["text"] == "aluminium: 120 kg."
    # the identical call ran once; the first repeat was answered from memory, the second ended the loop
    assert agent_tools.CALLS == [("get_material_stock", {"material_name": "aluminium"})]
    assert "already called" in orch(out["traces"], "observation")[1]["repromptResponse"]["text"]
    failures = [
        t["trace"]["failureTrace"]["failureReason"] for t in out["traces"] if "failureTrace" in t["trace"]
    ]
    assert failures == ["the model repeated get_material_stock with the same input 2 times"]


def test_a_loop_that_cannot_answer_still_reports_what_it_found(start: Start) -> None:
    # unconstrained small models, told to answer, sometimes ask for yet another call: the run ends with the
    # results the functions returned rather than a bare apology
    again = step("get_material_stock", material_name="aluminium")
    c = start([("aluminium", again)], default=again)
    agent_id = make_agent(c["agent"])
    function_group(c["agent"], agent_id)
    prepare(c["agent"], agent_id)
    out = invoke(c["rt"], agent_id, "stock of aluminium", enableTrace=True)
    assert agent_tools.CALLS == [("get_material_stock", {"material_name": "aluminium"})]
    first, *rest = out["text"].splitlines()
    assert first == "I could not finish this request within the limit. What the functions returned:"
    assert rest == ["material: aluminium, stock: 120, unit: m"], out["text"]


def test_session_carries_over_two_turns_and_attributes_round_trip(start: Start) -> None:
    c = start(
        [
            ("My name is Taro", final("Nice to meet you, Taro.")),
            ("What is my name", final("Your name is Taro.")),
            ("Observation from get_material_stock:\n([^\n]+)", final(G1)),
            ("check ([^\n]+)", step("get_material_stock", material_name=G1)),
        ],
        functions={"stock": "tests.agent_tools:lambda_handler"},
    )
    agent_id = make_agent(c["agent"])
    function_group(c["agent"], agent_id)
    prepare(c["agent"], agent_id)
    invoke(c["rt"], agent_id, "My name is Taro", sessionState={"sessionAttributes": {"team": "A"}})
    second = invoke(c["rt"], agent_id, "What is my name?", enableTrace=True)
    prompt = json.loads(orch(second["traces"], "modelInvocationInput")[0]["text"])
    assert [m["content"] for m in prompt["messages"]] == [
        "My name is Taro",
        "Nice to meet you, Taro.",
        "What is my name?",
    ]
    assert second["text"] == "Your name is Taro."
    # a Lambda-style handler sees and updates the session attributes across turns
    assert invoke(c["rt"], agent_id, "check copper wire")["text"] == "copper wire: in stock (seen before: )"
    assert (
        invoke(c["rt"], agent_id, "check aluminium")["text"]
        == "aluminium: in stock (seen before: copper wire)"
    )
    assert agent_tools.CALLS[-1] == (
        "lambda_handler",
        {"material_name": "aluminium", "seen_before": "copper wire"},
    )
    # promptSessionAttributes reach the prompt for that turn only
    third = invoke(
        c["rt"],
        agent_id,
        "What is my name?",
        enableTrace=True,
        sessionState={"promptSessionAttributes": {"today": "2026-11-21"}},
    )
    assert (
        "today: 2026-11-21" in json.loads(orch(third["traces"], "modelInvocationInput")[0]["text"])["system"]
    )
    # another session knows nothing of this one
    other = invoke(c["rt"], agent_id, "What is my name?", session="other", enableTrace=True)
    assert len(json.loads(orch(other["traces"], "modelInvocationInput")[0]["text"])["messages"]) == 1
    # endSession forgets the conversation
    invoke(c["rt"], agent_id, "What is my name?", endSession=True)
    fresh = invoke(c["rt"], agent_id, "What is my name?", enableTrace=True)
    assert len(json.loads(orch(fresh["traces"], "modelInvocationInput")[0]["text"])["messages"]) == 1


def test_idle_session_expires(start: Start) -> None:
    c = start([("hi", final("hello"))])
    agent_id = make_agent(c["agent"], idleSessionTTLInSeconds=60)
    prepare(c["agent"], agent_id)
    invoke(c["rt"], agent_id, "hi")
    assert (
        len(
            json.loads(
                orch(invoke(c["rt"], agent_id, "hi", enableTrace=True)["traces"], "modelInvocationInput")[0][
                    "text"
                ]
            )["messages"]
        )
        == 3
    )
    db = sqlite3.connect(c["home"] / "haniwa.db")  # age the session past its TTL, as time would
    db.execute("UPDATE agent_sessions SET updated = updated - 61")
    db.commit()
    db.close()
    out = invoke(c["rt"], agent_id, "hi", enableTrace=True)
    assert len(json.loads(orch(out["traces"], "modelInvocationInput")[0]["text"])["messages"]) == 1


def test_memory_summarises_ended_sessions(start: Start) -> None:
    c = start(
        [
            ("Summarise the conversation", "The user asked about copper wire stock: 45 m."),
            ("copper", final("45 m of copper wire.")),
            ("again", final("ok")),
        ]
    )
    agent_id = make_agent(
        c["agent"], memoryConfiguration={"enabledMemoryTypes": ["SESSION_SUMMARY"], "storageDays": 30}
    )
    prepare(c["agent"], agent_id)
    invoke(c["rt"], agent_id, "copper?", session="sess-a", memoryId="user-1", endSession=True)
    mem = c["rt"].get_agent_memory(
        agentId=agent_id, agentAliasId="TSTALIASID", memoryType="SESSION_SUMMARY", memoryId="user-1"
    )
    summaries = [m["sessionSummary"] for m in mem["memoryContents"]]
    assert [s["summaryText"] for s in summaries] == ["The user asked about copper wire stock: 45 m."]
    assert summaries[0]["sessionId"] == "sess-a"
    later = invoke(c["rt"], agent_id, "again", session="sess-b", memoryId="user-1", enableTrace=True)
    assert (
        "copper wire stock: 45 m"
        in json.loads(orch(later["traces"], "modelInvocationInput")[0]["text"])["system"]
    )
    c["rt"].delete_agent_memory(agentId=agent_id, agentAliasId="TSTALIASID", memoryId="user-1")
    mem = c["rt"].get_agent_memory(
        agentId=agent_id, agentAliasId="TSTALIASID", memoryType="SESSION_SUMMARY", memoryId="user-1"
    )
    assert mem["memoryContents"] == []


class _Slow(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        value = event["parameters"][0]["value"]
        if value == "slow":
            time.sleep(2)
        body = json.dumps({"material": value, "stock": 7}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # the timed-out client has gone, as intended
            self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_http_executor_and_its_timeout(start: Start) -> None:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        c = start(
            [
                ("Observation from get_material_stock:\nError: ([^\n]+)", final(G1)),
                ('"stock": (\\d+)', final("stock " + G1)),
                ("stock of (\\w+)", step("get_material_stock", material_name=G1)),
            ],
            functions={"stock-http": f"http://127.0.0.1:{srv.server_port}/stock"},
            agent_http_timeout=0.5,
        )
        agent_id = make_agent(c["agent"])
        function_group(c["agent"], agent_id, "stock-http")
        prepare(c["agent"], agent_id)
        assert invoke(c["rt"], agent_id, "stock of glass")["text"] == "stock 7"
        t0 = time.monotonic()
        assert "timed out after 0.5 s" in invoke(c["rt"], agent_id, "stock of slow", session="s2")["text"]
        assert time.monotonic() - t0 < 1.9
    finally:
        srv.shutdown()


def test_openapi_action_group(start: Start) -> None:
    c = start(
        [
            ("Observation from getStock:\n([^\n]+)", final(G1)),
            ("stock", step("getStock", name="copper wire")),
        ],
        functions={"api": "tests.agent_tools:lambda_api"},
    )
    schema = {
        "openapi": "3.0.0",
        "info": {"title": "stock", "version": "1"},
        "paths": {
            "/stock/{name}": {
                "get": {
                    "operationId": "getStock",
                    "description": "Stock of a material",
                    "parameters": [
                        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
    }
    agent_id = make_agent(c["agent"])
    c["agent"].create_agent_action_group(
        agentId=agent_id,
        agentVersion="DRAFT",
        actionGroupName="api",
        actionGroupExecutor={"lambda": "arn:aws:lambda:us-east-1:000000000000:function:api"},
        apiSchema={"payload": json.dumps(schema)},
    )
    prepare(c["agent"], agent_id)
    out = invoke(c["rt"], agent_id, "copper wire stock please", enableTrace=True)
    assert out["text"] == "GET /stock/{name} name=copper wire"
    agi = orch(out["traces"], "invocationInput")[0]["actionGroupInvocationInput"]
    assert agi["apiPath"] == "/stock/{name}" and agi["verb"] == "get"


def test_inline_agent(start: Start) -> None:
    c = start(
        [
            ('"stock": (\\d+)', final(G1)),
            ("stock of ([^\n]+)", step("get_material_stock", material_name=G1)),
        ]
    )
    resp = c["rt"].invoke_inline_agent(
        sessionId="inline-1",
        foundationModel=MODEL,
        instruction=INSTRUCTION,
        inputText="stock of copper wire",
        actionGroups=[
            {
                "actionGroupName": "stock",
                "actionGroupExecutor": {"lambda": "arn:aws:lambda:us-east-1:000000000000:function:stock"},
                "functionSchema": {
                    "functions": [
                        {
                            "name": "get_material_stock",
                            "parameters": {"material_name": {"type": "string", "required": True}},
                        }
                    ]
                },
            }
        ],
    )
    text = "".join(e["chunk"]["bytes"].decode() for e in resp["completion"] if "chunk" in e)
    assert text == "45"


def test_bad_input(start: Start) -> None:
    c = start([], default=final("ok"))
    agent_id = make_agent(c["agent"])

    def code(fn: Callable[[], Any]) -> tuple[int, str]:
        with pytest.raises(ClientError) as e:
            fn()
        return e.value.response["ResponseMetadata"]["HTTPStatusCode"], e.value.response["Error"]["Code"]

    # not prepared yet
    assert code(lambda: invoke(c["rt"], agent_id, "hi")) == (400, "ValidationException")
    # an executor that is not registered is refused at PrepareAgent, naming what is
    function_group(c["agent"], agent_id, "rm-rf", "delete_everything")
    status, err = code(lambda: c["agent"].prepare_agent(agentId=agent_id))
    assert (status, err) == (400, "ValidationException")
    assert code(lambda: invoke(c["rt"], "NOSUCHAGNT", "hi")) == (404, "ResourceNotFoundException")
    assert code(lambda: invoke(c["rt"], agent_id, "hi", alias="NOSUCHALIS")) == (
        404,
        "ResourceNotFoundException",
    )
    other = make_agent(c["agent"], "other-agent")
    prepare(c["agent"], other)
    assert code(lambda: invoke(c["rt"], other, "   ")) == (400, "ValidationException")
    results = [
        {"functionResult": {"actionGroup": "x", "function": "y", "responseBody": {"TEXT": {"body": "z"}}}}
    ]
    assert code(
        lambda: c["rt"].invoke_agent(
            agentId=other,
            agentAliasId="TSTALIASID",
            sessionId="s-1",
            sessionState={"invocationId": "nope", "returnControlInvocationResults": results},
        )
    ) == (400, "ValidationException")
    assert invoke(c["rt"], other, "hi")["text"] == "ok"
