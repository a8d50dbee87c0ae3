"""HELD-OUT set of the agent benchmark — report only, never tune prompts/rules on it.

Written from scratch without reading the agent code (``haniwa/agents/``) or the dev set; only the task
format (``common.py``) and the runner (``bench/agents.py``) were read. Six domains (a city library, an
HR help desk, a travel desk, an IT help desk, a clinic, a ward office), English and Japanese questions
in about equal numbers, every category of ``CATEGORIES``.

Every function is a :class:`Table`: its results are declared as rows keyed on the arguments they depend
on (each key may list aliases, ``"a|b"``), so its behaviour is deterministic and inspectable. An argument
no row knows gets an ``{"error": ...}`` result; a row declared as :class:`Fails` is the tool failing
(an exception, or an error result) for that argument.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.agent_tasks.common import Domain, Function, Param, Task

__all__ = ["TASKS", "DOMAINS", "Table", "Fails", "norm"]


def norm(value: Any) -> str:
    """How a table compares an argument with a row's key: width, case, spaces and dashes ignored."""
    text = unicodedata.normalize("NFKC", str(value)).strip().lower()
    return re.sub(r"[\s\-_‐・]", "", text)


@dataclass(frozen=True)
class Fails:
    """A declared failure of the tool for the row's arguments: it raises ``message`` (``raises``) or
    returns ``{"error": message}``."""

    message: str
    raises: bool = True


class Table:
    """The deterministic behaviour of one function: ``rows`` maps the values of ``keys`` (one string per
    key, aliases separated by ``|``; a single key may be given as a plain string) to the result.
    Parameters in ``contains`` match when an alias occurs in the argument (free-text searches)."""

    def __init__(
        self,
        keys: tuple[str, ...],
        rows: Mapping[Any, Any],
        *,
        required: tuple[str, ...] = (),
        contains: tuple[str, ...] = (),
        what: str = "record",
    ) -> None:
        self.keys = keys
        self.rows = dict(rows)
        self.required = required
        self.contains = contains
        self.what = what
        self._index: list[tuple[tuple[list[str], ...], Any]] = []
        for spec, result in self.rows.items():
            parts = (spec,) if isinstance(spec, str) else tuple(spec)
            if len(parts) != len(keys):
                raise ValueError(f"row {spec!r} does not give one value per key {keys}")
            self._index.append((tuple([norm(a) for a in p.split("|")] for p in parts), result))

    def _hit(self, param: str, aliases: list[str], value: str) -> bool:
        if value in aliases:
            return True
        return param in self.contains and len(value) >= 2 and any(a and a in value for a in aliases)

    def lookup(self, **kwargs: Any) -> Any:
        values = [norm(kwargs.get(k, "")) for k in self.keys]
        for aliases, result in self._index:
            if all(self._hit(k, a, v) for k, a, v in zip(self.keys, aliases, values, strict=True)):
                return result
        return None

    def __call__(self, **kwargs: Any) -> Any:
        lacking = [p for p in self.required if not str(kwargs.get(p, "")).strip()]
        if lacking:
            return {"error": f"missing required parameter: {', '.join(lacking)}"}
        result = self.lookup(**kwargs)
        if result is None:
            given = ", ".join(f"{k}={kwargs.get(k)!r}" for k in self.keys)
            return {"error": f"no {self.what} found for {given}"}
        if isinstance(result, Fails):
            if result.raises:
                raise RuntimeError(result.message)
            return {"error": result.message}
        return copy.deepcopy(result)


def _fn(
    name: str,
    description: str,
    params: Mapping[str, Param],
    keys: tuple[str, ...],
    rows: Mapping[Any, Any],
    *,
    contains: tuple[str, ...] = (),
    what: str = "record",
) -> Function:
    required = tuple(p for p, spec in params.items() if spec.required)
    table = Table(keys, rows, required=required, contains=contains, what=what)
    return Function(name, table, description, params)


def _date(y: int, m: int, d: int) -> str:
    """The spellings of one date a model may pass."""
    months = "january february march april may june july august september october november december"
    mon = months.split()[m - 1]
    return "|".join(
        [
            f"{y}-{m:02d}-{d:02d}",
            f"{y}-{m}-{d}",
            f"{m}/{d}",
            f"{m:02d}/{d:02d}",
            f"{m:02d}-{d:02d}",
            f"{m}月{d}日",
            f"{y}年{m}月{d}日",
            f"{mon} {d}",
            f"{mon} {d}, {y}",
            f"{d} {mon}",
            f"{d} {mon} {y}",
            f"{mon[:3]} {d}",
        ]
    )


# ---------------------------------------------------------------------------------------------------
# 1. A city library (English instruction and knowledge base)

_LIB_DOCS = (
    "Kitahama City Library - lending rules. A member may borrow up to 10 items at a time. Books are lent "
    "for 14 days; DVDs and music CDs for 7 days. Every loan can be renewed once, for the same period "
    "again, unless another member has placed a hold on it. Renew at the counter, on the website or by "
    "asking the library assistant. There are no late fees: instead, borrowing is suspended for as many "
    "days as the item was overdue. Lost or damaged items must be replaced or paid for. Each member may "
    "have up to 5 holds; a held item waits at the pickup counter for 7 days.",
    "Kitahama City Library - branches and opening hours. Central Library (1-2-3 Ekimae): Tuesday to "
    "Sunday 9:00-20:00, closed on Mondays. Harbor Branch (Port Plaza 3F): every day 10:00-18:00. "
    "Hillside Branch (next to the Hillside Community Center): 10:00-17:00, closed on Wednesdays. All "
    "three branches have a study room with seats that can be used on a first-come basis. Book drop boxes "
    "at Central Library and Harbor Branch are open 24 hours.",
    "Kitahama City Library - library cards. Anyone who lives, works or studies in Kitahama City can get "
    "a card free of charge at any branch counter. Bring an ID that shows your address (driver's license, "
    "My Number card, or a student ID together with a utility bill). Cards are valid for 3 years. "
    "Replacing a lost card costs 200 yen. Your card number is printed under the barcode (format "
    "0000-0000).",
)

LIBRARY = Domain(
    name="Kitahama City Library",
    instruction=(
        "You are the chat assistant of Kitahama City Library. Help members find books in the catalogue, "
        "tell them whether a copy is on the shelf, place holds, renew their loans and check how many "
        "study-room seats are free. Lending rules, branches and opening hours are in the knowledge base. "
        "Reply in the language the member uses. Don't make up book IDs, due dates or seat numbers."
    ),
    functions=(
        _fn(
            "search_catalog",
            "Search the library catalogue by title, author or keyword. Returns matching books with their "
            "book_id.",
            {"query": Param(description="title, author or keyword to search for")},
            ("query",),
            {
                "the salt road|salt road": {
                    "results": [
                        {
                            "book_id": "BK-20417",
                            "title": "The Salt Road",
                            "author": "Mara Ellison",
                            "year": 2019,
                        }
                    ]
                },
                "winter tides": {
                    "results": [
                        {
                            "book_id": "BK-20988",
                            "title": "Winter Tides",
                            "author": "Mara Ellison",
                            "year": 2022,
                        }
                    ]
                },
                "mara ellison|ellison": {
                    "results": [
                        {
                            "book_id": "BK-20417",
                            "title": "The Salt Road",
                            "author": "Mara Ellison",
                            "year": 2019,
                        },
                        {
                            "book_id": "BK-20988",
                            "title": "Winter Tides",
                            "author": "Mara Ellison",
                            "year": 2022,
                        },
                    ]
                },
                "博士の愛した数式|小川洋子": {
                    "results": [
                        {
                            "book_id": "BK-31102",
                            "title": "博士の愛した数式",
                            "author": "小川洋子",
                            "year": 2003,
                        }
                    ]
                },
            },
            contains=("query",),
            what="book",
        ),
        _fn(
            "get_availability",
            "How many copies of a book exist, how many are on the shelf now, and where.",
            {"book_id": Param(description="the book's ID from the catalogue, e.g. BK-12345")},
            ("book_id",),
            {
                "BK-20417": {
                    "book_id": "BK-20417",
                    "copies_total": 3,
                    "copies_available": 0,
                    "next_due_back": "2025-07-09",
                    "holds_waiting": 1,
                },
                "BK-20988": {
                    "book_id": "BK-20988",
                    "copies_total": 2,
                    "copies_available": 2,
                    "location": "Central Library 2F, fiction E",
                },
                "BK-31102": {
                    "book_id": "BK-31102",
                    "copies_total": 4,
                    "copies_available": 1,
                    "location": "Harbor Branch, Japanese fiction O",
                },
            },
            what="book",
        ),
        _fn(
            "place_hold",
            "Place a hold on a book for a member. Needs the book_id and the member's library card number.",
            {
                "book_id": Param(description="the book's ID from the catalogue"),
                "member_id": Param(description="the member's library card number"),
                "pickup_branch": Param(description="branch where the member will pick it up", required=False),
            },
            ("book_id", "member_id"),
            {
                ("BK-20417", "7781-2204"): {
                    "hold_id": "H-66120",
                    "title": "The Salt Road",
                    "queue_position": 2,
                    "pickup_branch": "Central Library",
                },
                ("BK-20988", "5520-0913"): {
                    "hold_id": "H-66135",
                    "title": "Winter Tides",
                    "queue_position": 1,
                    "pickup_branch": "Harbor Branch",
                },
            },
            what="book/member",
        ),
        _fn(
            "renew_loans",
            "Renew all of a member's current loans that can be renewed.",
            {"member_id": Param(description="the member's library card number")},
            ("member_id",),
            {
                "7781-2204": {
                    "renewed": [{"title": "Winter Tides", "new_due_date": "2025-07-23"}],
                    "not_renewed": [],
                },
                "3318-7702": Fails(
                    "Circulation system offline for scheduled maintenance until 14:00; renewals cannot be "
                    "processed right now."
                ),
            },
            what="member",
        ),
        _fn(
            "get_study_seats",
            "Number of free seats in a branch's study room right now.",
            {"branch": Param(description="the branch name")},
            ("branch",),
            {
                "central|central library|中央|中央図書館|本館": {
                    "branch": "Central Library",
                    "free_seats": 3,
                    "total_seats": 48,
                },
                "harbor|harbor branch|harbour|harbour branch|港|港分館": {
                    "branch": "Harbor Branch",
                    "free_seats": 17,
                    "total_seats": 30,
                },
                "hillside|hillside branch|丘の上|丘の上分館": {
                    "branch": "Hillside Branch",
                    "free_seats": 9,
                    "total_seats": 24,
                },
            },
            what="branch",
        ),
    ),
    documents=_LIB_DOCS,
    kb_description="Kitahama City Library: lending rules, branches, opening hours and library cards.",
)

# ---------------------------------------------------------------------------------------------------
# 2. An HR help desk (Japanese instruction and knowledge base)

_HR_DOCS = (
    "青葉システムズ 休暇規程（抜粋）。年次有給休暇は入社6か月後に10日付与され、以後1年ごとに増え、最大20日。"
    "使わなかった日数は翌年度に限り繰り越せる（保有できるのは最大40日）。半日単位で取得できる。"
    "夏季休暇は7月1日から9月30日までの間に3日取得できる。慶弔休暇：本人の結婚 5日、配偶者の出産 2日、"
    "父母・配偶者・子の死亡 5日、祖父母・兄弟姉妹の死亡 2日。休暇の申請は原則として取得日の3営業日前までに"
    "人事ポータルから行う。",
    "青葉システムズ 手当規程（抜粋）。通勤手当は公共交通機関の6か月定期代相当額を支給し、上限は月額5万円。"
    "在宅勤務手当は月額3,000円（その月の在宅勤務が10日以上の場合）。住宅手当は扶養家族ありで月2万円、"
    "なしで月1万円。資格手当：応用情報技術者 月5,000円、基本情報技術者 月3,000円。",
    "青葉システムズ 研修制度。新たに管理職になった社員は、昇格から半年以内に次の2つの研修を必ず受講すること："
    "「評価者研修」と「ハラスメント防止研修」。研修の日程と残席は研修システムで検索でき、申し込みも同システムで行う。"
    "任意受講の研修（Excel、英語、プレゼンテーションなど）は上長の承認なしで申し込める。",
)

HR = Domain(
    name="Aoba Systems HR Help Desk",
    instruction=(
        "あなたは株式会社青葉システムズの人事ヘルプデスクです。社員からの休暇、給与、経費精算、社内研修についての"
        "質問に答えてください。規程類はナレッジベースにあります。休暇の残日数や申請、給与明細、経費精算の状況、"
        "研修の検索と申し込みはツールで行ってください。社員番号など必要な情報が足りないときは本人に確認し、"
        "数字を推測で答えないでください。社員が英語で書いてきたら英語で答えてください。"
    ),
    functions=(
        _fn(
            "get_leave_balance",
            "社員の有給休暇・夏季休暇の残日数を返す。",
            {"employee_id": Param(description="社員番号（例: E10234）")},
            ("employee_id",),
            {
                "E10234": {
                    "employee_id": "E10234",
                    "annual_leave_days_left": 12.5,
                    "carried_over_days": 4,
                    "summer_leave_days_left": 3,
                },
                "E20871": {
                    "employee_id": "E20871",
                    "annual_leave_days_left": 7,
                    "carried_over_days": 0,
                    "summer_leave_days_left": 1,
                },
            },
            what="employee",
        ),
        _fn(
            "submit_leave_request",
            "休暇を申請する。",
            {
                "employee_id": Param(description="社員番号"),
                "start_date": Param(description="休暇の開始日（YYYY-MM-DD）"),
                "days": Param(type="number", description="日数（半日は0.5）"),
                "leave_type": Param(description="annual / summer / special", required=False),
            },
            ("employee_id",),
            {
                "E10234|E20871": {
                    "request_id": "LR-8841",
                    "status": "pending approval",
                    "approver": "佐藤 課長",
                }
            },
            what="employee",
        ),
        _fn(
            "get_expense_claim",
            "経費精算の申請の状況（承認状況、金額、支払日）を返す。",
            {"claim_id": Param(description="経費精算の申請番号（例: EX-2025-0001）")},
            ("claim_id",),
            {
                "EX-2025-0412": {
                    "claim_id": "EX-2025-0412",
                    "status": "approved",
                    "amount_yen": 18400,
                    "payment_date": "2025-07-25",
                },
                "EX-2025-0433": {
                    "claim_id": "EX-2025-0433",
                    "status": "returned to applicant",
                    "amount_yen": 6250,
                    "reason": "Receipt image missing for the taxi fare on 6/18",
                },
            },
            what="claim",
        ),
        _fn(
            "search_training",
            "社内研修をキーワードで検索する。研修ID、日程、残席を返す。",
            {"keyword": Param(description="研修名やテーマのキーワード")},
            ("keyword",),
            {
                "excel|エクセル|データ分析": {
                    "courses": [
                        {
                            "course_id": "TR-305",
                            "title": "Excel データ分析 中級",
                            "date": "2025-08-06",
                            "seats_left": 4,
                        }
                    ]
                },
                "評価者|evaluator|評価": {
                    "courses": [
                        {
                            "course_id": "TR-110",
                            "title": "評価者研修（新任管理職向け）",
                            "date": "2025-09-18",
                            "seats_left": 6,
                        }
                    ]
                },
                "ハラスメント|harassment": {
                    "courses": [
                        {
                            "course_id": "TR-118",
                            "title": "ハラスメント防止研修",
                            "date": "2025-08-27",
                            "seats_left": 15,
                        }
                    ]
                },
                "英語|english": {
                    "courses": [
                        {
                            "course_id": "TR-402",
                            "title": "ビジネス英語 初級",
                            "date": "2025-10-02",
                            "seats_left": 10,
                        }
                    ]
                },
            },
            contains=("keyword",),
            what="course",
        ),
        _fn(
            "enroll_training",
            "社員を研修に申し込む。",
            {
                "course_id": Param(description="研修ID（search_training の結果にある）"),
                "employee_id": Param(description="社員番号"),
            },
            ("course_id", "employee_id"),
            {
                ("TR-305", "E20871"): {
                    "enrollment_id": "EN-7710",
                    "status": "confirmed",
                    "course": "Excel データ分析 中級",
                    "date": "2025-08-06",
                }
            },
            what="course/employee",
        ),
        _fn(
            "get_payslip",
            "指定した月の給与明細を返す。",
            {
                "employee_id": Param(description="社員番号"),
                "month": Param(description="対象月（YYYY-MM）"),
            },
            ("employee_id",),
            {
                "E10234": {
                    "month": "2025-06",
                    "gross_yen": 412000,
                    "deductions_yen": 93460,
                    "net_yen": 318540,
                },
                "E30552": Fails("Payroll service timed out (PAYROLL-504). Please try again later."),
            },
            what="employee",
        ),
    ),
    documents=_HR_DOCS,
    kb_description="青葉システムズの休暇規程、手当規程、研修制度",
)

# ---------------------------------------------------------------------------------------------------
# 3. A corporate travel desk (no knowledge base)

_TOKYO = "tokyo|東京|haneda|羽田|hnd|tyo|narita|成田|nrt"
_SAPPORO = "sapporo|札幌|new chitose|新千歳|chitose|cts"
_OSAKA = "osaka|大阪|itami|伊丹|itm|kansai|関西|kix"
_FUKUOKA = "fukuoka|福岡|fuk|hakata|博多"

TRAVEL = Domain(
    name="Sakura Tours Corporate Travel Desk",
    instruction=(
        "You're the booking assistant of Sakura Tours' corporate travel desk. Travellers ask you to find and "
        "book domestic flights and hotels, look up their existing bookings and check flight status. Use the "
        "tools for anything about flights, hotels or bookings; prices are in yen. If something needed for a "
        "booking is missing (dates, the traveller's name...), ask for it before booking. Never guess flight "
        "numbers, fares or booking references. Answer in the traveller's language."
    ),
    functions=(
        _fn(
            "search_flights",
            "Search domestic flights between two cities on a date. Returns flights with flight_id, times and "
            "fare.",
            {
                "origin": Param(description="departure city or airport"),
                "destination": Param(description="arrival city or airport"),
                "date": Param(description="travel date, YYYY-MM-DD"),
            },
            ("origin", "destination"),
            {
                (_TOKYO, _SAPPORO): {
                    "flights": [
                        {
                            "flight_id": "FL-JL505",
                            "flight": "JL505",
                            "departs": "10:30",
                            "arrives": "12:05",
                            "fare_yen": 31200,
                        },
                        {
                            "flight_id": "FL-NH063",
                            "flight": "NH63",
                            "departs": "08:00",
                            "arrives": "09:35",
                            "fare_yen": 28900,
                        },
                        {
                            "flight_id": "FL-ADO15",
                            "flight": "ADO15",
                            "departs": "13:15",
                            "arrives": "14:50",
                            "fare_yen": 19800,
                        },
                    ]
                },
                (_OSAKA, _FUKUOKA): {
                    "flights": [
                        {
                            "flight_id": "FL-JL2051",
                            "flight": "JL2051",
                            "departs": "07:40",
                            "arrives": "08:55",
                            "fare_yen": 12400,
                        },
                        {
                            "flight_id": "FL-NH425",
                            "flight": "NH425",
                            "departs": "18:05",
                            "arrives": "19:20",
                            "fare_yen": 15600,
                        },
                    ]
                },
                (_OSAKA, _SAPPORO): {
                    "flights": [
                        {
                            "flight_id": "FL-NH1711",
                            "flight": "NH1711",
                            "departs": "09:15",
                            "arrives": "11:10",
                            "fare_yen": 31800,
                        },
                        {
                            "flight_id": "FL-JL2003",
                            "flight": "JL2003",
                            "departs": "16:20",
                            "arrives": "18:15",
                            "fare_yen": 34500,
                        },
                    ]
                },
            },
            what="route",
        ),
        _fn(
            "book_flight",
            "Book a seat on a flight found by search_flights.",
            {
                "flight_id": Param(description="flight_id from search_flights, e.g. FL-XX123"),
                "passenger_name": Param(description="traveller's full name"),
            },
            ("flight_id",),
            {
                "FL-NH063": {
                    "booking_ref": "SK7Q2M",
                    "status": "ticketed",
                    "flight": "NH63",
                    "departs": "08:00",
                },
                "FL-JL505": {
                    "booking_ref": "SK3B8D",
                    "status": "ticketed",
                    "flight": "JL505",
                    "departs": "10:30",
                },
                "FL-ADO15": {
                    "booking_ref": "SK5N1C",
                    "status": "ticketed",
                    "flight": "ADO15",
                    "departs": "13:15",
                },
            },
            what="flight",
        ),
        _fn(
            "search_hotels",
            "Search hotels in a city for a check-in date. Returns hotels with hotel_id and nightly price.",
            {
                "city": Param(description="city"),
                "check_in": Param(description="check-in date, YYYY-MM-DD"),
                "nights": Param(type="integer", description="number of nights", required=False),
            },
            ("city",),
            {
                _FUKUOKA: {
                    "hotels": [
                        {
                            "hotel_id": "HT-FUK-07",
                            "name": "Hakata Riverside Hotel",
                            "price_per_night_yen": 14500,
                        },
                        {"hotel_id": "HT-FUK-22", "name": "Tenjin Business Inn", "price_per_night_yen": 8900},
                        {"hotel_id": "HT-FUK-31", "name": "Momochi Bay Resort", "price_per_night_yen": 21000},
                    ]
                },
                _SAPPORO: {
                    "hotels": [
                        {"hotel_id": "HT-SPK-03", "name": "Odori Park Hotel", "price_per_night_yen": 16200},
                        {"hotel_id": "HT-SPK-11", "name": "Susukino Stay", "price_per_night_yen": 9800},
                    ]
                },
            },
            what="city",
        ),
        _fn(
            "book_hotel",
            "Book a room at a hotel found by search_hotels.",
            {
                "hotel_id": Param(description="hotel_id from search_hotels"),
                "check_in": Param(description="check-in date, YYYY-MM-DD"),
                "nights": Param(type="integer", description="number of nights"),
                "guest_name": Param(description="guest's full name"),
            },
            ("hotel_id",),
            {
                "HT-FUK-22": {
                    "confirmation": "HB-40917",
                    "hotel": "Tenjin Business Inn",
                    "check_in": "2025-09-03",
                    "nights": 2,
                    "total_yen": 17800,
                },
                "HT-FUK-07": {
                    "confirmation": "HB-40918",
                    "hotel": "Hakata Riverside Hotel",
                    "total_yen": 29000,
                },
            },
            what="hotel",
        ),
        _fn(
            "get_booking",
            "Look up an existing booking by its booking reference.",
            {"booking_ref": Param(description="6-character booking reference")},
            ("booking_ref",),
            {
                "SK4T7P": {
                    "booking_ref": "SK4T7P",
                    "type": "flight",
                    "flight": "JL505",
                    "date": "2025-08-12",
                    "route": "Tokyo (HND) - Sapporo (CTS)",
                    "departs": "10:30",
                    "passenger": "森 健二",
                },
                "SK9X4A": {
                    "booking_ref": "SK9X4A",
                    "type": "flight",
                    "flight": "NH425",
                    "date": "2025-08-20",
                    "route": "Osaka (ITM) - Fukuoka (FUK)",
                    "departs": "18:05",
                    "passenger": "森 健二",
                },
            },
            what="booking",
        ),
        _fn(
            "get_flight_status",
            "Today's status of a flight (on time, delayed, cancelled), with gate and estimated times.",
            {"flight": Param(description="flight number, e.g. JL123")},
            ("flight",),
            {
                "JL517|JAL517": {
                    "flight": "JL517",
                    "status": "delayed",
                    "scheduled_departure": "14:55",
                    "estimated_departure": "15:40",
                    "gate": "12",
                },
                "NH241|ANA241": Fails("Flight status service unavailable (HTTP 503)", raises=False),
            },
            what="flight",
        ),
    ),
)

# ---------------------------------------------------------------------------------------------------
# 4. An IT help desk (English instruction and knowledge base)

_IT_DOCS = (
    "Kotobuki Trading IT - VPN. Install GlobalProtect from the Software Center, then connect to the portal "
    "vpn.kotobuki.example and sign in with your network ID; approve the push notification in the "
    "Authenticator app. If the connection drops every few minutes, switch the gateway from Osaka to Tokyo. "
    "Email and the Wiki work without the VPN.",
    "Kotobuki Trading IT - password policy. Passwords must be at least 14 characters long and expire every "
    "180 days. The last 5 passwords cannot be reused. After 5 failed sign-in attempts the account is locked "
    "for 15 minutes. You can reset your own password at passwd.kotobuki.example with your registered mobile "
    "phone, or ask the help desk, which needs your network ID (for example k.ishida).",
    "Kotobuki Trading IT - core services and support hours. The IT status page tracks three core services: "
    "Email (Exchange Online), VPN (GlobalProtect) and the Wiki. The help desk is open on weekdays from 8:30 "
    "to 19:00 (extension 7000). Outside these hours, call the on-call number 03-5555-0199 for outages only.",
    "Kotobuki Trading IT - software requests. Standard software (Slack, Zoom, 7-Zip, Figma, Notepad++) can "
    "be requested without a manager's approval and is installed remotely within one business day. Adobe "
    "Acrobat Pro, Tableau and Visual Studio Professional need a manager's approval first. Give the "
    "hostname of the PC (printed on the label, e.g. PC-0123).",
)

IT = Domain(
    name="Kotobuki Trading IT Help Desk",
    instruction=(
        "You are the first-line IT help desk assistant at Kotobuki Trading. Employees come to you with "
        "tickets, outages, password problems and software requests. Check the tools for ticket status, "
        "service status, software packages, install requests and password resets, and use the knowledge base "
        "for how-tos and policies. Ask for the network ID or hostname when you need one and it wasn't given. "
        "Keep answers short and practical, in the employee's language (English or Japanese)."
    ),
    functions=(
        _fn(
            "get_ticket",
            "Status of a help desk ticket.",
            {"ticket_id": Param(description="ticket number, e.g. INC-12345")},
            ("ticket_id",),
            {
                "INC-40512": {
                    "ticket_id": "INC-40512",
                    "summary": "Wi-Fi drops on the 3rd floor",
                    "status": "in progress",
                    "assigned_to": "Network team",
                    "last_update": "Replacing the 3F access point; expected to be finished by 17:00 today.",
                },
                "INC-40377": {
                    "ticket_id": "INC-40377",
                    "summary": "Printer 2F-MFP-02 paper jam",
                    "status": "resolved",
                    "resolved_at": "2025-07-01 11:20",
                },
            },
            what="ticket",
        ),
        _fn(
            "check_service_status",
            "Current status of an IT service.",
            {"service": Param(description="service name")},
            ("service",),
            {
                "vpn|globalprotect": {
                    "service": "VPN",
                    "status": "degraded",
                    "detail": "Intermittent disconnects on the Osaka gateway since 09:20; "
                    "the Tokyo gateway is fine.",
                },
                "email|e mail|mail|メール|exchange|exchange online|outlook": {
                    "service": "Email",
                    "status": "operational",
                },
                "wiki|ウィキ|社内wiki|confluence": {
                    "service": "Wiki",
                    "status": "maintenance",
                    "detail": "Scheduled maintenance until 12:00.",
                },
            },
            what="service",
        ),
        _fn(
            "search_software",
            "Search the software catalogue. Returns packages with package_id and whether approval is needed.",
            {"name": Param(description="software name")},
            ("name",),
            {
                "figma": {
                    "packages": [
                        {
                            "package_id": "SW-118",
                            "name": "Figma Desktop",
                            "version": "124.3",
                            "approval": "not required",
                        }
                    ]
                },
                "tableau": {
                    "packages": [
                        {
                            "package_id": "SW-204",
                            "name": "Tableau Desktop",
                            "version": "2025.1",
                            "approval": "manager",
                        }
                    ]
                },
                "zoom": {
                    "packages": [
                        {
                            "package_id": "SW-031",
                            "name": "Zoom Workplace",
                            "version": "6.4",
                            "approval": "not required",
                        }
                    ]
                },
            },
            contains=("name",),
            what="software",
        ),
        _fn(
            "request_install",
            "Request a remote installation of a software package on a PC.",
            {
                "package_id": Param(description="package_id from search_software"),
                "hostname": Param(description="the PC's hostname, e.g. PC-0123"),
            },
            ("package_id", "hostname"),
            {
                ("SW-118", "PC-0231"): {
                    "request_id": "RQ-5521",
                    "status": "queued",
                    "eta": "within 1 business day",
                },
            },
            what="package/hostname",
        ),
        _fn(
            "reset_password",
            "Reset a user's password and send a temporary one to their registered mobile phone.",
            {"username": Param(description="the user's network ID, e.g. k.ishida")},
            ("username",),
            {
                "k.ishida": {
                    "status": "temporary password sent",
                    "sent_to": "mobile ending 0417",
                    "expires_in_minutes": 30,
                },
                "t.nakamura": Fails("Directory service unreachable (LDAP timeout)"),
            },
            what="user",
        ),
    ),
    documents=_IT_DOCS,
    kb_description="Kotobuki Trading IT how-tos and policies: VPN, passwords, core services, software.",
)

# ---------------------------------------------------------------------------------------------------
# 5. A clinic (Japanese instruction and knowledge base)

_INTERNAL = "内科|一般内科|internal medicine|internal|general medicine|general internal medicine"
_PEDIATRICS = "小児科|pediatrics|paediatrics|pediatric|children"

_CLINIC_DOCS = (
    "さくら内科・小児科クリニック 診療時間。月・火・木・金曜日は 9:00〜12:30 と 15:00〜18:30、"
    "水・土曜日は午前のみ 9:00〜12:30 です。日曜・祝日は休診です。受付は各診療終了の30分前までです。"
    "発熱のある方は来院前にお電話ください（発熱外来は 14:00〜15:00）。",
    "さくら内科・小児科クリニック 予防接種。当院で受けられる予防接種：インフルエンザ（一般 3,800円）、"
    "肺炎球菌（一般 8,000円）、帯状疱疹（1回 22,000円）、小児の定期接種。65歳以上の方が市の助成で受けられる"
    "予防接種は、インフルエンザ、肺炎球菌、帯状疱疹の3種類です（自己負担はインフルエンザ 1,500円、"
    "肺炎球菌 4,000円、帯状疱疹 11,000円）。予約制です。",
    "さくら内科・小児科クリニック 初めての方へ。初診の方はマイナ保険証または健康保険証、お薬手帳、"
    "紹介状（お持ちの方）をご持参ください。問診票はホームページから印刷して記入してくると受付がスムーズです。"
    "駐車場は4台分あります。再診の方は診察券番号（P-から始まる番号）で予約できます。",
)

CLINIC = Domain(
    name="Sakura Internal Medicine and Pediatrics Clinic",
    instruction=(
        "あなたは「さくら内科・小児科クリニック」の受付アシスタントです。患者さんからの予約、診療時間、"
        "予防接種、検査結果についての問い合わせに対応してください。診療時間や料金などの案内はナレッジベースを、"
        "予約枠の検索・予約、ワクチンの在庫、検査結果の確認はツールを使ってください。予約や検査結果には"
        "診察券番号が必要です。医学的な診断はしないでください。患者さんの言語（日本語か英語）で答えてください。"
    ),
    functions=(
        _fn(
            "search_slots",
            "診療科と日付を指定して空いている予約枠を検索する。slot_id と時刻を返す。",
            {
                "department": Param(description="診療科（内科 / 小児科）"),
                "date": Param(description="日付（YYYY-MM-DD）"),
            },
            ("department", "date"),
            {
                (_INTERNAL, _date(2025, 7, 15)): {
                    "slots": [
                        {"slot_id": "SL-0715-0930", "time": "09:30", "doctor": "森田 医師"},
                        {"slot_id": "SL-0715-1100", "time": "11:00", "doctor": "森田 医師"},
                        {"slot_id": "SL-0715-1630", "time": "16:30", "doctor": "高橋 医師"},
                    ]
                },
                (_INTERNAL, _date(2025, 7, 16)): {
                    "slots": [{"slot_id": "SL-0716-1000", "time": "10:00", "doctor": "高橋 医師"}]
                },
                (_PEDIATRICS, _date(2025, 7, 16)): {
                    "slots": [
                        {"slot_id": "SL-0716-P0915", "time": "09:15", "doctor": "石川 医師"},
                        {"slot_id": "SL-0716-P1145", "time": "11:45", "doctor": "石川 医師"},
                    ]
                },
            },
            what="department/date",
        ),
        _fn(
            "book_appointment",
            "予約枠を患者の診察券番号で予約する。",
            {
                "slot_id": Param(description="search_slots で得た slot_id"),
                "patient_id": Param(description="診察券番号（例: P-12345）"),
            },
            ("slot_id",),
            {
                "SL-0715-0930": {
                    "appointment_id": "AP-3391",
                    "department": "内科",
                    "datetime": "2025-07-15 09:30",
                    "bring": "マイナ保険証または健康保険証",
                },
                "SL-0715-1100": {
                    "appointment_id": "AP-3392",
                    "department": "内科",
                    "datetime": "2025-07-15 11:00",
                },
            },
            what="slot",
        ),
        _fn(
            "get_vaccine_stock",
            "ワクチンの現在の在庫数（回数分）と次回入荷予定を返す。",
            {"vaccine": Param(description="ワクチンの種類")},
            ("vaccine",),
            {
                "インフルエンザ|インフル|influenza|flu|flu shot": {
                    "vaccine": "インフルエンザ",
                    "doses_left": 42,
                },
                "帯状疱疹|shingles|herpes zoster|zoster|シングリックス": {
                    "vaccine": "帯状疱疹",
                    "doses_left": 13,
                },
                "肺炎球菌|pneumococcal|pneumococcus|pneumonia": {
                    "vaccine": "肺炎球菌",
                    "doses_left": 0,
                    "next_delivery": "2025-07-22",
                },
            },
            what="vaccine",
        ),
        _fn(
            "get_test_result",
            "患者の検査結果が出ているかどうかと、その概要を返す。",
            {
                "patient_id": Param(description="診察券番号"),
                "test": Param(description="検査の種類（血液検査など）", required=False),
            },
            ("patient_id",),
            {
                "P-11845": {
                    "test": "blood test",
                    "status": "ready",
                    "summary": "all values within reference range",
                },
                "P-20931": Fails("検査結果システムに接続できません (LIS connection refused)", raises=False),
            },
            what="patient",
        ),
    ),
    documents=_CLINIC_DOCS,
    kb_description="さくら内科・小児科クリニックの診療時間、予防接種と料金、初診の案内",
)

# ---------------------------------------------------------------------------------------------------
# 6. A ward office (Japanese instruction and knowledge base)

_MUNI_DOCS = (
    "青葉区役所 証明書の発行。住民票の写し 1通300円、印鑑登録証明書 1通300円、戸籍謄本 1通450円。"
    "マイナンバーカードがあれば、住民票の写しと印鑑登録証明書は全国のコンビニで 6:30〜23:00 に1通200円で"
    "取得できます。窓口は平日 8:30〜17:15。代理人が請求する場合は委任状が必要です。",
    "青葉区役所 転入・転出の手続き。他の市区町村から引っ越してきた方（転入）は、引っ越しから14日以内に"
    "手続きをしてください。回る窓口は2つです：(1) 住民記録窓口（1階3番）で転入届、"
    "(2) 国民健康保険・年金窓口（1階7番）"
    "で国民健康保険の加入と年金の住所変更。お子さんがいる方は、さらに子育て支援窓口（2階）で児童手当の申請を"
    "してください。持ち物：転出証明書、本人確認書類、マイナンバーカード。",
    "青葉区役所 ごみの出し方。燃やすごみ・プラスチック資源・缶びんペットボトルは地区ごとの収集日の朝8時までに"
    "集積所へ。一辺が50cmを超えるものは粗大ごみで、事前の申し込みが必要です（1点400円〜1,600円）。"
    "申し込みは粗大ごみ受付センターかこのアシスタントから。",
    "青葉区役所 区の施設の予約。中央公園テニスコート（2面）と区民会館の会議室A・Bは、利用者登録（無料）を"
    "した方が予約できます。予約には利用者登録番号（A-で始まる番号）が必要です。テニスコートは2時間1,200円、"
    "料金は当日、公園管理事務所で支払います。",
)

WARD = Domain(
    name="Aoba Ward Office",
    instruction=(
        "青葉区役所の住民向け案内アシスタントとして、区民からの問い合わせに答えてください。証明書、転入・転出、"
        "ごみの出し方、施設の予約などの案内はナレッジベースにあります。ごみの収集日、窓口の待ち時間、施設の空き"
        "状況と予約、粗大ごみ回収の申し込みはツールで調べたり行ったりできます。外国籍の住民も多いので、英語で"
        "聞かれたら英語で答えてください。分からないことは分からないと伝えてください。"
    ),
    functions=(
        _fn(
            "get_garbage_schedule",
            "地区ごとのごみ収集日を返す。",
            {"district": Param(description="地区名（例: 本町1丁目）")},
            ("district",),
            {
                "本町1丁目|本町一丁目|honmachi 1-chome|honmachi 1|honmachi 1 chome|honmachi": {
                    "district": "本町1丁目 (Honmachi 1-chome)",
                    "burnable": "Monday, Thursday",
                    "plastic": "Wednesday",
                    "cans_bottles_pet": "2nd and 4th Friday",
                },
                "緑が丘2丁目|緑ヶ丘2丁目|緑が丘二丁目|midorigaoka 2-chome|midorigaoka 2|midorigaoka": {
                    "district": "緑が丘2丁目 (Midorigaoka 2-chome)",
                    "burnable": "Tuesday, Friday",
                    "plastic": "Monday",
                    "cans_bottles_pet": "1st and 3rd Wednesday",
                },
                "桜台3丁目|桜台三丁目|sakuradai 3-chome|sakuradai 3|sakuradai": {
                    "district": "桜台3丁目 (Sakuradai 3-chome)",
                    "burnable": "Wednesday, Saturday",
                    "plastic": "Thursday",
                    "cans_bottles_pet": "2nd and 4th Tuesday",
                },
            },
            what="district",
        ),
        _fn(
            "get_counter_wait",
            "区役所の窓口の現在の待ち人数と待ち時間の目安を返す。",
            {"counter": Param(description="窓口の名前")},
            ("counter",),
            {
                "住民記録|住民記録窓口|住民票|転入|転入届|住民異動|resident registration|residence": {
                    "counter": "住民記録窓口（1階3番）",
                    "people_waiting": 14,
                    "estimated_wait_minutes": 35,
                },
                "国民健康保険|国保|年金|国民健康保険・年金|国民健康保険・年金窓口|national health insurance|"
                "health insurance|pension": {
                    "counter": "国民健康保険・年金窓口（1階7番）",
                    "people_waiting": 6,
                    "estimated_wait_minutes": 15,
                },
                "子育て支援|児童手当|child": {
                    "counter": "子育て支援窓口（2階）",
                    "people_waiting": 1,
                    "estimated_wait_minutes": 5,
                },
            },
            contains=("counter",),
            what="counter",
        ),
        _fn(
            "search_facilities",
            "区の施設（テニスコート、会議室）の指定日の空き枠を検索する。slot_id を返す。",
            {
                "facility_type": Param(description="施設の種類（テニスコート / 会議室）"),
                "date": Param(description="利用日（YYYY-MM-DD）"),
            },
            ("facility_type", "date"),
            {
                ("テニス|tennis", _date(2025, 8, 10)): {
                    "available": [
                        {
                            "slot_id": "FC-TN2-0810-09",
                            "facility": "中央公園テニスコート 2番",
                            "time": "09:00-11:00",
                            "fee_yen": 1200,
                        },
                        {
                            "slot_id": "FC-TN1-0810-13",
                            "facility": "中央公園テニスコート 1番",
                            "time": "13:00-15:00",
                            "fee_yen": 1200,
                        },
                    ]
                },
                ("会議室|meeting room|meeting", _date(2025, 8, 10)): {
                    "available": [
                        {
                            "slot_id": "FC-MRA-0810-AM",
                            "facility": "区民会館 会議室A",
                            "time": "09:00-12:00",
                            "fee_yen": 800,
                        }
                    ]
                },
            },
            contains=("facility_type",),
            what="facility/date",
        ),
        _fn(
            "reserve_facility",
            "施設の空き枠を予約する。",
            {
                "slot_id": Param(description="search_facilities で得た slot_id"),
                "user_id": Param(description="利用者登録番号（例: A-12345）"),
            },
            ("slot_id", "user_id"),
            {
                ("FC-TN2-0810-09", "A-55012"): {
                    "reservation_id": "RV-66021",
                    "facility": "中央公園テニスコート 2番",
                    "time": "2025-08-10 09:00-11:00",
                    "fee_yen": 1200,
                    "payment": "当日、公園管理事務所で支払い",
                },
            },
            what="slot/user",
        ),
        _fn(
            "request_bulky_pickup",
            "粗大ごみの回収を申し込む。",
            {
                "item": Param(description="出す品目（例: 椅子）"),
                "address": Param(description="回収先の住所"),
            },
            ("item",),
            {
                "椅子|いす|イス|chair": {"receipt": "BP-2207", "pickup_date": "2025-08-19", "fee_yen": 400},
                "ソファ|ソファー|sofa|couch": Fails(
                    "粗大ごみ受付システムで障害が発生しています（ERR-BULKY-500）"
                ),
            },
            contains=("item",),
            what="item",
        ),
    ),
    documents=_MUNI_DOCS,
    kb_description="青葉区役所の案内：証明書、転入・転出、ごみの出し方、施設の予約",
)

DOMAINS = (LIBRARY, HR, TRAVEL, IT, CLINIC, WARD)

_FAIL_JA = (
    "できません",
    "できませんでした",
    "エラー",
    "障害",
    "失敗",
    "接続",
    "利用できない",
    "時間をおいて",
)
_FAIL_EN = (
    "unable",
    "couldn't",
    "could not",
    "can't",
    "cannot",
    "error",
    "unavailable",
    "failed",
    "timed out",
    "timeout",
    "unreachable",
    "not available",
    "problem",
    "issue",
)


TASKS: list[Task] = [
    # --- library ---
    Task(
        LIBRARY,
        "How many seats are free in the Hillside Branch study room right now?",
        "one",
        calls=(("get_study_seats", {"branch": "Hillside|Hillside Branch"}),),
        facts=(("9",),),
        absent=("17",),
    ),
    Task(
        LIBRARY,
        "港分館と丘の上分館の自習室、いま空いてる席はそれぞれ何席ですか？",
        "several",
        calls=(
            ("get_study_seats", {"branch": "港分館|港|Harbor|Harbor Branch"}),
            ("get_study_seats", {"branch": "丘の上分館|丘の上|Hillside|Hillside Branch"}),
        ),
        facts=(("17",), ("9",)),
    ),
    Task(
        LIBRARY,
        "Could you put The Salt Road on hold for me? My card number is 7781-2204.",
        "chain",
        calls=(("search_catalog", {}), ("place_hold", {"book_id": "BK-20417", "member_id": "7781-2204"})),
        facts=(("H-66120",),),
        note="the book_id comes only from the catalogue search",
    ),
    Task(
        LIBRARY,
        "DVDって何日間借りられますか？延長もできますか？",
        "kb",
        kb=True,
        facts=(
            ("7日", "7 日", "７日", "1週間", "一週間", "7days", "7 days"),
            ("1回", "一回", "１回", "once", "1度", "一度"),
        ),
    ),
    Task(
        LIBRARY,
        "Which branch has the most empty study seats at the moment?",
        "kb+tool",
        kb=True,
        calls=(
            ("get_study_seats", {"branch": "Central|Central Library"}),
            ("get_study_seats", {"branch": "Harbor|Harbor Branch"}),
            ("get_study_seats", {"branch": "Hillside|Hillside Branch"}),
        ),
        facts=(("Harbor",), ("17",)),
        note="the branch names are only in the branch guide",
    ),
    Task(LIBRARY, "おかげで探してた本が見つかりました、ありがとう！", "smalltalk", no_calls=True),
    Task(
        LIBRARY,
        "Please reserve Winter Tides by Mara Ellison for me.",
        "missing",
        forbid=("place_hold",),
        facts=(("card", "member"),),
        note="no library card number given",
    ),
    Task(
        LIBRARY,
        "カード番号3318-7702です。いま借りている本をまとめて延長してもらえますか？",
        "failing",
        calls=(("renew_loans", {"member_id": "3318-7702"}),),
        facts=(_FAIL_JA + ("メンテナンス", "14:00", "14時"),),
        absent=("2025-07-23", "延長しました", "延長が完了"),
    ),
    # --- HR ---
    Task(
        HR,
        "社員番号E10234です。有給ってあと何日残ってますか？",
        "one",
        calls=(("get_leave_balance", {"employee_id": "E10234"}),),
        facts=(("12.5", "12日半", "１２．５"),),
    ),
    Task(
        HR,
        "Could you check where my expense claims EX-2025-0412 and EX-2025-0433 are at?",
        "several",
        calls=(
            ("get_expense_claim", {"claim_id": "EX-2025-0412"}),
            ("get_expense_claim", {"claim_id": "EX-2025-0433"}),
        ),
        facts=(("2025-07-25", "July 25", "25 July", "7/25", "Jul 25"), ("receipt",)),
    ),
    Task(
        HR,
        "「Excel データ分析」の研修を受けたいので申し込んでおいてください。社員番号はE20871です。",
        "chain",
        calls=(
            ("search_training", {}),
            ("enroll_training", {"course_id": "TR-305", "employee_id": "E20871"}),
        ),
        facts=(("EN-7710", "8月6日", "2025-08-06", "8/6"),),
        note="the course_id comes only from the search",
    ),
    Task(
        HR,
        "How many days of leave do I get when my wife gives birth?",
        "kb",
        kb=True,
        facts=(("2 days", "two days", "2日", "2 working days", "2 day"),),
    ),
    Task(
        HR,
        "管理職になったので必須の研修を受けないといけないらしいんですが、次回の日程と残席を教えてもらえますか？",
        "kb+tool",
        kb=True,
        calls=(
            ("search_training", {"keyword": "評価者研修|評価者|評価|評価者研修（新任管理職向け）"}),
            ("search_training", {"keyword": "ハラスメント防止研修|ハラスメント防止|ハラスメント"}),
        ),
        facts=(("9月18日", "2025-09-18", "9/18"), ("8月27日", "2025-08-27", "8/27"), ("15",)),
        note="the two course names are only in the training policy",
    ),
    Task(HR, "Morning! Just popping in to say hi, it's my first week here.", "smalltalk", no_calls=True),
    Task(
        HR,
        "来週の月曜から3日間、有給を取りたいので申請をお願いします。",
        "missing",
        forbid=("submit_leave_request",),
        facts=(("社員番号", "社員ID", "従業員番号"),),
        note="no employee number (and only a relative date)",
    ),
    Task(
        HR,
        "Can you pull up my payslip for June 2025? Employee ID E30552.",
        "failing",
        calls=(("get_payslip", {"employee_id": "E30552"}),),
        facts=(_FAIL_EN,),
        absent=("318,540", "318540", "412,000", "net pay is"),
    ),
    # --- travel ---
    Task(
        TRAVEL,
        "Is JL517 on schedule today?",
        "one",
        calls=(("get_flight_status", {"flight": "JL517|JL 517|JAL517"}),),
        facts=(("15:40",), ("delay",)),
    ),
    Task(
        TRAVEL,
        "予約番号SK4T7PとSK9X4A、どの便で何日出発になっているか確認してもらえますか？",
        "several",
        calls=(("get_booking", {"booking_ref": "SK4T7P"}), ("get_booking", {"booking_ref": "SK9X4A"})),
        facts=(
            ("JL505", "JL 505"),
            ("NH425", "NH 425"),
            ("8月12日", "2025-08-12", "8/12"),
            ("8月20日", "2025-08-20", "8/20"),
        ),
    ),
    Task(
        TRAVEL,
        "Get me on the earliest flight from Tokyo to Sapporo on 2025-08-12, please. "
        "The passenger is Kenji Mori.",
        "chain",
        calls=(
            ("search_flights", {"origin": _TOKYO, "destination": _SAPPORO}),
            ("book_flight", {"flight_id": "FL-NH063"}),
        ),
        facts=(("SK7Q2M",), ("08:00", "8:00")),
        absent=("SK3B8D", "SK5N1C"),
        note="the earliest flight is the second one listed",
    ),
    Task(
        TRAVEL,
        "2025年9月3日から2泊で、福岡のいちばん安いホテルを取ってください。宿泊者は林 美咲です。",
        "chain",
        calls=(("search_hotels", {"city": _FUKUOKA}), ("book_hotel", {"hotel_id": "HT-FUK-22", "nights": 2})),
        facts=(("HB-40917",),),
        absent=("HB-40918",),
    ),
    Task(
        TRAVEL,
        "What do flights cost on 2025-08-20 from Osaka to Fukuoka, and from Osaka to Sapporo?",
        "several",
        calls=(
            ("search_flights", {"origin": _OSAKA, "destination": _FUKUOKA}),
            ("search_flights", {"origin": _OSAKA, "destination": _SAPPORO}),
        ),
        facts=(("12,400", "12400"), ("31,800", "31800")),
    ),
    Task(
        TRAVEL,
        "ところで、北海道の道庁所在地ってどこでしたっけ？",
        "smalltalk",
        no_calls=True,
        facts=(("札幌",),),
    ),
    Task(
        TRAVEL,
        "Can you book me a hotel in Sapporo for two nights?",
        "missing",
        no_calls=True,
        forbid=("book_hotel", "search_hotels"),
        facts=(("date", "when", "check-in", "check in"),),
        note="no check-in date (nor guest name)",
    ),
    Task(
        TRAVEL,
        "NH241便って今日ちゃんと飛びますか？",
        "failing",
        calls=(("get_flight_status", {"flight": "NH241|NH 241|ANA241"}),),
        facts=(_FAIL_JA + ("503", "確認できません", "取得できません", "わかりません", "分かりません"),),
        absent=("定刻通り", "定刻どおり", "欠航", "遅延しています"),
    ),
    # --- IT ---
    Task(
        IT,
        "チケット INC-40512 っていまどうなってますか？",
        "one",
        calls=(("get_ticket", {"ticket_id": "INC-40512"}),),
        facts=(("17:00", "17時", "午後5時"),),
    ),
    Task(
        IT,
        "Is anything wrong with email or the wiki right now?",
        "several",
        calls=(
            ("check_service_status", {"service": "email|mail|e-mail|Exchange Online|Exchange"}),
            ("check_service_status", {"service": "wiki"}),
        ),
        facts=(("12:00", "noon"), ("maintenance",)),
    ),
    Task(
        IT,
        "I need Figma on my PC, hostname PC-0231. Can you sort that out?",
        "chain",
        calls=(
            ("search_software", {"name": "Figma|Figma Desktop"}),
            ("request_install", {"package_id": "SW-118", "hostname": "PC-0231"}),
        ),
        facts=(("RQ-5521",),),
    ),
    Task(
        IT,
        "パスワードって最低何文字でしたっけ？それと何回間違えるとロックされます？",
        "kb",
        kb=True,
        facts=(("14",), ("5回", "5 回", "５回", "五回", "5 failed", "5 times")),
    ),
    Task(
        IT,
        "Are all our core services running normally right now?",
        "kb+tool",
        kb=True,
        calls=(
            ("check_service_status", {"service": "Email|mail|e-mail|Exchange Online|Exchange"}),
            ("check_service_status", {"service": "VPN|GlobalProtect"}),
            ("check_service_status", {"service": "Wiki"}),
        ),
        facts=(("VPN",), ("degraded", "disconnect", "intermittent"), ("maintenance", "12:00")),
        note="the three core services are named only in the knowledge base",
    ),
    Task(IT, "直りました！助かりました〜、良い週末を！", "smalltalk", no_calls=True),
    Task(
        IT,
        "パスワードのリセットをお願いしたいです。",
        "missing",
        forbid=("reset_password",),
        facts=(("ネットワークID", "ユーザー名", "ユーザ名", "ユーザーID", "アカウント", "ID"),),
        note="no network ID",
    ),
    Task(
        IT,
        "Please reset the password on my account, t.nakamura.",
        "failing",
        calls=(("reset_password", {"username": "t.nakamura"}),),
        facts=(_FAIL_EN,),
        absent=("has been reset", "temporary password has been sent", "0417"),
    ),
    # --- clinic ---
    Task(
        CLINIC,
        "How many flu shots do you have left in stock?",
        "one",
        calls=(("get_vaccine_stock", {"vaccine": "influenza|flu|インフルエンザ|flu shot|flu vaccine"}),),
        facts=(("42",),),
    ),
    Task(
        CLINIC,
        "7月16日の内科と小児科、それぞれ空いている時間を教えてください。",
        "several",
        calls=(
            ("search_slots", {"department": _INTERNAL, "date": _date(2025, 7, 16)}),
            ("search_slots", {"department": _PEDIATRICS, "date": _date(2025, 7, 16)}),
        ),
        facts=(("10:00", "10時"), ("9:15", "09:15", "9時15分"), ("11:45", "11時45分")),
    ),
    Task(
        CLINIC,
        "Could you book me the earliest internal medicine slot on July 15? My patient number is P-20931.",
        "chain",
        calls=(
            ("search_slots", {"department": _INTERNAL}),
            ("book_appointment", {"slot_id": "SL-0715-0930", "patient_id": "P-20931"}),
        ),
        facts=(("AP-3391",), ("9:30", "09:30")),
    ),
    Task(
        CLINIC,
        "水曜日の午後って診察してもらえますか？",
        "kb",
        kb=True,
        facts=(("午前", "12:30", "休診", "していません", "やっていません"),),
    ),
    Task(
        CLINIC,
        "70歳の母が市の助成で受けられる予防接種、それぞれいま在庫はどのくらいありますか？",
        "kb+tool",
        kb=True,
        calls=(
            ("get_vaccine_stock", {"vaccine": "インフルエンザ|インフル|influenza|flu"}),
            ("get_vaccine_stock", {"vaccine": "肺炎球菌|pneumococcal"}),
            ("get_vaccine_stock", {"vaccine": "帯状疱疹|shingles"}),
        ),
        facts=(
            ("42",),
            ("13",),
            (
                "7月22日",
                "2025-07-22",
                "7/22",
                "在庫切れ",
                "在庫なし",
                "在庫がありません",
                "在庫は0",
                "0回",
                "0本",
            ),
        ),
        note="the three subsidised vaccines are listed only in the knowledge base",
    ),
    Task(
        CLINIC,
        "Hi! Just wanted to say the nurses were really kind to my son last week.",
        "smalltalk",
        no_calls=True,
    ),
    Task(
        CLINIC,
        "7月15日の内科、11時の枠で予約をお願いします。",
        "missing",
        forbid=("book_appointment",),
        facts=(("診察券", "患者番号", "患者ID", "患者 ID"),),
        note="no patient number; searching the slots is fine",
    ),
    Task(
        CLINIC,
        "Are my blood test results back yet? Patient number P-20931.",
        "failing",
        calls=(("get_test_result", {"patient_id": "P-20931"}),),
        facts=(_FAIL_EN + ("connect",),),
        absent=("within reference range", "all normal", "results are normal"),
    ),
    # --- ward office ---
    Task(
        WARD,
        "Which days is burnable garbage collected in Midorigaoka 2-chome?",
        "one",
        calls=(
            (
                "get_garbage_schedule",
                {"district": "Midorigaoka 2-chome|Midorigaoka 2|Midorigaoka|緑が丘2丁目"},
            ),
        ),
        facts=(("Tue", "火"), ("Fri", "金")),
        absent=("Thursday",),
    ),
    Task(
        WARD,
        "When is plastic picked up in Honmachi 1-chome and in Sakuradai 3-chome?",
        "several",
        calls=(
            ("get_garbage_schedule", {"district": "Honmachi 1-chome|Honmachi 1|Honmachi|本町1丁目"}),
            ("get_garbage_schedule", {"district": "Sakuradai 3-chome|Sakuradai 3|Sakuradai|桜台3丁目"}),
        ),
        facts=(("Wednesday", "Wed"), ("Thursday", "Thu")),
    ),
    Task(
        WARD,
        "8月10日の午前中に中央公園のテニスコートを使いたいです。予約お願いします。登録番号はA-55012です。",
        "chain",
        calls=(
            ("search_facilities", {"facility_type": "テニスコート|テニス|tennis|tennis court"}),
            ("reserve_facility", {"slot_id": "FC-TN2-0810-09", "user_id": "A-55012"}),
        ),
        facts=(("RV-66021",),),
        absent=("FC-TN1",),
    ),
    Task(
        WARD,
        "How much is a copy of my residence certificate, and can I get one at a convenience store?",
        "kb",
        kb=True,
        facts=(("300",), ("My Number", "マイナンバー", "Individual Number")),
    ),
    Task(
        WARD,
        "引っ越してきたので来週転入の手続きに行きます（子どもはいません）。回らないといけない窓口は、"
        "いまそれぞれどのくらい待ちますか？",
        "kb+tool",
        kb=True,
        calls=(
            ("get_counter_wait", {"counter": "住民記録|住民記録窓口|住民票|転入|転入届"}),
            (
                "get_counter_wait",
                {"counter": "国民健康保険|国保|国民健康保険・年金|国民健康保険・年金窓口|年金"},
            ),
        ),
        facts=(("35",), ("15",)),
        note="the two counters are named only in the moving-in guide",
    ),
    Task(
        WARD,
        "こんにちは〜。聞きたいことがあったんだけど忘れちゃった、また来ますね。",
        "smalltalk",
        no_calls=True,
    ),
    Task(
        WARD,
        "I'd like to book a tennis court at Central Park for the morning of August 10.",
        "missing",
        forbid=("reserve_facility",),
        facts=(("registration", "user ID", "user number", "ID"),),
        note="no user registration number; searching the free slots is fine",
    ),
    Task(
        WARD,
        "ソファを粗大ごみに出したいので回収を申し込んでください。住所は本町1丁目4-7です。",
        "failing",
        calls=(("request_bulky_pickup", {"item": "ソファ|ソファー|sofa"}),),
        facts=(_FAIL_JA,),
        absent=("申し込みが完了", "受付が完了", "BP-2207"),
    ),
]
