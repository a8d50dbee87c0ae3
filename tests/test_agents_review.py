"""The loop's checks on calls and answers (``haniwa.agents.review``, ``haniwa.agents.variants``): pure
functions over values, so they are tested directly."""

from __future__ import annotations

from haniwa.agents.prompting import prompts
from haniwa.agents.review import (
    AnswerReview,
    chain_openings,
    complete_answer,
    listed_siblings,
    readable,
    review_answer,
    unasked_siblings,
)
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
    # the results it leaves out, as text (a small model shown JSON copies the braces into its answer)
    assert missing is not None and "stock: 120" in missing and "stock: 45" in missing
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


def test_json_results_and_answers_read_as_text() -> None:
    hotels = '[{"hotel_id": "H-301", "name": "Harbor View"}, {"hotel_id": "H-302", "name": "月見荘"}]'
    assert readable(hotels) == "hotel_id: H-301, name: Harbor View; hotel_id: H-302, name: 月見荘"
    assert readable('{"stock": 8}') == "stock: 8"
    assert readable("[1, 2]") == "[1, 2]"
    assert readable("plain text {x}") == "plain text {x}"
    # an answer that is a copied JSON result is given as text
    assert AnswerReview(enabled=True).final('{"reservation": "RSV-1"}', []) == "reservation: RSV-1"


def test_a_result_that_holds_another_tools_input_points_the_answer_at_that_call() -> None:
    """search → id → reserve: a result names a value the way a tool not called yet names its required
    parameter; a final answer right after it is sent back once, and the next step may call that tool or
    answer. A tool already called, or a field no tool takes, opens nothing."""
    params = {"search": ("keyword",), "reserve": ("hotel_id", "date"), "rooms": ("hotel_id",)}
    kw = {"keyword": "Harbor"}
    found = [("search", kw, '[{"hotel_id": "H-1", "name": "Harbor"}, {"hotel_id": "H-2", "name": "Sky"}]')]
    assert chain_openings(found, params, ["search"]) == {"reserve": ["hotel_id"], "rooms": ["hotel_id"]}
    assert chain_openings(found, params, ["search", "reserve"]) == {"rooms": ["hotel_id"]}
    assert chain_openings([("search", kw, '{"name": "Harbor"}')], params, ["search"]) == {}
    assert chain_openings([("search", kw, "Harbor: H-1")], params, ["search"]) == {}  # not JSON: no names
    member = [("get_member", {"member_id": "M-1"}, '{"member_id": "M-1", "plan": "gold"}')]
    assert chain_openings(member, {"get_member": ("member_id",)}, ["get_member"]) == {}
    # the end of the chain: the vacancy check returns the id it was given, which opens nothing new
    rooms = [("rooms", {"hotel_id": "H-1"}, '{"hotel_id": "H-1", "rooms_left": 2}')]
    assert chain_openings(rooms, params, ["search", "rooms"]) == {}

    review = AnswerReview(True, params=params)
    args = {"keyword": "Harbor"}
    back = review.check(
        "The id is H-1.", "Book Harbor for May 3", "en", [args], [], [(args, found[0][2])],
        prompts("en"), ["search"], found,
    )  # fmt: skip
    assert back is not None and back.tools == ("reserve", "rooms")
    assert "hotel_id" in back.text and "reserve, rooms" in back.text
    # once: the next answer stands (it reports the result)
    again = review.check(
        "The id is H-1.", "Book Harbor for May 3", "en", [args], [], [(args, found[0][2])],
        prompts("en"), ["search"], found,
    )  # fmt: skip
    assert again is None
    ja = AnswerReview(True, params=params).check(
        "IDはH-1です。", "ハーバーを予約して", "ja", [args], [], [(args, found[0][2])],
        prompts("ja"), ["search"], found,
    )  # fmt: skip
    assert ja is not None and "hotel_id は reserve, rooms の入力" in ja.text


def test_items_go_back_again_while_each_send_back_leads_to_a_call() -> None:
    """A list of three: the answer after the first call goes back naming the other two; after one more
    call, it goes back again for the last; an answer with no new call since does not go back for items."""
    p = prompts("en")
    bundle = ["Office Bundle: monitor, keyboard, webcam."]
    q = "Is every item of the Office Bundle in stock?"
    review = AnswerReview(True)
    one = [{"product": "monitor"}]
    first = review.check("Monitor: 12.", q, "en", one, bundle, [], p, ["stock"])
    assert first is not None and "keyboard, webcam" in first.text
    assert review.check("Monitor: 12.", q, "en", one, bundle, [], p, ["stock"]) is None  # no call since
    two = [*one, {"product": "keyboard"}]
    second = review.check("Monitor 12, keyboard 0.", q, "en", two, bundle, [], p, ["stock", "stock"])
    assert second is not None and "webcam" in second.text and "keyboard" not in second.text
    three = [*two, {"product": "webcam"}]
    assert review.check("12, 0, 3.", q, "en", three, bundle, [], p, ["stock"] * 3) is None


def test_an_item_named_in_the_plural_is_found_beside_its_singular_input() -> None:
    q = "How many laptops, monitors and webcams do you have?"
    assert unasked_siblings(q, [{"product": "laptop"}]) == ["monitors"]
    assert unasked_siblings(q, [{"product": "laptop"}, {"product": "monitor"}]) == ["webcams"]
    assert unasked_siblings("Are tents and stoves in stock?", [{"item": "tent"}]) == ["stoves"]


def test_a_result_a_later_call_took_its_input_from_need_not_be_restated() -> None:
    """search → id → vacancy: the answer reports the vacancy; the search result whose id fed the next call
    is a step of the chain, so it is neither asked for nor added. A result nothing took from still is."""
    search = ({"keyword": "京都"}, '[{"hotel_id": "H-302", "name": "月見荘", "city": "kyoto"}]')
    rooms = ({"hotel_id": "H-302", "date": "8月10日"}, '{"hotel_id": "H-302", "rooms_left": 2}')
    assert review_answer("月見荘は8月10日に2室空いています。", "ja", [search, rooms], prompts("ja")) is None
    assert complete_answer("2室空いています。", [search, rooms]) == "2室空いています。"
    # the search alone, or a result no later call took from: still reported
    assert review_answer("見つかりました。", "ja", [search], prompts("ja")) is not None
    # a reservation echoes the id it was given: a later call on the same hotel does not make it a step
    booked = ({"hotel_id": "H-302"}, '{"reservation_number": "RSV-302", "hotel_id": "H-302"}')
    assert "RSV-302" in complete_answer("2室空いています。", [search, booked, rooms])
    other = ({"keyword": "札幌"}, '[{"hotel_id": "H-303", "name": "スカイイン札幌"}]')
    assert review_answer("2室空いています。", "ja", [other, rooms], prompts("ja")) is not None


def test_the_members_a_knowledge_base_lists_under_a_name() -> None:
    from haniwa.agents.review import group_members

    kb = [
        "セット商品カタログ\nスターターセット: ノートPC、マウス、キーボード。\n"
        "Office Bundle: monitor, keyboard, webcam."
    ]
    assert group_members("Office Bundle", kb) == ["monitor", "keyboard", "webcam"]
    assert group_members("office bundle", kb) == ["monitor", "keyboard", "webcam"]
    assert group_members("スターターセット", kb) == ["ノートPC", "マウス", "キーボード"]
    assert group_members("monitor", kb) == []  # a member, not a heading
    assert group_members("セット商品カタログ", kb) == []  # no colon after it
    assert group_members("Office Bundle", ["Office Bundle: see the catalogue."]) == []  # one name: no list
