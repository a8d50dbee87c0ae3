"""Placeholder arguments (``haniwa.agents.placeholders``): a value the model wrote without having it is
never sent to a function."""

from __future__ import annotations

from haniwa.agents.base import Parameter, Tool
from haniwa.agents.placeholders import dates, find_placeholders, self_described, tool_text


def _tool(*params: Parameter, description: str = "") -> Tool:
    return Tool("t", description, params)


STOCK = _tool(Parameter("material_name", "string", "材料名", True))


def test_a_parameters_own_name_or_description_is_a_placeholder() -> None:
    known = ["はにわロボットの材料の在庫はどれくらいある？"]
    assert find_placeholders(STOCK, {"material_name": "材料名"}, known).refused == {"material_name": "材料名"}
    assert find_placeholders(STOCK, {"material_name": "<material_name>"}, known).refused
    assert find_placeholders(STOCK, {"material_name": "MATERIAL NAME"}, known).refused
    assert find_placeholders(STOCK, {"material_name": "  "}, known).refused


def test_a_value_from_nowhere_is_a_placeholder() -> None:
    city = _tool(Parameter("city", "string", "city", True))
    assert find_placeholders(city, {"city": "Paris"}, ["What is the capital of France?"]).refused
    assert find_placeholders(city, {"city": "東京"}, ["日本の首都はどこですか？"]).refused
    assert not find_placeholders(city, {"city": "東京"}, ["東京と大阪の天気を比べて。"]).refused
    people = _tool(Parameter("people", "integer", "number of people", True))
    assert find_placeholders(people, {"people": 4}, ["Book a table please."]).refused
    assert not find_placeholders(people, {"people": 2}, ["A table for 2 on Friday."]).refused


def test_values_from_results_instructions_and_tool_descriptions_are_not() -> None:
    # a value an earlier result holds: the chained call (search → id → reserve)
    reserve = _tool(Parameter("book_id", "string", "書籍ID", True))
    known = ["『こころ』を予約して", '{"book_id": "BK-0042", "title": "こころ"}']
    assert not find_placeholders(reserve, {"book_id": "BK-0042"}, known).refused
    assert find_placeholders(reserve, {"book_id": "BK-0001"}, known).refused
    # a material the knowledge base named
    assert not find_placeholders(
        STOCK, {"material_name": "銅線"}, ["材料は?", "材料: 粘土 2kg、銅線 5m"]
    ).refused
    # codes the tool's description lists
    convert = _tool(
        Parameter("amount", "number", "", True),
        Parameter("currency", "string", "", True),
        description="Convert money (ISO codes: USD, EUR, JPY)",
    )
    question = ["100ユーロは何円ですか？"]
    assert not find_placeholders(
        convert, {"amount": 100, "currency": "EUR"}, [*question, tool_text(convert)]
    ).refused
    assert find_placeholders(convert, {"amount": 100, "currency": "EUR"}, question).refused
    # arithmetic over the user's numbers; a rephrased query made of the user's words
    calc = _tool(Parameter("expression", "string", "", True))
    assert not find_placeholders(calc, {"expression": "2**10"}, ["What is 2 to the power of 10?"]).refused
    search = _tool(Parameter("query", "string", "", True))
    assert not find_placeholders(search, {"query": "夏目漱石 小説"}, ["夏目漱石の小説を探して"]).refused


def test_an_optional_placeholder_is_dropped_not_refused() -> None:
    tool = _tool(Parameter("city", "string", "", True), Parameter("unit", "string", "単位", False))
    found = find_placeholders(tool, {"city": "大阪", "unit": "単位"}, ["大阪の天気は？"])
    assert not found.refused
    assert found.arguments == {"city": "大阪"}
    # nothing to look for (a flag) is never a placeholder
    flag = _tool(Parameter("urgent", "boolean", "", True))
    assert not find_placeholders(flag, {"urgent": True}, ["hi"]).refused


def test_a_date_the_user_gave_in_another_form_is_not_a_placeholder() -> None:
    assert dates("May 3, 2 nights") == {(5, 3)}
    assert dates("６月１日から3泊") == {(6, 1)}
    assert dates("on the 7th of July or 2025/08/10") == {(7, 7), (8, 10)}
    reserve = _tool(Parameter("check_in", "string", "check-in date", True))
    for said, value in [
        ("Book a room for 2 nights from May 3.", "2025-05-03"),
        ("6月1日から3泊で予約して", "2025-06-01"),
        ("A room on 3 May please", "05/03"),
        ("7月7日に空室は？", "7月7日"),
    ]:
        assert not find_placeholders(reserve, {"check_in": value}, [said]).refused, (said, value)
    # a date nobody said is still made up
    assert find_placeholders(reserve, {"check_in": "2025-05-04"}, ["from May 3"]).refused
    assert find_placeholders(reserve, {"check_in": "2025-05-03"}, ["Book a room for 2 nights"]).refused


def test_a_query_that_is_its_own_description_is_not_a_search() -> None:
    kb = _tool(Parameter("query", "string", "what to look for", True))
    assert self_described(kb, {"query": "what to look for"}) == {"query": "what to look for"}
    assert self_described(kb, {"query": " <query> "}) == {"query": " <query> "}
    assert self_described(kb, {"query": ""}) == {"query": ""}
    # free text need not appear before: any real query is a search
    assert self_described(kb, {"query": "check-in time"}) == {}
