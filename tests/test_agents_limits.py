"""Agents within bounds, through boto3 against a real server: a Python function that overruns
``agent_function_timeout`` fails as an observation, ``agent_time_limit`` cuts off a slow model or tool call
inside a step, and PrepareAgent refuses OpenAPI documents whose YAML aliases would expand without end.

The functions below are registered through ``HANIWA_AGENT_FUNCTIONS`` as ``tests.test_agents_limits:…``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.testing.server import serve_in_thread
from tests.conftest import ECHO_CATALOG, client_kwargs
from tests.test_agents_invoke import final, function_group, invoke, make_agent, orch, prepare, step

MODEL = "scripted:agent"
QUESTION = "What is the stock of copper wire?"
STEP = step("get_material_stock", "look it up", material_name="copper wire")


def sleepy(material_name: str) -> str:
    """A function that blocks far longer than the tests allow it."""
    time.sleep(4)
    return "45 m"


async def sleepy_async(material_name: str) -> str:
    await asyncio.sleep(4)
    return "45 m"


def quick(material_name: str) -> str:
    return f"{material_name}: 45 m"


FUNCTIONS = {
    "sleepy": "tests.test_agents_limits:sleepy",
    "sleepy-async": "tests.test_agents_limits:sleepy_async",
    "quick": "tests.test_agents_limits:quick",
}
RULES = [
    (r"Observation from get_material_stock:\n(.*?)\n", final("The stock is @G1@.")),
    ("stock of copper wire", STEP),
]


def catalog(rules: list[tuple[str, str]], delay_ms: float = 0) -> str:
    table = ", ".join(
        f"{{ match = {json.dumps(m)}, reply = {json.dumps(r.replace('@G1@', chr(92) + 'g<1>'))} }}"
        for m, r in rules
    )
    return (
        ECHO_CATALOG
        + f'\n[models."{MODEL}"]\nbackend = "scripted"\nkind = "chat"\n'
        + f"options = {{ rules = [{table}], delay_ms = {delay_ms} }}\n"
    )


Start = Callable[..., dict[str, Any]]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    stack: list[Any] = []

    def _start(rules: list[tuple[str, str]] = RULES, delay_ms: float = 0, **settings: Any) -> dict[str, Any]:
        home = tmp_path / f"home{len(stack)}"
        home.mkdir()
        (home / "models.toml").write_text(catalog(rules, delay_ms), encoding="utf-8")
        s = Settings(home=home, profile="fast", agent_functions=FUNCTIONS, **settings)
        cm = serve_in_thread(create_app(s))
        url = cm.__enter__()
        stack.append(cm)
        return {
            "agent": boto3.client("bedrock-agent", **client_kwargs(url)),
            "rt": boto3.client("bedrock-agent-runtime", **client_kwargs(url)),
        }

    yield _start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


def agent_with(c: dict[str, Any], function: str) -> str:
    agent_id = make_agent(c["agent"])  # its model is scripted:agent, the one the catalog above defines
    function_group(c["agent"], agent_id, name=function)
    prepare(c["agent"], agent_id)
    return agent_id


def observations(out: dict[str, Any]) -> list[str]:
    return [
        o["actionGroupInvocationOutput"]["text"]
        for o in orch(out["traces"], "observation")
        if o["type"] == "ACTION_GROUP"
    ]


def failures(out: dict[str, Any]) -> list[str]:
    return [
        t["trace"]["failureTrace"]["failureReason"] for t in out["traces"] if "failureTrace" in t["trace"]
    ]


# -- agent_function_timeout ------------------------------------------------------------------------------
@pytest.mark.parametrize("function", ["sleepy", "sleepy-async"])
def test_function_past_its_timeout_fails_as_an_observation(start: Start, function: str) -> None:
    c = start(agent_function_timeout=0.5)
    agent_id = agent_with(c, function)
    began = time.monotonic()
    out = invoke(c["rt"], agent_id, QUESTION, enableTrace=True)
    took = time.monotonic() - began
    # the model reads why the call failed and answers with it; the run does not wait for the function
    [seen] = observations(out)
    assert seen.startswith("Error: get_material_stock did not finish within 0.5 s"), seen
    assert "did not finish within 0.5 s" in out["text"]
    assert took < 3.5, took


def test_function_within_its_timeout_runs(start: Start) -> None:
    c = start(agent_function_timeout=5)
    out = invoke(c["rt"], agent_with(c, "quick"), QUESTION, enableTrace=True)
    assert observations(out) == ["copper wire: 45 m"]
    assert out["text"] == "The stock is copper wire: 45 m."


# -- agent_time_limit, inside a step ---------------------------------------------------------------------
def test_time_limit_cuts_off_a_slow_model_call(start: Start) -> None:
    # each step's reply is ~30 tokens at 100 ms: one step alone outlasts the 1.5 s limit
    c = start(delay_ms=100, agent_time_limit=1.5)
    agent_id = agent_with(c, "quick")
    began = time.monotonic()
    out = invoke(c["rt"], agent_id, QUESTION, enableTrace=True)
    took = time.monotonic() - began
    assert out["text"] == "Sorry, I could not finish this request within the time limit."
    assert failures(out) == ["the time limit (1.5 s) was reached"]
    assert orch(out["traces"], "modelInvocationInput") and not orch(out["traces"], "modelInvocationOutput")
    assert took < 2.9, took


def test_results_found_before_the_time_limit_are_in_the_answer(start: Start) -> None:
    # the first step is short; the final answer is long enough to run past the limit: what the function
    # returned is still given, on a line of its own after the "could not finish" sentence
    long_final = final("The stock is " + "very " * 150 + "good.")
    rules = [("Observation from get_material_stock", long_final), ("stock of copper wire", STEP)]
    c = start(rules, delay_ms=20, agent_time_limit=2.5)
    out = invoke(c["rt"], agent_with(c, "quick"), QUESTION, enableTrace=True)
    assert observations(out) == ["copper wire: 45 m"]
    assert failures(out) == ["the time limit (2.5 s) was reached"]
    assert out["text"] == (
        "I could not finish this request within the limit. What the functions returned:\ncopper wire: 45 m"
    )


def test_time_limit_cuts_off_a_slow_function(start: Start) -> None:
    c = start(agent_time_limit=1.5, agent_function_timeout=30)
    agent_id = agent_with(c, "sleepy")
    began = time.monotonic()
    out = invoke(c["rt"], agent_id, QUESTION, enableTrace=True)
    took = time.monotonic() - began
    assert observations(out) == ["Error: the time limit (1.5 s) was reached"]
    # no time is left to ask the model for a summary: the fixed answer, and the session records it
    assert out["text"] == "Sorry, I could not finish this request within the time limit."
    assert failures(out) == ["the time limit (1.5 s) was reached"]
    assert took < 3.5, took


# -- PrepareAgent and YAML -------------------------------------------------------------------------------
def nested_aliases(levels: int) -> str:
    """A "billion laughs": each level is a list of nine aliases to the one before (9**levels strings)."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    lines += [
        "paths:",
        "  /stock:",
        "    get:",
        "      operationId: stock",
        "      parameters:",
        "        - name: material",
        "          in: query",
        f"          description: *l{levels}",
    ]
    return "\n".join(lines) + "\n"


def merge_keys(levels: int) -> str:
    """The same with YAML merge keys: each mapping merges nine copies of the one before."""
    lines = ["m0: &m0 {" + ", ".join(f"k{j}: v" for j in range(9)) + "}"]
    for i in range(1, levels + 1):
        lines.append(f"m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * 9) + "]}")
    return "\n".join(lines) + "\npaths: {}\n"


def api_agent(c: dict[str, Any], payload: str) -> str:
    agent_id = make_agent(c["agent"], name=f"api-{uuid.uuid4().hex[:8]}")
    c["agent"].create_agent_action_group(
        agentId=agent_id,
        agentVersion="DRAFT",
        actionGroupName="api",
        actionGroupExecutor={"customControl": "RETURN_CONTROL"},
        apiSchema={"payload": payload},
    )
    return agent_id


def refused(c: dict[str, Any], agent_id: str) -> tuple[str, float]:
    began = time.monotonic()
    with pytest.raises(ClientError) as err:
        c["agent"].prepare_agent(agentId=agent_id)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return err.value.response["Error"]["Message"], time.monotonic() - began


@pytest.mark.parametrize("bomb", [nested_aliases(7), merge_keys(6)], ids=["aliases", "merge-keys"])
def test_prepare_refuses_a_yaml_alias_bomb_at_once(start: Start, bomb: str) -> None:
    c = start()
    assert len(bomb) < 800
    message, took = refused(c, api_agent(c, bomb))
    assert "expands to more than 100000 YAML nodes" in message
    assert took < 2, took
    assert c["agent"].get_agent(agentId=api_agent(c, bomb))["agent"]["agentStatus"] == "NOT_PREPARED"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("a: &a [*a]\npaths: {}\n", "refers to a node that contains it"),
        ("[" * 50_000 + "]" * 50_000, "nests too deeply"),
        ("x: " + "9" * 5000 + "\npaths: {}\n", "holds a value that cannot be read"),
        ("paths: {/a: {get: {parameters: [{name: q, description: [1, 2]}]}}}", "must be a string"),
        ("paths: {/a: {get: {parameters: [{name: q, schema: {type: [1]}}]}}}", "type must be one of"),
        ("paths: {/a: [1, 2]}", "must be an object"),
        ("paths:\n  /a: {get: {operationId: a}}\n" + "#" * (1024 * 1024), "at most 1048576 are accepted"),
    ],
    ids=["cycle", "deep", "huge-int", "list-description", "list-type", "list-path", "too-large"],
)
def test_prepare_refuses_unreadable_openapi_documents(start: Start, payload: str, expected: str) -> None:
    c = start()
    message, _ = refused(c, api_agent(c, payload))
    assert expected in message, message


def test_a_small_yaml_document_with_aliases_still_works(start: Start) -> None:
    c = start()
    payload = """
components:
  material: &material {name: material_name, in: query, required: true, schema: {type: string}}
paths:
  /stock:
    get: {operationId: get_stock, description: Stock of one material, parameters: [*material]}
  /order:
    post: {operationId: order, parameters: [*material]}
"""
    agent_id = api_agent(c, payload)
    prepare(c["agent"], agent_id)
