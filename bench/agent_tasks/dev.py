"""The dev split of the agent benchmark: the loop, its prompts and its checks may be tuned on these tasks.

The first 32 (a robot factory's stock, weather, currency, orders and arithmetic) are the benchmark's
original tasks; the rest add the walkthrough's knowledge-base agent and two more domains (a restaurant
and a gym) with chained calls, knowledge-base questions, missing values and failing tools; the last 12
(47-58: a hotel chain and an electronics shop, JA and EN) add chained calls, several items, knowledge-base
answers and KB + tool questions, the categories where the loop generalized worst.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from typing import Any

from bench.agent_tasks.common import Domain, Function, Param, Task, key

_key = key


# -- the tools: small, deterministic business functions -------------------------------------------------
STOCK = {
    "アルミニウム": 120,
    "銅線": 45,
    "強化ガラス": 8,
    "aluminium": 120,
    "aluminum": 120,
    "copper wire": 45,
    "tempered glass": 8,
}
WEATHER = {
    "東京": "晴れ 18°C",
    "tokyo": "sunny 18°C",
    "大阪": "雨 15°C",
    "osaka": "rain 15°C",
    "london": "cloudy 9°C",
    "paris": "sunny 12°C",
}
RATES = {("USD", "JPY"): 150.0, ("EUR", "JPY"): 160.0, ("JPY", "USD"): 1 / 150, ("JPY", "EUR"): 1 / 160}
ORDERS = {"A-100": "shipped", "A-101": "processing", "B-200": "delivered"}


def get_material_stock(material_name: str) -> dict[str, Any]:
    k = _key(material_name)
    if k not in STOCK:
        raise KeyError(f"unknown material {material_name!r}; known: {', '.join(STOCK)}")
    return {"material": material_name, "stock": STOCK[k]}


def get_weather(city: str) -> str:
    k = _key(city).removesuffix("市").removesuffix("都").removesuffix("府")
    if k not in WEATHER:
        raise KeyError(f"no forecast for {city!r}; known: {', '.join(WEATHER)}")
    return WEATHER[k]


def convert_currency(amount: float, from_currency: str, to_currency: str) -> dict[str, Any]:
    pair = (from_currency.strip().upper(), to_currency.strip().upper())
    if pair not in RATES:
        raise KeyError(f"no rate for {pair[0]}→{pair[1]}; use ISO codes such as USD, EUR, JPY")
    return {"amount": round(amount * RATES[pair], 2), "currency": pair[1]}


def get_order_status(order_id: str) -> dict[str, str]:
    k = order_id.strip().upper()
    if k not in ORDERS:
        raise KeyError(f"no order {order_id!r}")
    return {"order_id": k, "status": ORDERS[k]}


_OPS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.BitXor: operator.pow,  # people write 2^10 for a power
}


def calculate(expression: str) -> str:
    """Arithmetic only (no eval): + - * / ** and parentheses."""

    def ev(n: ast.AST) -> Any:
        if isinstance(n, ast.Constant) and isinstance(n.value, int | float):
            return n.value
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](ev(n.left), ev(n.right))
        if isinstance(n, ast.UnaryOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](ev(n.operand))
        raise ValueError(f"not arithmetic: {expression!r}")

    value = ev(ast.parse(expression.replace("×", "*").replace("÷", "/"), mode="eval").body)
    return str(int(value) if float(value).is_integer() else round(value, 6))


FACTORY = Domain(
    "robot factory",
    "You are the assistant of a robot factory. Use the tools for stock, weather, currency conversion, "
    "orders and arithmetic; answer other messages directly without tools. Answer briefly.",
    (
        Function(
            "get_material_stock",
            get_material_stock,
            "Stock of one material / 材料1つの在庫",
            {"material_name": Param()},
        ),
        Function(
            "get_weather", get_weather, "Today's weather in a city / 都市の今日の天気", {"city": Param()}
        ),
        Function(
            "convert_currency",
            convert_currency,
            "Convert money between currencies (ISO codes: USD, EUR, JPY) / 通貨の換算",
            {"amount": Param("number"), "from_currency": Param(), "to_currency": Param()},
        ),
        Function(
            "get_order_status",
            get_order_status,
            "Status of an order by id / 注文の状況",
            {"order_id": Param()},
        ),
        Function("calculate", calculate, "Evaluate an arithmetic expression / 計算", {"expression": Param()}),
    ),
)


def T(q: str, *calls: tuple[str, dict[str, Any]], facts: tuple[tuple[str, ...], ...] = ()) -> Task:
    """A factory task; its category follows from its calls."""
    category = "smalltalk" if not calls else "one" if len(calls) == 1 else "several"
    return Task(FACTORY, q, category, calls, facts, no_calls=not calls)


STK, WX, CUR, ORD, CALC = (
    "get_material_stock",
    "get_weather",
    "convert_currency",
    "get_order_status",
    "calculate",
)
FACTORY_TASKS = [
    # one call
    T(
        "How much aluminium do we have in stock?",
        (STK, {"material_name": "aluminium|aluminum"}),
        facts=(("120",),),
    ),
    T("銅線の在庫はいくつですか？", (STK, {"material_name": "銅線"}), facts=(("45",),)),
    T("強化ガラスの在庫を教えて。", (STK, {"material_name": "強化ガラス"}), facts=(("8",),)),
    T(
        "How many units of tempered glass are left?",
        (STK, {"material_name": "tempered glass"}),
        facts=(("8",),),
    ),
    T("What's the weather in London?", (WX, {"city": "london"}), facts=(("cloud", "9"),)),
    T("東京の天気は？", (WX, {"city": "東京|tokyo"}), facts=(("晴", "sunny"),)),
    T("大阪の天気を教えてください。", (WX, {"city": "大阪|osaka"}), facts=(("雨", "rain"),)),
    T("Check the weather in Paris.", (WX, {"city": "paris"}), facts=(("sunny", "12"),)),
    T(
        "Convert 20 USD to JPY.",
        (CUR, {"amount": 20, "from_currency": "usd", "to_currency": "jpy"}),
        facts=(("3000", "3,000"),),
    ),
    T(
        "100ユーロは何円ですか？",
        (CUR, {"amount": 100, "from_currency": "eur", "to_currency": "jpy"}),
        facts=(("16000", "16,000", "1万6000", "16000円"),),
    ),
    T(
        "15000円は何ドルですか？",
        (CUR, {"amount": 15000, "from_currency": "jpy", "to_currency": "usd"}),
        facts=(("100",),),
    ),
    T("What is the status of order A-100?", (ORD, {"order_id": "a-100"}), facts=(("shipped",),)),
    T("Is order A-101 shipped yet?", (ORD, {"order_id": "a-101"}), facts=(("processing", "not"),)),
    T(
        "注文B-200の状況を教えて。",
        (ORD, {"order_id": "b-200"}),
        facts=(("delivered", "配達", "配送済", "届"),),
    ),
    T("注文A-100はどうなっていますか？", (ORD, {"order_id": "a-100"}), facts=(("shipped", "発送", "出荷"),)),
    T("What is 37 * 89?", (CALC, {}), facts=(("3293", "3,293"),)),
    T("1234足す5678は？", (CALC, {}), facts=(("6912", "6,912"),)),
    T("What is 2 to the power of 10?", (CALC, {}), facts=(("1024", "1,024"),)),
    # two calls
    T(
        "What is the stock of aluminium and of copper wire?",
        (STK, {"material_name": "aluminium|aluminum"}),
        (STK, {"material_name": "copper wire"}),
        facts=(("120",), ("45",)),
    ),
    T(
        "アルミニウムと強化ガラスの在庫は？",
        (STK, {"material_name": "アルミニウム"}),
        (STK, {"material_name": "強化ガラス"}),
        facts=(("120",), ("8",)),
    ),
    T(
        "東京と大阪の天気を比べて。",
        (WX, {"city": "東京|tokyo"}),
        (WX, {"city": "大阪|osaka"}),
        facts=(("晴", "sunny"), ("雨", "rain")),
    ),
    T(
        "Give me the status of orders A-100 and B-200.",
        (ORD, {"order_id": "a-100"}),
        (ORD, {"order_id": "b-200"}),
        facts=(("shipped",), ("delivered",)),
    ),
    T(
        "注文A-101の状況と、銅線の在庫を教えて。",
        (ORD, {"order_id": "a-101"}),
        (STK, {"material_name": "銅線"}),
        facts=(("processing", "処理中", "準備中", "手配中"), ("45",)),
    ),
    T(
        "Convert 10 USD to JPY, and tell me the weather in Tokyo.",
        (CUR, {"amount": 10, "from_currency": "usd", "to_currency": "jpy"}),
        (WX, {"city": "東京|tokyo"}),
        facts=(("1500", "1,500"), ("sunny", "晴")),
    ),
    # no tool needed
    T("Hello! Who are you?"),
    T("こんにちは。"),
    T("Thank you, that's all."),
    T("ありがとうございました。"),
    T("What is the capital of France?", facts=(("Paris",),)),
    T("日本の首都はどこですか？", facts=(("東京",),)),
    T("Say 'ok' if you can hear me.", facts=(("ok", "OK", "Ok"),)),
    T("自己紹介をしてください。"),
]


# -- the walkthrough: a "haniwa robot" factory with a knowledge base and a stock function ---------------
HANIWA_STOCK = {"粘土": 300, "銅線": 45, "アルミニウム": 120, "強化ガラス": 8, "clay": 300, "copper wire": 45}


def get_haniwa_material_stock(material_name: str) -> dict[str, Any]:
    k = _key(material_name)
    if k not in HANIWA_STOCK:
        raise KeyError(f"unknown material {material_name!r}")
    return {"material": material_name, "stock": HANIWA_STOCK[k]}


HANIWA = Domain(
    "haniwa robot factory (walkthrough)",
    "あなたは「はにわロボット」工場のアシスタントです。はにわロボットの情報はナレッジベースから探すこと。"
    "材料の在庫は get_material_stock 関数で材料ごとに取得できる。",
    (
        Function(
            "get_material_stock",
            get_haniwa_material_stock,
            "材料の在庫数を返す",
            {"material_name": Param("string", "材料名")},
        ),
    ),
    (
        "はにわロボットの製品仕様書\n"
        "はにわロボットは家庭用の掃除ロボットです。高さ30cm、重さ2.5kg。\n"
        "材料: 粘土 2kg、銅線 5m。\n"
        "製造工程: 粘土を成形して焼成し、銅線で配線します。",
        "はにわロボットの法規制\nはにわロボットの販売には電気用品安全法の届出が必要です。保証期間は1年です。",
    ),
    "はにわロボットの仕様、材料、製造方法、法規制",
)


def _h(q: str, category: str, **kw: Any) -> Task:
    return Task(HANIWA, q, category, **kw)


# -- a restaurant: search → id → reserve, a menu knowledge base, a booking system that can be down -------
RESTAURANTS = {"R-11": ("さくら亭", "和食", "渋谷"), "R-12": ("Blue Harbor", "seafood", "Yokohama")}
SEATS = {"R-11": 4, "R-12": 0}


def find_restaurant(name: str) -> dict[str, Any]:
    for rid, (n, cuisine, area) in RESTAURANTS.items():
        if _key(n) == _key(name) or _key(name) in _key(n):
            return {"restaurant_id": rid, "name": n, "cuisine": cuisine, "area": area}
    raise KeyError(f"no restaurant named {name!r}")


def book_table(restaurant_id: str, date: str, people: int) -> dict[str, Any]:
    rid = restaurant_id.strip().upper()
    if rid not in RESTAURANTS:
        raise KeyError(f"no restaurant {restaurant_id!r}")
    if SEATS[rid] < int(people):
        raise ValueError(f"{RESTAURANTS[rid][0]} has no table for {people} on {date}")
    return {"booking": f"BK-{rid[2:]}-{int(people)}", "restaurant": RESTAURANTS[rid][0], "date": date}


def get_today_special(restaurant_id: str) -> str:
    raise RuntimeError("the menu system is down for maintenance")


RESTAURANT = Domain(
    "restaurant",
    "You help guests of our restaurant group. Find restaurants with find_restaurant and book with "
    "book_table. Menus and policies are in the knowledge base.",
    (
        Function(
            "find_restaurant", find_restaurant, "Find a restaurant by name", {"name": Param("string", "name")}
        ),
        Function(
            "book_table",
            book_table,
            "Book a table",
            {
                "restaurant_id": Param("string", "restaurant id"),
                "date": Param("string", "date of the booking"),
                "people": Param("integer", "number of people"),
            },
        ),
        Function(
            "get_today_special",
            get_today_special,
            "Today's special of a restaurant",
            {"restaurant_id": Param("string", "restaurant id")},
        ),
    ),
    (
        "Cancellation policy: bookings can be cancelled free of charge until 24 hours before. "
        "Later cancellations cost 2,000 yen per person.",
        "さくら亭のランチは11時から14時まで。ランチの定食は1,200円です。",
    ),
    "restaurant menus, opening hours and policies",
)


def _r(q: str, category: str, **kw: Any) -> Task:
    return Task(RESTAURANT, q, category, **kw)


# -- a gym: member lookups, a class schedule, small talk ----------------------------------------------
MEMBERS = {"M-501": ("Aiko Tanaka", "gold", 12), "M-502": ("Ben Carter", "basic", 3)}


def get_member(member_id: str) -> dict[str, Any]:
    mid = member_id.strip().upper()
    if mid not in MEMBERS:
        raise KeyError(f"no member {member_id!r}")
    name, plan, visits = MEMBERS[mid]
    return {"member_id": mid, "name": name, "plan": plan, "visits_this_month": visits}


def class_schedule(day: str) -> dict[str, Any]:
    days = {"monday": ["yoga 10:00", "spin 19:00"], "月曜日": ["ヨガ 10:00", "スピン 19:00"]}
    k = _key(day).removesuffix("日") + ("日" if _key(day).endswith("曜日") else "")
    for d, classes in days.items():
        if _key(d) == _key(day) or _key(d).startswith(k):
            return {"day": d, "classes": classes}
    raise KeyError(f"no schedule for {day!r}")


GYM = Domain(
    "gym",
    "あなたはジムの受付アシスタントです。会員情報は get_member、クラスの予定は class_schedule で調べる。",
    (
        Function("get_member", get_member, "会員情報", {"member_id": Param("string", "会員ID")}),
        Function("class_schedule", class_schedule, "曜日ごとのクラス予定", {"day": Param("string", "曜日")}),
    ),
)


def _g(q: str, category: str, **kw: Any) -> Task:
    return Task(GYM, q, category, **kw)


STK = "get_material_stock"
NEW_TASKS = [
    _h(
        "はにわロボットの材料の在庫はどれくらいある？",
        "kb+tool",
        calls=((STK, {"material_name": "粘土"}), (STK, {"material_name": "銅線"})),
        facts=(("300",), ("45",)),
        kb=True,
        absent=("在庫数は0",),
    ),
    _h("はにわロボットの重さは？", "kb", facts=(("2.5",),), kb=True),
    _h(
        "What materials is the haniwa robot made of?",
        "kb",
        facts=(("粘土", "clay"), ("銅線", "copper")),
        kb=True,
    ),
    _h("粘土の在庫を教えて", "one", calls=((STK, {"material_name": "粘土"}),), facts=(("300",),)),
    _r(
        "Please book a table at Sakura-tei (さくら亭) for 2 people on December 20.",
        "chain",
        calls=(("find_restaurant", {}), ("book_table", {"restaurant_id": "R-11", "people": 2})),
        facts=(("BK-11-2",),),
    ),
    _r(
        "Book a table for 3 people please.",
        "missing",
        forbid=("book_table",),
        facts=(("restaurant", "which", "date", "when"),),
    ),
    _r(
        "Blue Harborの今日のおすすめは？",
        "failing",
        calls=(("find_restaurant", {}),),
        facts=(("できません", "メンテナンス", "エラー", "取得でき", "停止", "わかりません", "分かりません"),),
    ),
    _r("予約のキャンセル料はいくらですか？", "kb", facts=(("2,000", "2000"),), kb=True),
    _r("Thanks, that's all for today!", "smalltalk", no_calls=True),
    _g(
        "会員M-501の今月の来館回数は？",
        "one",
        calls=(("get_member", {"member_id": "M-501"}),),
        facts=(("12",),),
    ),
    _g(
        "M-501とM-502のプランを教えて",
        "several",
        calls=(("get_member", {"member_id": "M-501"}), ("get_member", {"member_id": "M-502"})),
        facts=(("gold", "ゴールド"), ("basic", "ベーシック")),
    ),
    _g("私の会員情報を見せて", "missing", forbid=("get_member",), facts=(("会員ID", "会員番号", "ID"),)),
    _g("こんにちは！今日は何ができますか？", "smalltalk", no_calls=True),
    _g(
        "M-999の会員情報を教えて",
        "failing",
        calls=(("get_member", {"member_id": "M-999"}),),
        facts=(("見つかりません", "存在しません", "ありません", "できません", "エラー"),),
    ),
]


# -- a hotel chain: search by name or area → hotel id → reserve or check rooms; a house-rules knowledge base -
HOTELS = {
    "H-301": ("Harbor View Kobe", "ハーバービュー神戸", "kobe", "神戸"),
    "H-302": ("Tsukimi-so", "月見荘", "kyoto", "京都"),
    "H-303": ("Sky Inn Sapporo", "スカイイン札幌", "sapporo", "札幌"),
}
ROOMS_LEFT = {"H-301": 5, "H-302": 2, "H-303": 0}


def search_hotels(keyword: str) -> list[dict[str, str]]:
    k = _key(keyword).removesuffix("のホテル").removesuffix("駅")
    found = [
        {"hotel_id": hid, "name": ja if re.search(r"[\u3040-\u9fff]", keyword) else en, "city": city}
        for hid, (en, ja, city, city_ja) in HOTELS.items()
        if k and any(k in _key(x) or _key(x) in k for x in (en, ja, city, city_ja))
    ]
    if not found:
        raise KeyError(f"no hotel matches {keyword!r}")
    return found


def _hotel(hotel_id: str) -> str:
    hid = hotel_id.strip().upper()
    if hid not in HOTELS:
        raise KeyError(f"no hotel with id {hotel_id!r} (ids look like H-123; search_hotels gives them)")
    return hid


def reserve_room(hotel_id: str, check_in: str, nights: int) -> dict[str, Any]:
    hid = _hotel(hotel_id)
    if not ROOMS_LEFT[hid]:
        raise ValueError(f"{HOTELS[hid][0]} is fully booked")
    return {"reservation_number": f"RSV-{hid[2:]}-{int(nights)}", "hotel_id": hid, "check_in": check_in}


def rooms_left(hotel_id: str, date: str) -> dict[str, Any]:
    hid = _hotel(hotel_id)
    return {"hotel_id": hid, "date": date, "rooms_left": ROOMS_LEFT[hid]}


HOTEL = Domain(
    "hotel chain",
    "You are the reservation assistant of a hotel chain. Hotels are found with search_hotels, which gives "
    "their ids; reservations and vacancies need the hotel id. House rules are in the knowledge base.",
    (
        Function(
            "search_hotels",
            search_hotels,
            "Search hotels by name or city; returns their ids",
            {"keyword": Param("string", "hotel name or city")},
        ),
        Function(
            "reserve_room",
            reserve_room,
            "Reserve a room",
            {
                "hotel_id": Param("string", "hotel id"),
                "check_in": Param("string", "check-in date"),
                "nights": Param("integer", "number of nights"),
            },
        ),
        Function(
            "rooms_left",
            rooms_left,
            "Rooms still free at a hotel on a date",
            {"hotel_id": Param("string", "hotel id"), "date": Param("string", "date")},
        ),
    ),
    (
        "House rules: check-in is from 15:00 and check-out is by 11:00. Breakfast is served from 7:00 to "
        "9:30 and costs 1,800 yen.",
        "駐車場は1泊1,500円です。ペットは同伴できません。",
    ),
    "hotel house rules: check-in and check-out times, breakfast, parking, pets",
)


def _ho(q: str, category: str, **kw: Any) -> Task:
    return Task(HOTEL, q, category, **kw)


# -- an electronics shop: stock per product; a catalogue (bundles) and return policy knowledge base -------
SHOP_STOCK = {
    "ノートpc": 7,
    "マウス": 40,
    "キーボード": 0,
    "モニター": 12,
    "webカメラ": 3,
    "laptop": 7,
    "mouse": 40,
    "keyboard": 0,
    "monitor": 12,
    "webcam": 3,
}


def get_product_stock(product: str) -> dict[str, Any]:
    k = _key(product).replace("ウェブ", "web")
    if k not in SHOP_STOCK:
        raise KeyError(f"no product {product!r}")
    return {"product": product, "in_stock": SHOP_STOCK[k]}


SHOP = Domain(
    "electronics shop",
    "あなたは家電ショップの店員アシスタントです。商品の在庫は get_product_stock で商品ごとに調べられます。"
    "セット商品の中身や保証・返品の規則はナレッジベースにあります。",
    (
        Function(
            "get_product_stock",
            get_product_stock,
            "商品1つの在庫数",
            {"product": Param("string", "商品名")},
        ),
    ),
    (
        "セット商品カタログ\nスターターセット: ノートPC、マウス、キーボード。\n"
        "Office Bundle: monitor, keyboard, webcam.",
        "保証と返品\n保証期間は購入日から2年です。未開封の商品は購入から14日以内なら返品できます。\n"
        "Warranty: 2 years from the date of purchase. Unopened items can be returned within 14 days.",
    ),
    "セット商品の中身、保証、返品 / bundles, warranty, returns",
)


def _sh(q: str, category: str, **kw: Any) -> Task:
    return Task(SHOP, q, category, **kw)


PS = "get_product_stock"
DEV2_TASKS = [
    _ho(
        "Book a room at Harbor View Kobe for 2 nights from May 3.",
        "chain",
        calls=(("search_hotels", {}), ("reserve_room", {"hotel_id": "H-301", "nights": 2})),
        facts=(("RSV-301-2",),),
    ),
    _ho(
        "月見荘を6月1日から3泊で予約してください。",
        "chain",
        calls=(("search_hotels", {}), ("reserve_room", {"hotel_id": "H-302", "nights": 3})),
        facts=(("RSV-302-3",),),
    ),
    _ho(
        "Are there free rooms at the hotel in Sapporo on July 7?",
        "chain",
        calls=(("search_hotels", {}), ("rooms_left", {"hotel_id": "H-303"})),
        facts=(("0", "no ", "not", "fully", "none"),),
    ),
    _ho(
        "京都のホテルは8月10日に空室がありますか？",
        "chain",
        calls=(("search_hotels", {}), ("rooms_left", {"hotel_id": "H-302"})),
        facts=(("2",),),
    ),
    _ho("What time is check-in?", "kb", facts=(("15:00", "3 pm", "3pm", "15"),), kb=True),
    _ho("駐車場はいくらですか？", "kb", facts=(("1,500", "1500"),), kb=True),
    _sh(
        "マウスとモニターの在庫を教えて。",
        "several",
        calls=((PS, {"product": "マウス"}), (PS, {"product": "モニター"})),
        facts=(("40",), ("12",)),
    ),
    _sh(
        "How many laptops, monitors and webcams do you have?",
        "several",
        calls=(
            (PS, {"product": "laptop|laptops"}),
            (PS, {"product": "monitor|monitors"}),
            (PS, {"product": "webcam|webcams"}),
        ),
        facts=(("7",), ("12",), ("3",)),
    ),
    _sh("保証期間は何年ですか？", "kb", facts=(("2年", "２年"),), kb=True),
    _sh("Until when can I return an unopened item?", "kb", facts=(("14",),), kb=True),
    _sh(
        "スターターセットの商品はそれぞれ在庫がありますか？",
        "kb+tool",
        calls=(
            (PS, {"product": "ノートPC"}),
            (PS, {"product": "マウス"}),
            (PS, {"product": "キーボード"}),
        ),
        facts=(("7",), ("40",), ("0", "在庫切れ", "ありません")),
        kb=True,
    ),
    _sh(
        "Is every item of the Office Bundle in stock?",
        "kb+tool",
        calls=(
            (PS, {"product": "monitor"}),
            (PS, {"product": "keyboard"}),
            (PS, {"product": "webcam"}),
        ),
        facts=(("12",), ("0", "out of stock", "not in stock"), ("3",)),
        kb=True,
    ),
]

TASKS = [*FACTORY_TASKS, *NEW_TASKS, *DEV2_TASKS]
