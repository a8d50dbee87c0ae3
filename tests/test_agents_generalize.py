"""Agent behaviour that must hold on any task, driven by a scripted model through boto3: the knowledge base
is looked up before the first step (a later search that finds nothing new says so), a placeholder argument
never reaches a function (the user is asked for the value instead), a chained call takes its value from an
earlier result, and items a knowledge-base result lists next to the one looked up are pointed out to the
model."""

from __future__ import annotations

from tests import agent_tools
from tests.test_agents_invoke import (
    Start,
    final,
    function_group,
    invoke,
    make_agent,
    orch,
    prepare,
    robot_kb,
    start,
    step,
)

__all__ = ["start"]  # the fixture

ORDER_PARAMS = {
    "material_name": {"type": "string", "description": "材料名", "required": True},
    "quantity": {"type": "integer", "description": "数量", "required": True},
}


def _reprompts(traces: list[dict[str, object]]) -> list[str]:
    return [
        str(o["repromptResponse"]["text"])  # type: ignore[index]
        for o in orch(traces, "observation")  # type: ignore[arg-type]
        if o["type"] == "REPROMPT"
    ]


def test_a_placeholder_argument_is_never_sent_and_the_user_is_asked(start: Start) -> None:
    c = start(
        [
            ("在庫を調べて", step("get_material_stock", material_name="材料名")),
            ("呼びませんでした", step("get_material_stock", material_name="材料名")),
        ]
    )
    agent_id = make_agent(c["agent"])
    function_group(
        c["agent"],
        agent_id,
        parameters={"material_name": {"type": "string", "description": "材料名", "required": True}},
    )
    prepare(c["agent"], agent_id)
    out = invoke(c["rt"], agent_id, "在庫を調べて", enableTrace=True)
    assert agent_tools.CALLS == []  # the function never ran
    assert not orch(out["traces"], "invocationInput")  # nor did a knowledge-base lookup: there is none
    first = _reprompts(out["traces"])[0]
    assert "get_material_stock" in first and "material_name" in first and "尋ねて" in first
    # told once; the same placeholder again: the answer asks the user for the value, by its description
    assert out["text"] == "お調べするには材料名が必要です。教えていただけますか？"


def test_a_made_up_value_is_refused_and_one_from_a_result_runs(start: Start) -> None:
    c = start(
        [
            ("same amount", step("get_material_stock", material_name="aluminium")),
            ("quantity", final("I need to know how many to order.")),
            ('"stock": 120', step("order_parts", material_name="aluminium", quantity=120)),
            ("ordered 120", final("Ordered 120 aluminium.")),
        ]
    )
    agent_id = make_agent(c["agent"])
    function_group(c["agent"], agent_id)
    function_group(c["agent"], agent_id, "orders", "order_parts", parameters=ORDER_PARAMS)
    prepare(c["agent"], agent_id)
    # chained: the quantity comes from the stock function's result
    out = invoke(c["rt"], agent_id, "Check the aluminium stock and order the same amount", enableTrace=True)
    assert agent_tools.CALLS == [
        ("get_material_stock", {"material_name": "aluminium"}),
        ("order_parts", {"material_name": "aluminium", "quantity": 120}),
    ]
    assert out["text"] == "Ordered 120 aluminium."

    # a quantity nobody said: refused as an observation, never sent
    agent_tools.CALLS.clear()
    again = step("order_parts", material_name="aluminium", quantity=999)
    c2 = start([("order some", again), ("was not called", again)])
    agent2 = make_agent(c2["agent"], "orders-only")
    function_group(c2["agent"], agent2, "orders", "order_parts", parameters=ORDER_PARAMS)
    prepare(c2["agent"], agent2)
    out = invoke(c2["rt"], agent2, "Please order some aluminium", enableTrace=True)
    assert agent_tools.CALLS == []
    assert "quantity" in _reprompts(out["traces"])[0]
    assert "数量" in out["text"]  # asked for by the parameter's description


def test_the_knowledge_base_first_and_the_items_it_lists(start: Start) -> None:
    c = start(
        [
            ("ロボットの材料の在庫", step("get_material_stock", material_name="アルミニウム")),
            ("まだ調べていません: 銅線", step("get_material_stock", material_name="銅線")),
            ('"material": "アルミニウム"', final("アルミニウムは 120 kg です。")),
            ('"material": "銅線"', final("アルミニウム 120 kg、銅線 45 m です。")),
        ]
    )
    agent_id = make_agent(c["agent"])
    function_group(c["agent"], agent_id)
    kb_id = robot_kb(c)
    c["agent"].associate_agent_knowledge_base(
        agentId=agent_id, agentVersion="DRAFT", knowledgeBaseId=kb_id, description="製品仕様書"
    )
    prepare(c["agent"], agent_id)
    out = invoke(c["rt"], agent_id, "ロボットの材料の在庫は？", enableTrace=True)
    inputs = orch(out["traces"], "invocationInput")
    # looked up before the model's first step, over the user's question
    assert inputs[0]["invocationType"] == "KNOWLEDGE_BASE"
    assert inputs[0]["knowledgeBaseLookupInput"]["text"] == "ロボットの材料の在庫は？"
    # the knowledge base lists アルミニウム and 銅線 side by side: the answer after one call goes back
    assert any("銅線" in r for r in _reprompts(out["traces"]))
    assert [a["material_name"] for _, a in agent_tools.CALLS] == ["アルミニウム", "銅線"]
    assert out["text"] == "アルミニウム 120 kg、銅線 45 m です。"


def test_a_search_that_finds_nothing_new_turns_to_the_functions(start: Start) -> None:
    c = start(
        [
            # the model searches again although the lookup before its first step found the sheet
            ("ロボットの材料の在庫", step("search_knowledge_base", query="ロボット 材料 在庫")),
            ("前の検索と同じ", step("get_material_stock", material_name="アルミニウム")),
            ('"material": "アルミニウム"', step("get_material_stock", material_name="銅線")),
            ('"material": "銅線"', final("アルミニウム 120 kg、銅線 45 m です。")),
        ]
    )
    agent_id = make_agent(c["agent"])
    function_group(c["agent"], agent_id)
    kb_id = robot_kb(c)
    c["agent"].associate_agent_knowledge_base(
        agentId=agent_id, agentVersion="DRAFT", knowledgeBaseId=kb_id, description="製品仕様書"
    )
    prepare(c["agent"], agent_id)
    out = invoke(c["rt"], agent_id, "ロボットの材料の在庫は？", enableTrace=True)
    kb = [i for i in orch(out["traces"], "invocationInput") if i["invocationType"] == "KNOWLEDGE_BASE"]
    assert [i["knowledgeBaseLookupInput"]["text"] for i in kb] == [
        "ロボットの材料の在庫は？",
        "ロボット 材料 在庫",
    ]
    # the model's next input says the search found nothing new, instead of showing the same passages again
    second = orch(out["traces"], "modelInvocationInput")[1]["text"]
    assert "前の検索と同じ結果" in second
    assert second.count("アルミニウム 12 kg") == 1  # the passages once, from the first lookup
    assert [a["material_name"] for _, a in agent_tools.CALLS] == ["アルミニウム", "銅線"]
    assert out["text"] == "アルミニウム 120 kg、銅線 45 m です。"


def test_an_answer_after_a_search_is_pointed_at_the_call_its_id_feeds(start: Start) -> None:
    """The model answers with the id a search returned instead of making the call the user asked for: the
    answer goes back once naming the tool that takes that id; the chained call runs with the id from the
    result and the date the user wrote in another form."""
    c = start(
        [
            ("Observation from find_supplier", final("The supplier id is SUP-7.")),
            ("supplier_id, which order_from", step("order_from", supplier_id="SUP-7", check_in="2025-05-03")),
            ("Observation from order_from", final("Ordered: PO-SUP-7, delivered on 2025-05-03.")),
            ("Order from", step("find_supplier", name="Kato Metals")),
        ]
    )
    agent_id = make_agent(c["agent"], "purchasing")
    function_group(
        c["agent"], agent_id, "suppliers", "find_supplier",
        parameters={"name": {"type": "string", "description": "supplier name", "required": True}},
    )  # fmt: skip
    function_group(
        c["agent"], agent_id, "supplier-orders", "order_from",
        parameters={
            "supplier_id": {"type": "string", "description": "supplier id", "required": True},
            "check_in": {"type": "string", "description": "delivery date", "required": True},
        },
    )  # fmt: skip
    prepare(c["agent"], agent_id)
    out = invoke(c["rt"], agent_id, "Order from Kato Metals for delivery on May 3.", enableTrace=True)
    assert agent_tools.CALLS == [
        ("find_supplier", {"name": "Kato Metals"}),
        ("order_from", {"supplier_id": "SUP-7", "check_in": "2025-05-03"}),
    ]
    assert any("supplier_id, which order_from takes" in r for r in _reprompts(out["traces"]))
    assert out["text"] == "Ordered: PO-SUP-7, delivered on 2025-05-03."


def test_after_a_failed_call_the_answer_is_not_pointed_at_another_call(start: Start) -> None:
    """The id a search found feeds a tool not called, but the last call failed: the answer that says so
    stands (the next call is not what is missing)."""
    c = start(
        [
            ("Observation from get_material_stock", final("Kato Metals is SUP-7, but the stock is unknown.")),
            ("Observation from find_supplier", step("get_material_stock", material_name="copper wire")),
            ("Check Kato", step("find_supplier", name="Kato Metals")),
        ]
    )
    agent_id = make_agent(c["agent"], "purchasing")
    function_group(
        c["agent"], agent_id, "suppliers", "find_supplier",
        parameters={"name": {"type": "string", "description": "supplier name", "required": True}},
    )  # fmt: skip
    function_group(
        c["agent"], agent_id, "supplier-orders", "order_from",
        parameters={
            "supplier_id": {"type": "string", "description": "supplier id", "required": True},
            "check_in": {"type": "string", "description": "delivery date", "required": True},
        },
    )  # fmt: skip
    function_group(c["agent"], agent_id, "broken")
    prepare(c["agent"], agent_id)
    out = invoke(c["rt"], agent_id, "Check Kato Metals and the copper wire stock.", enableTrace=True)
    assert [t for t, _ in agent_tools.CALLS] == ["find_supplier"]  # the broken one raises before recording
    assert not any("order_from" in r for r in _reprompts(out["traces"]))
    assert out["text"] == "Kato Metals is SUP-7, but the stock is unknown."


def test_a_search_for_the_querys_own_description_is_not_run(start: Start) -> None:
    c = start(
        [
            ("was not called: its query", step("get_material_stock", material_name="copper wire")),
            ("Observation from get_material_stock", final("copper wire: 45 m")),
            ("copper wire stock", step("search_knowledge_base", query="what to look for")),
        ]
    )
    agent_id = make_agent(c["agent"])
    function_group(c["agent"], agent_id)
    kb_id = robot_kb(c)
    c["agent"].associate_agent_knowledge_base(
        agentId=agent_id, agentVersion="DRAFT", knowledgeBaseId=kb_id, description="product sheets"
    )
    prepare(c["agent"], agent_id)
    out = invoke(c["rt"], agent_id, "What is the copper wire stock?", enableTrace=True)
    kb = [i for i in orch(out["traces"], "invocationInput") if i["invocationType"] == "KNOWLEDGE_BASE"]
    # the lookup before the first step ran; the search for "what to look for" did not
    assert [i["knowledgeBaseLookupInput"]["text"] for i in kb] == ["What is the copper wire stock?"]
    assert any("was not called: its query" in r for r in _reprompts(out["traces"]))
    assert agent_tools.CALLS == [("get_material_stock", {"material_name": "copper wire"})]
    assert out["text"] == "copper wire: 45 m"


def test_a_call_that_fails_on_a_name_the_knowledge_base_expands_is_told_its_members(start: Start) -> None:
    """The user asks about a kit; the stock function does not know kits, and the knowledge base lists the
    kit's members after its name: the failed call's observation names them, and each is looked up."""
    c = start(
        [
            ('"material": "銅線"', final("アルミニウム 120 kg、銅線 45 m です。")),
            ('"material": "アルミニウム"', step("get_material_stock", material_name="銅線")),
            (
                "中身は次のとおりです: アルミニウム, 銅線",
                step("get_material_stock", material_name="アルミニウム"),
            ),
            ("組立キットの在庫", step("get_material_stock", material_name="組立キット")),
        ]
    )
    agent_id = make_agent(c["agent"])
    function_group(c["agent"], agent_id)
    kb_id = robot_kb(c, "# キット\n\n組立キット: アルミニウム、銅線。\n")
    c["agent"].associate_agent_knowledge_base(
        agentId=agent_id, agentVersion="DRAFT", knowledgeBaseId=kb_id, description="製品仕様書"
    )
    prepare(c["agent"], agent_id)
    out = invoke(c["rt"], agent_id, "組立キットの在庫は？", enableTrace=True)
    assert [a["material_name"] for _, a in agent_tools.CALLS] == ["組立キット", "アルミニウム", "銅線"]
    assert out["text"] == "アルミニウム 120 kg、銅線 45 m です。"


def test_a_self_described_search_with_items_left_is_dropped_and_names_them(start: Start) -> None:
    c = start(
        [
            ('"material": "銅線"', final("アルミニウム 120 kg、銅線 45 m です。")),
            ("まだ調べていません: 銅線", step("get_material_stock", material_name="銅線")),
            ('"material": "アルミニウム"', step("search_knowledge_base", query="what to look for")),
            ("組立キットの在庫", step("get_material_stock", material_name="アルミニウム")),
        ]
    )
    agent_id = make_agent(c["agent"])
    function_group(c["agent"], agent_id)
    kb_id = robot_kb(c, "# キット\n\n組立キット: アルミニウム 12 kg、銅線 3 m。\n")
    c["agent"].associate_agent_knowledge_base(
        agentId=agent_id, agentVersion="DRAFT", knowledgeBaseId=kb_id, description="製品仕様書"
    )
    prepare(c["agent"], agent_id)
    out = invoke(c["rt"], agent_id, "組立キットの在庫は？", enableTrace=True)
    refused = [r for r in _reprompts(out["traces"]) if "クエリが入力の説明そのもの" in r]
    assert refused and "銅線" in refused[0] and "get_material_stock で" in refused[0]
    # the refused step left the conversation: the next model input does not show it
    inputs = [i["text"] for i in orch(out["traces"], "modelInvocationInput")]
    assert inputs[-1].count("what to look for") == inputs[0].count("what to look for")  # the prompt's own
    assert [a["material_name"] for _, a in agent_tools.CALLS] == ["アルミニウム", "銅線"]
    assert out["text"] == "アルミニウム 120 kg、銅線 45 m です。"
