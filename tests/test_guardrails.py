"""Guardrails through boto3 against a real server: the ``bedrock`` lifecycle (create, get, update,
versions, list, delete) and ``bedrock-runtime`` ApplyGuardrail with haniwa's exact, offline detectors on
Japanese and English text: masks land on the original characters and leave the rest as sent, blocks
answer the configured messages, and look-alikes pass."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from haniwa.guardrails.base import MY_NUMBER_PATTERN
from haniwa.guardrails.normalize import normalize

BLOCKED_IN = "申し訳ありませんが、その内容にはお答えできません。"
BLOCKED_OUT = "回答を表示できません。"
PII = ["EMAIL", "PHONE", "ADDRESS", "CREDIT_DEBIT_CARD_NUMBER", "IP_ADDRESS", "URL"]


def _config(name: str = "ja-support") -> dict[str, Any]:
    return {
        "name": name,
        "description": "日本語の窓口向け",
        "blockedInputMessaging": BLOCKED_IN,
        "blockedOutputsMessaging": BLOCKED_OUT,
        "wordPolicyConfig": {
            "wordsConfig": [{"text": "競合他社"}, {"text": "secret project"}],
            "managedWordListsConfig": [{"type": "PROFANITY"}],
        },
        "sensitiveInformationPolicyConfig": {
            "piiEntitiesConfig": [{"type": t, "action": "ANONYMIZE"} for t in PII],
            "regexesConfig": [
                {"name": "JP_MY_NUMBER", "pattern": MY_NUMBER_PATTERN, "action": "ANONYMIZE"},
                {"name": "TICKET", "pattern": r"tk-\d{6}", "action": "NONE"},
            ],
        },
        "contentPolicyConfig": {
            "filtersConfig": [{"type": "HATE", "inputStrength": "HIGH", "outputStrength": "HIGH"}],
            "tierConfig": {"tierName": "CLASSIC"},
        },
        "topicPolicyConfig": {
            "topicsConfig": [{"name": "investment", "definition": "投資の助言", "type": "DENY"}]
        },
        "contextualGroundingPolicyConfig": {"filtersConfig": [{"type": "GROUNDING", "threshold": 0.8}]},
    }


@pytest.fixture
def guardrail(bedrock: Any) -> str:
    gid: str = bedrock.create_guardrail(**_config())["guardrailId"]
    return gid


def _apply(runtime: Any, gid: str, text: str, source: str = "INPUT", **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = runtime.apply_guardrail(
        guardrailIdentifier=gid,
        guardrailVersion=kw.pop("version", "DRAFT"),
        source=source,
        content=[{"text": {"text": text}}],
        **kw,
    )
    return out


def _masked(out: dict[str, Any]) -> str:
    assert out["action"] == "GUARDRAIL_INTERVENED"
    text: str = out["outputs"][0]["text"]
    return text


def test_lifecycle(bedrock: Any) -> None:
    made = bedrock.create_guardrail(**_config(), clientRequestToken="tok-1")
    gid = made["guardrailId"]
    assert len(gid) == 12 and gid.isalnum() and gid.islower()
    assert made["guardrailArn"].endswith(f":guardrail/{gid}") and made["version"] == "DRAFT"
    # the same token returns the same guardrail; the same name without it is a conflict
    assert bedrock.create_guardrail(**_config(), clientRequestToken="tok-1")["guardrailId"] == gid
    with pytest.raises(ClientError) as err:
        bedrock.create_guardrail(**_config())
    assert err.value.response["Error"]["Code"] == "ConflictException"

    got = bedrock.get_guardrail(guardrailIdentifier=made["guardrailArn"])
    assert got["status"] == "READY" and got["version"] == "DRAFT" and got["name"] == "ja-support"
    assert got["blockedInputMessaging"] == BLOCKED_IN
    assert got["wordPolicy"]["words"][0]["text"] == "競合他社"
    assert got["wordPolicy"]["managedWordLists"][0]["type"] == "PROFANITY"
    assert got["contentPolicy"]["filters"][0]["type"] == "HATE"
    assert got["contentPolicy"]["tier"] == {"tierName": "CLASSIC"}
    assert got["topicPolicy"]["topics"][0]["name"] == "investment"
    assert got["contextualGroundingPolicy"]["filters"][0]["threshold"] == 0.8

    assert bedrock.create_guardrail_version(guardrailIdentifier=gid)["version"] == "1"
    v2 = bedrock.create_guardrail_version(guardrailIdentifier=gid, clientRequestToken="v-tok")
    again = bedrock.create_guardrail_version(guardrailIdentifier=gid, clientRequestToken="v-tok")
    assert v2["version"] == again["version"] == "2"

    # editing the DRAFT leaves the versions as they were
    bedrock.update_guardrail(
        guardrailIdentifier=gid,
        name="ja-support-2",
        blockedInputMessaging="NG",
        blockedOutputsMessaging="NG",
    )
    assert bedrock.get_guardrail(guardrailIdentifier=gid)["name"] == "ja-support-2"
    v1 = bedrock.get_guardrail(guardrailIdentifier=gid, guardrailVersion="1")
    assert v1["name"] == "ja-support" and v1["version"] == "1" and "wordPolicy" in v1

    other = bedrock.create_guardrail(**_config("other"))["guardrailId"]
    drafts = bedrock.list_guardrails()["guardrails"]
    assert {(g["id"], g["version"]) for g in drafts} == {(gid, "DRAFT"), (other, "DRAFT")}
    versions = bedrock.list_guardrails(guardrailIdentifier=gid)["guardrails"]
    assert [g["version"] for g in versions] == ["DRAFT", "1", "2"]
    pages = bedrock.get_paginator("list_guardrails").paginate(
        guardrailIdentifier=gid, PaginationConfig={"PageSize": 1}
    )
    assert [g["version"] for page in pages for g in page["guardrails"]] == ["DRAFT", "1", "2"]

    bedrock.delete_guardrail(guardrailIdentifier=gid, guardrailVersion="1")
    assert [g["version"] for g in bedrock.list_guardrails(guardrailIdentifier=gid)["guardrails"]] == [
        "DRAFT",
        "2",
    ]
    bedrock.delete_guardrail(guardrailIdentifier=gid)
    with pytest.raises(ClientError) as err:
        bedrock.get_guardrail(guardrailIdentifier=gid)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert [g["id"] for g in bedrock.list_guardrails()["guardrails"]] == [other]


def test_errors(bedrock: Any, runtime: Any, guardrail: str) -> None:
    cases = [
        (lambda: bedrock.get_guardrail(guardrailIdentifier="nosuchguard1"), "ResourceNotFoundException"),
        (lambda: _apply(runtime, "nosuchguard1", "x"), "ResourceNotFoundException"),
        (
            lambda: bedrock.get_guardrail(guardrailIdentifier=guardrail, guardrailVersion="7"),
            "ResourceNotFoundException",
        ),
        (
            lambda: bedrock.get_guardrail(guardrailIdentifier=guardrail, guardrailVersion="v1"),
            "ValidationException",
        ),
        (lambda: _apply(runtime, guardrail, "x", version="latest"), "ValidationException"),
        (
            lambda: bedrock.delete_guardrail(guardrailIdentifier=guardrail, guardrailVersion="DRAFT"),
            "ValidationException",
        ),
    ]
    for fn, code in cases:
        with pytest.raises(ClientError) as err:
            fn()
        assert err.value.response["Error"]["Code"] == code
    bad = _config("bad-regex")
    bad["sensitiveInformationPolicyConfig"]["regexesConfig"] = [
        {"name": "broken", "pattern": "([a-z", "action": "BLOCK"}
    ]
    with pytest.raises(ClientError) as err:
        bedrock.create_guardrail(**bad)
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_masks_japanese_pii(runtime: Any, guardrail: str) -> None:
    text = "お電話は090-1234-5678、メールはtaro.yamada@example.co.jpまで。"
    out = _apply(runtime, guardrail, text)
    assert _masked(out) == "お電話は{PHONE}、メールは{EMAIL}まで。"
    pii = out["assessments"][0]["sensitiveInformationPolicy"]["piiEntities"]
    assert {(e["type"], e["match"], e["action"]) for e in pii} == {
        ("PHONE", "090-1234-5678", "ANONYMIZED"),
        ("EMAIL", "taro.yamada@example.co.jp", "ANONYMIZED"),
    }
    # full-width digits and hyphens: the mask covers exactly the characters sent
    assert (
        _masked(_apply(runtime, guardrail, "連絡先：０９０－１２３４－５６７８（携帯）"))
        == "連絡先：{PHONE}（携帯）"
    )
    assert (
        _masked(_apply(runtime, guardrail, "代表 03-1234-5678 / +81 90 1234 5678"))
        == "代表 {PHONE} / {PHONE}"
    )
    # My Number with a valid check digit (a regex entry naming haniwa's detector)
    out = _apply(runtime, guardrail, "個人番号は6214 9832 0257です")
    assert _masked(out) == "個人番号は{JP_MY_NUMBER}です"
    regexes = out["assessments"][0]["sensitiveInformationPolicy"]["regexes"]
    assert regexes[0]["name"] == "JP_MY_NUMBER" and regexes[0]["match"] == "6214 9832 0257"
    assert _masked(_apply(runtime, guardrail, "住所：東京都千代田区丸の内１丁目２番３号 ビル5F")) == (
        "住所：{ADDRESS} ビル5F"
    )
    assert (
        _masked(_apply(runtime, guardrail, "送付先は神奈川県横浜市中区本町1-2-3です。"))
        == "送付先は{ADDRESS}です。"
    )


def test_masks_keep_the_rest_byte_for_byte(runtime: Any, guardrail: str) -> None:
    text = "ｶﾞｲﾄﾞ🙂\u3000カード4111-1111-1111-1111を、IP 192.168.0.1・https://example.jp/a?b=1 で！\n改行\tタブ"
    out = _masked(_apply(runtime, guardrail, text, source="OUTPUT"))
    assert out == "ｶﾞｲﾄﾞ🙂\u3000カード{CREDIT_DEBIT_CARD_NUMBER}を、IP {IP_ADDRESS}・{URL} で！\n改行\tタブ"


def test_blocks_words(runtime: Any, guardrail: str) -> None:
    out = _apply(runtime, guardrail, "当社は競合他社よりも安いですか")  # no spaces in Japanese
    assert out["action"] == "GUARDRAIL_INTERVENED"
    assert out["outputs"] == [{"text": BLOCKED_IN}]
    words = out["assessments"][0]["wordPolicy"]["customWords"]
    assert words == [{"match": "競合他社", "action": "BLOCKED", "detected": True}]
    out = _apply(runtime, guardrail, "What the FUCK is this?", source="OUTPUT")
    assert out["outputs"] == [{"text": BLOCKED_OUT}]
    managed = out["assessments"][0]["wordPolicy"]["managedWordLists"]
    assert managed == [{"match": "FUCK", "type": "PROFANITY", "action": "BLOCKED", "detected": True}]
    # full-width letters and extra spaces still match an English phrase
    assert _apply(runtime, guardrail, "about the ＳＥＣＲＥＴ  project")["outputs"] == [{"text": BLOCKED_IN}]
    # a Japanese profanity inside a sentence
    assert _apply(runtime, guardrail, "このクソ野郎が")["outputs"] == [{"text": BLOCKED_IN}]


def test_benign_look_alikes_pass(runtime: Any, guardrail: str) -> None:
    for text in [
        "注文番号は621498320258です",  # 12 digits, wrong My Number check digit
        "品番012-3456-7890の在庫",  # shaped like a phone number, not a valid one
        "Scunthorpe has a classic assembly of shitake-free cocktails",  # profanity only as substrings
        "カード番号風の 4111 1111 1111 1112",  # fails Luhn
        "バージョン 1.2.3.4000 をご利用ください",  # not an IP address
        "東京都の天気は晴れです",  # a prefecture alone is no address
    ]:
        out = _apply(runtime, guardrail, text)
        assert out["action"] == "NONE", (text, out["assessments"])
        assert out["outputs"] == []


def test_scope_coverage_and_detect_only(runtime: Any, guardrail: str) -> None:
    text = "チケット tk-123456 の件"
    quiet = _apply(runtime, guardrail, text)
    assert quiet["action"] == "NONE" and "sensitiveInformationPolicy" not in quiet["assessments"][0]
    full = _apply(runtime, guardrail, text, outputScope="FULL")
    regexes = full["assessments"][0]["sensitiveInformationPolicy"]["regexes"]
    assert regexes == [
        {"name": "TICKET", "match": "tk-123456", "regex": r"tk-\d{6}", "action": "NONE", "detected": True}
    ]
    source, query, answer = "090-1234-5678 は資料の電話番号", "はい", "番号は090-1234-5678です"
    out = runtime.apply_guardrail(
        guardrailIdentifier=guardrail,
        guardrailVersion="DRAFT",
        source="OUTPUT",
        content=[
            {"text": {"text": source, "qualifiers": ["grounding_source"]}},
            {"text": {"text": query, "qualifiers": ["query"]}},
            {"text": {"text": answer}},
        ],
    )
    assert out["outputs"] == [{"text": "番号は{PHONE}です"}]
    assert out["guardrailCoverage"]["textCharacters"] == {
        "guarded": len(answer),
        "total": len(source) + len(query) + len(answer),
    }
    usage = out["usage"]
    assert usage["wordPolicyUnits"] == usage["topicPolicyUnits"] == usage["contentPolicyUnits"] == 1
    assert usage["contextualGroundingPolicyUnits"] == 1
    # the answer is grounded in its source (above the 0.8 threshold) and neither hateful nor on the
    # denied topic: nothing but the mask is reported
    assert set(out["assessments"][0]) == {"sensitiveInformationPolicy", "invocationMetrics"}


def test_versions_apply_what_they_froze(bedrock: Any, runtime: Any, guardrail: str) -> None:
    bedrock.create_guardrail_version(guardrailIdentifier=guardrail)
    bedrock.update_guardrail(
        guardrailIdentifier=guardrail,
        name="ja-support",
        blockedInputMessaging="NG",
        blockedOutputsMessaging="NG",
    )
    assert _apply(runtime, guardrail, "090-1234-5678")["action"] == "NONE"
    assert _masked(_apply(runtime, guardrail, "090-1234-5678", version="1")) == "{PHONE}"


def test_long_and_adversarial_texts(bedrock: Any, runtime: Any, guardrail: str) -> None:
    # the exact detectors only: the embedding ones cost tens of ms per 160 characters (README)
    exact = {k: v for k, v in _config().items() if not k.startswith(("content", "topic", "contextual"))}
    bedrock.update_guardrail(guardrailIdentifier=guardrail, **exact)
    # a run that once made the address pattern backtrack exponentially, then a number to mask
    tricky = "東京都" + "市" * 3000 + " 090-1234-5678"
    started = time.perf_counter()
    assert _masked(_apply(runtime, guardrail, tricky)) == "東京都" + "市" * 3000 + " {PHONE}"
    # a long text (checked off the event loop), full-width throughout: the masks land where they should
    filler = "ｶﾀｶﾅと全角ＡＢＣの文章。" * 2000
    out = _masked(_apply(runtime, guardrail, filler + "連絡先 ０３－１２３４－５６７８。" + filler))
    assert out == filler + "連絡先 {PHONE}。" + filler
    assert time.perf_counter() - started < 5
    # names stay unique on update too
    other = bedrock.create_guardrail(**_config("other"))["guardrailId"]
    with pytest.raises(ClientError) as err:
        bedrock.update_guardrail(
            guardrailIdentifier=other,
            name="ja-support",
            blockedInputMessaging="x",
            blockedOutputsMessaging="x",
        )
    assert err.value.response["Error"]["Code"] == "ConflictException"


def test_normalised_offsets_map_back_to_the_original() -> None:
    text = "ﾊﾟｽﾀ か\u3099 ﬁle ＴＥＬ０３"
    norm = normalize(text)
    assert norm.text == "パスタ が file tel03"
    for needle, original in [("パ", "ﾊﾟ"), ("が", "か\u3099"), ("fi", "ﬁ"), ("tel03", "ＴＥＬ０３")]:
        at = norm.text.index(needle)
        start, end = norm.span(at, at + len(needle))
        assert text[start:end] == original


def test_directions_and_detect_only(bedrock: Any, runtime: Any) -> None:
    gid = bedrock.create_guardrail(
        name="directions",
        blockedInputMessaging="in",
        blockedOutputsMessaging="out",
        sensitiveInformationPolicyConfig={
            "piiEntitiesConfig": [
                {"type": "EMAIL", "action": "ANONYMIZE", "inputEnabled": False},
                {"type": "PHONE", "action": "BLOCK", "inputAction": "NONE"},
            ]
        },
    )["guardrailId"]
    text = "a@example.com 090-1234-5678"
    quiet = _apply(runtime, gid, text, outputScope="FULL")  # INPUT: e-mail off, phone detect-only
    assert quiet["action"] == "NONE" and quiet["outputs"] == []
    pii = quiet["assessments"][0]["sensitiveInformationPolicy"]["piiEntities"]
    assert pii == [{"match": "090-1234-5678", "type": "PHONE", "action": "NONE", "detected": True}]
    assert _apply(runtime, gid, text, source="OUTPUT")["outputs"] == [{"text": "out"}]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("My landlord, a man named Robert Okafor, never called back.", ["Robert Okafor"]),
        ("Our manager Jane Doe signed it.", ["Jane Doe"]),
        ("Dear Emily Carter, thanks for writing.", ["Emily Carter"]),
        ("I met a student named Ken at the station.", ["Ken"]),
        ("A product called Apple Watch is on sale.", []),  # a thing, not a person
        ("The boat named Sea Breeze left at noon.", []),
        ("My boss said no.", []),
        ("Johnson & Johnson makes it.", []),
        # a common given name and a capitalised surname need no context
        ("Please forward this to Daniel Brooks in legal.", ["Daniel Brooks"]),
        ("We met Olivia R. Bennett at the fair.", ["Olivia R. Bennett"]),
        ("Ask Mark Taylor about it.", ["Mark Taylor"]),
        ("Thanks to Emily O'Brien for the slides.", ["Emily O'Brien"]),
        ("Please cc Kenji Watanabe on the thread.", ["Kenji Watanabe"]),  # romanised Japanese
        ("Send the invoice to Ananya Iyer today.", ["Ananya Iyer"]),
        ("Why did the Roman Empire fall?", []),
        # places, organisations and word-names without a surname are not people
        ("The Jordan River flows south.", []),
        ("She moved to Austin Texas last year.", []),
        ("George Washington University is in DC.", []),
        ("Will Power is what you need.", []),
        # widely known historical and fictional people (data/public_figures.txt)
        ("When did Albert Einstein move to Princeton?", []),
        ("Who wrote the stories about Sherlock Holmes?", []),
    ],
)
def test_english_names(text: str, found: list[str]) -> None:
    from haniwa.guardrails.names import names

    assert [text[s:e] for s, e in names(text)] == found


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("山田太郎さんから電話がありました。", ["山田太郎"]),
        ("佐藤様にお渡しください。", ["佐藤"]),
        # MeCab reads 烏丸通 as a surname and a given name 通: a street, not a person
        ("烏丸通を北に歩くと駅です。", []),
        ("佐藤通さんに連絡して", ["佐藤通"]),
        # a widely known historical person is no private person's data (data/public_figures.txt)
        ("徳川家康はどこで生まれたの？", []),
    ],
)
def test_japanese_names(text: str, found: list[str]) -> None:
    from haniwa.guardrails.names import names

    assert [text[s:e] for s, e in names(text)] == found


@pytest.mark.parametrize(
    ("text", "kind", "found"),
    [
        ("Call our London office on 020 7946 0958.", "PHONE", ["020 7946 0958"]),
        # outside the allocated ranges (a UK fiction number), but after a phone word
        ("My UK mobile is 07700 914 362, text me.", "PHONE", ["07700 914 362"]),
        ("携帯の番号は090-0000-1234です。", "PHONE", ["090-0000-1234"]),
        ("Where is my order #4471-2290-8813?", "PHONE", []),  # valid for +44 only with a + or trunk 0
        ("Invoice 0794 6095 8123 is attached.", "PHONE", []),  # no phone word before it
        # labelled as another kind of number, or one part of a longer code
        ("ご注文番号：0120-4471-22 の件で電話しました。", "PHONE", []),
        ("Part no. 415-555-2671 replaces the old hinge.", "PHONE", []),
        ("The filter 312-555-0198-XL fits the 2018 model.", "PHONE", []),
        ("Call me on 312-555-0198, not the office.", "PHONE", ["312-555-0198"]),
        ("Drop it at 301 West 57th Street, New York.", "ADDRESS", ["301 west 57th street"]),
        ("221B Baker Street is a museum now.", "ADDRESS", ["221b baker street"]),
        # any street suffix, known by a unit and a "City, ST 12345" tail
        ("Send to 18 Harbor Knoll, Suite 210, Tampa, FL 33602.", "ADDRESS", ["18 harbor knoll, suite 210"]),
        ("We had 3 guests from Boston, MA 02110 last week.", "ADDRESS", []),
        # Japanese addresses without the prefecture, and romanised ones
        ("実家は名古屋市昭和区御器所3丁目です。", "ADDRESS", ["名古屋市昭和区御器所3丁目"]),
        ("福岡市博多区博多駅前2-19-24まで届けて", "ADDRESS", ["福岡市博多区博多駅前2-19-24"]),
        ("東京都千代田区丸の内1-2-3", "ADDRESS", ["東京都千代田区丸の内1-2-3"]),  # one span, not two
        ("The office is at 2-4-1 Shibakoen, Minato-ku, Tokyo.", "ADDRESS", ["2-4-1 shibakoen, minato-ku"]),
        ("品川区の人口は1-2割増えた。", "ADDRESS", []),
        ("第3学区の1-2組が優勝した。", "ADDRESS", []),
        ("Kita-ku has 3-4 parks.", "ADDRESS", []),
    ],
)
def test_phone_numbers_and_addresses(text: str, kind: str, found: list[str]) -> None:
    from haniwa.guardrails.pii import SUPPORTED_TYPES

    normal = normalize(text).text
    assert [normal[s:e] for s, e in SUPPORTED_TYPES[kind](normal)] == found


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("個人番号は6214 9832 0257です", ["6214 9832 0257"]),  # a valid check digit
        ("マイナンバーは1234 5678 9012で合ってる？", ["1234 5678 9012"]),  # named as one, check digit wrong
        ("my number is 123456789012, right?", ["123456789012"]),
        ("注文番号は621498320258です", []),  # wrong check digit, not named
        # a valid check digit, but labelled right before it as another kind of number
        ("ご注文番号 6214-9832-0257 の商品を発送しました。", []),
        ("Tracking no.: 6214 9832 0257", []),
        ("私の番号は6214-9832-0257です", ["6214-9832-0257"]),
    ],
)
def test_my_numbers(text: str, found: list[str]) -> None:
    from haniwa.guardrails.pii import my_numbers

    normal = normalize(text).text
    assert [normal[s:e] for s, e in my_numbers(normal)] == found
