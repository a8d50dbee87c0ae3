"""The loop's checks on calls and answers (``haniwa.agents.review``, ``haniwa.agents.variants``): pure
functions over values, so they are tested directly."""

from __future__ import annotations

from haniwa.agents.prompting import prompts
from haniwa.agents.review import complete_answer, listed_siblings, review_answer, unasked_siblings
from haniwa.agents.variants import fold, ground


def test_ground_puts_arguments_back_in_the_users_form() -> None:
    question = ["注文A-101の状況と、銅線の在庫を教えて。"]
    assert ground("铜线", question) == "銅線"  # simplified forms → the span the user wrote
    assert ground("ＡＢＣ", ["order abc"]) == "abc"  # full width → as written
    assert ground("铜线", ["铜线的库存是多少？"]) == "铜线"  # the user wrote it so: kept
    assert ground("铁板", question) == "铁板"  # nothing to match: kept
    assert ground("aluminium", question) == "aluminium"
    assert len(fold("铜线 ＡＢＣ")) == len("铜线 ＡＢＣ")


def test_answer_review() -> None:
    en, ja = prompts("en"), prompts("ja")
    stock = ({"material_name": "aluminium"}, '{"material": "aluminium", "stock": 120}')
    copper = ({"material_name": "copper wire"}, '{"material": "copper wire", "stock": 45}')
    assert review_answer("aluminium: 120, copper wire: 45", "en", [stock, copper], en) is None
    assert review_answer("We have 1,200 in all.", "en", [stock], en) is not None
    missing = review_answer("The total is 165.", "en", [stock, copper], en)
    assert missing is not None and '"stock": 120' in missing and '"stock": 45' in missing
    order = ({"order_id": "A-100"}, '{"order_id": "A-100", "status": "shipped"}')
    assert review_answer("注文A-100は shipped です。", "ja", [order], ja) is None
    # a Japanese question answered in Chinese or in English is sent back
    assert review_answer("订单A-100已经发货, shipped", "ja", [order], ja) == ja["answer_language"]
    assert review_answer("The capital of Japan is Tokyo.", "ja", [], ja) == ja["answer_language"]
    assert review_answer("東京です。", "ja", [], ja) is None
    assert review_answer("Hello! I am the factory assistant.", "en", [], en) is None


def test_items_named_side_by_side_and_answer_completion() -> None:
    assert unasked_siblings("アルミニウムと強化ガラスの在庫は？", [{"material_name": "アルミニウム"}]) == [
        "強化ガラス"
    ]
    both = [{"material_name": "アルミニウム"}, {"material_name": "強化ガラス"}]
    assert unasked_siblings("アルミニウムと強化ガラスの在庫は？", both) == []
    assert unasked_siblings("What is the stock of aluminium and of copper wire?", [{"m": "copper wire"}]) == [
        "aluminium"
    ]
    assert unasked_siblings("注文A-100はどうなっていますか？", [{"order_id": "A-100"}]) == []
    glass = ({"material_name": "強化ガラス"}, '{"material": "強化ガラス", "stock": 8}')
    assert complete_answer("強化ガラスは8です。", [glass]) == "強化ガラスは8です。"
    assert (
        complete_answer("在庫はありません。", [glass]) == "在庫はありません。\nmaterial: 強化ガラス, stock: 8"
    )


def test_parse_step_bare_input_and_invalid_json_message() -> None:
    import pytest

    from haniwa.agents.base import Parameter, Tool
    from haniwa.agents.steps import ArgumentError, StepError, check_arguments, parse_step

    p = prompts("en")
    calc = Tool("calculate", "arithmetic", (Parameter("expression", "string", required=True),))
    step = parse_step('{"thought": "t", "action": {"tool": "calculate", "input": "2^10"}}', p)
    assert check_arguments(calc, step.arguments) == {"expression": "2^10"}
    two = Tool("convert", "currency", (Parameter("amount", "number"), Parameter("currency", "string")))
    with pytest.raises(ArgumentError, match=r"input must be an object of parameters: convert\(amount"):
        check_arguments(two, parse_step('{"action": {"tool": "convert", "input": 20}}', p).arguments)
    with pytest.raises(StepError) as bad:
        parse_step("no json here", p)
    assert '{"thought": ..., "action": {...}}' in str(bad.value) and "{{" not in str(bad.value)


def test_items_a_knowledge_base_lists_next_to_a_looked_up_one() -> None:
    sheet = "ハニワロボ HR-7 の材料は、アルミニウム 12 kg と銅線 3 m です。"
    asked = "ロボットの材料の在庫は？"
    assert listed_siblings(asked, [{"material_name": "アルミニウム"}], [sheet]) == ["銅線"]
    assert listed_siblings(asked, [{"m": "アルミニウム"}, {"m": "銅線"}], [sheet]) == []
    assert listed_siblings(
        "What parts?", [{"part": "bolt"}], ["The kit has a bolt, nut, washer and spring."]
    ) == [
        "nut",
        "washer",
        "spring",
    ]
    colon = "材料: 粘土 2kg、銅線 5m。製造工程: 粘土を成形して焼成し、銅線で配線します。"
    assert listed_siblings("はにわロボットの材料の在庫は？", [{"m": "粘土"}], [colon]) == ["銅線"]
    # the user named the item: a list around it in the knowledge base is not a request for all of it
    assert listed_siblings("粘土の在庫を教えて", [{"m": "粘土"}], [colon]) == []


def test_listed_items_are_looked_up_with_the_tool_that_took_their_sibling() -> None:
    """Items a result lists beside a looked-up value are the same kind of thing: the send-back names the
    tool that took it, and the next step may call only that tool or answer. Items the question names
    itself may need another tool, so every tool stays open for them; a wording problem leaves only the
    answer."""
    from haniwa.agents.base import Parameter, Tool
    from haniwa.agents.review import AnswerReview
    from haniwa.agents.steps import step_schema

    sheet = "ハニワロボ HR-7 の材料は、アルミニウム 12 kg と銅線 3 m です。"
    p = prompts("ja")
    calls = [{"material_name": "アルミニウム"}]
    back = AnswerReview(True).check(
        "アルミニウムは120です。",
        "ロボットの材料の在庫は？",
        "ja",
        calls,
        [sheet],
        [],
        p,
        ["get_material_stock"],
    )
    assert back is not None and back.tools == ("get_material_stock",)
    assert "銅線" in back.text and "get_material_stock で" in back.text
    asked = AnswerReview(True).check(
        "アルミニウムは120です。",
        "アルミニウムと銅線の在庫は？",
        "ja",
        calls,
        [],
        [],
        p,
        ["get_material_stock"],
    )
    assert asked is not None and asked.tools is None and "銅線" in asked.text
    english = AnswerReview(True).check(
        "Aluminium: 120", "What is the stock of the parts?", "en", [{"part": "bolt"}],
        ["The kit has a bolt, nut and washer."], [], prompts("en"), ["stock"],
    )  # fmt: skip
    assert english is not None and english.tools == ("stock",) and "with stock now" in english.text

    stock = Tool("get_material_stock", "stock", (Parameter("material_name", "string", required=True),))
    search = Tool("search_orders", "orders", (Parameter("q", "string", required=True),))
    names = [
        a["properties"]["tool"]["const"]
        for a in step_schema([stock, search], only=back.tools)["properties"]["action"]["anyOf"]
    ]
    assert names == ["get_material_stock", "final_answer"]
    answer_only = step_schema([stock, search], only=())["properties"]["action"]
    assert answer_only["properties"]["tool"] == {"const": "final_answer"}
    every = step_schema([stock, search])["properties"]["action"]["anyOf"]
    assert len(every) == 3
