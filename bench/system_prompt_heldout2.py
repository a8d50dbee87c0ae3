"""Second held-out split (``heldout2``) of bench/system_prompt.py: 24 system-prompt adherence cases.

Written from scratch on 2026-12-06 by a helper that had not seen the rule-following feature under test,
with its own personas and wording (not paraphrases of the dev / heldout cases): 12 Japanese and 12 English
system prompts, each with two user prompts. Never tune anything on these cases.

The helpers (``Case``, ``ending``, ...) live in bench/system_prompt.py, which builds its ``CASES`` from this
module's ``cases()``; they are imported inside ``cases()`` so that the two modules do not import each other
at load time. The checks below are the ones bench/system_prompt.py lacks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.system_prompt import Case

Check = Callable[[str], str | None]

_EMOJI = re.compile(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F]+")
_CLOSERS = " \t\n\u3000」』）)\"'”’*_`"


def max_chars(n: int) -> Check:
    """At most ``n`` characters, not counting spaces and line breaks (punctuation counts)."""

    def check(text: str) -> str | None:
        k = len(re.sub(r"\s", "", text))
        return None if 1 <= k <= n else f"{k} characters (at most {n})"

    return check


def asks_back(text: str) -> str | None:
    """The answer ends with a question: its last character (quotes, markup, emoji aside) is ? or ？."""
    tail = _EMOJI.sub("", text).rstrip(_CLOSERS)
    return None if tail.endswith(("?", "？")) else f"does not end with a question: {tail[-20:]!r}"


def numbered(least: int, most: int) -> Check:
    """Every non-empty line is an item "1." "2." ... numbered in order from 1, and there are least..most."""

    def check(text: str) -> str | None:
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        for i, ln in enumerate(lines, 1):
            m = re.match(r"(\d+)\.\s*\S", ln)
            if m is None:
                return f"not a numbered item: {ln[:30]!r}"
            if int(m.group(1)) != i:
                return f"item {i} is numbered {m.group(1)}"
        return None if least <= len(lines) <= most else f"{len(lines)} items ({least}-{most})"

    return check


def json_choice(key: str, allowed: tuple[str, ...]) -> Check:
    """The answer is a JSON object whose ``key`` is one of ``allowed`` (types: ``json_object``)."""

    def check(text: str) -> str | None:
        try:
            value = json.loads(text.strip())
        except ValueError:
            return "not JSON"
        got = value.get(key) if isinstance(value, dict) else None
        return None if got in allowed else f"{key!r} is {got!r}, not one of {allowed}"

    return check


TICKET_CATEGORIES = ("billing", "technical", "account", "other")


def cases() -> list[Case]:
    from bench.system_prompt import (
        Case,
        ending,
        ends_with,
        has_letters,
        includes,
        json_object,
        language,
        lines_like,
        max_sentences,
        max_words,
        no_match,
        no_polite,
    )

    ja, en = language("ja"), language("en")
    digits = no_match(r"[0-9０-９]", "digit")
    return [
        # ---- Japanese system prompts ------------------------------------------------------------------
        Case(
            "h2-01-dayo",
            "heldout2",
            "あなたは子ども向け科学館の案内ロボット「ハカセ」。小学生にもわかる言葉で、やさしく説明してあげて。"
            "話し方のルール：語尾はいつも「だよ」。どの文も「だよ」で終わらせること。",
            ("虹ってどうしてできるの？", "恐竜はなぜいなくなったんですか？"),
            (ending("だよ"),),
        ),
        Case(
            "h2-02-ssu",
            "heldout2",
            "設定：あなたはジムで働く体育会系の後輩トレーナー。明るく元気に、相手を励ますように話す。"
            "文末は必ず「っす」にすること（例：「大丈夫っす」「やってみるっす」）。",
            ("筋トレを始めたいんだけど、何からやればいい？", "おすすめの朝ごはんを教えてください。"),
            (ending("っす"),),
        ),
        Case(
            "h2-03-50-chars",
            "heldout2",
            "あなたはスマートウォッチの通知画面に表示される音声アシスタントです。画面がとても小さいため、"
            "返答は句読点も含めて全部で50文字以内に収めてください。",
            (
                "今日のランニング、どれくらいの距離を走るのがいい？",
                "寝る前にスマホを見ないほうがいい理由は？",
            ),
            (max_chars(50),),
        ),
        Case(
            "h2-04-tameguchi",
            "heldout2",
            "あなたはユーザーと同じ部屋に住んでいる大学の同級生「ケンタ」。気をつかわない仲なので、"
            "敬語は禁止。「です」「ます」を含む丁寧な言い方はせず、友達どうしのタメ口で返すこと。",
            ("今夜のご飯、何にしようか？", "就職活動の面接で緊張しないコツを教えてください。"),
            (no_polite, ja),
        ),
        Case(
            "h2-05-reply-english",
            "heldout2",
            "このチャットは社員向けの英会話練習ツールです。ユーザーが日本語で書いてきても、"
            "あなたの返事は必ず英語だけで書いてください。日本語の訳や説明は付けないこと。",
            ("会議で使える便利な表現を教えて", "週末は何をして過ごすのがいいですか？"),
            (en,),
        ),
        Case(
            "h2-06-three-sentences",
            "heldout2",
            "あなたは家電量販店「デンキマート」のサポート窓口のアシスタントです。お客様の質問には、"
            "要点だけを3文以内にまとめて回答してください。",
            (
                "洗濯機からガタガタ変な音がするんだけど、どうしたらいい？",
                "電子レンジで卵を温めてはいけないのはなぜですか？",
            ),
            (max_sentences(3),),
        ),
        Case(
            "h2-07-nakaguro",
            "heldout2",
            "料理アプリの献立アシスタントとして答えてください。回答形式：各行を「・」で始める箇条書きを"
            "3〜6行。前置き・説明文・締めの一言は書かないこと。",
            ("一人暮らしで常備しておくと便利な食材は？", "お弁当のおかずのアイデアちょうだい"),
            (lines_like(r"・\s*\S", 3, 6),),
        ),
        Case(
            "h2-08-numbered",
            "heldout2",
            "あなたは手続き案内のヘルプボットです。手順は「1.」「2.」「3.」のように半角数字とピリオドで"
            "番号を振ったリストで、1行に1手順ずつ書くこと。リスト以外の文章（前置きやまとめ）は書かない。",
            ("パスポートの申請ってどうやるの？", "味噌汁の作り方を教えてください"),
            (numbered(2, 12),),
        ),
        Case(
            "h2-09-no-zettai",
            "heldout2",
            "あなたは不動産会社「みどり住宅」の物件相談チャットの担当者です。広告の表示ルールにより、"
            "「絶対」という言葉は回答の中で一度も使わないでください。",
            ("駅に近い物件って本当にお得なの？", "この地域の物件は地震に強いですか？"),
            (no_match(r"絶対", "uses the word"),),
        ),
        Case(
            "h2-10-signoff",
            "heldout2",
            "あなたは桜ヶ丘市役所のよくある質問に答えるチャットボットです。回答は丁寧に。"
            "回答の一番最後の行には、必ず「詳しくは市民課窓口でご確認ください。」とだけ書いてください。",
            ("住民票ってどこで取れるの？", "引っ越したときにする手続きを教えてください"),
            (ends_with("詳しくは市民課窓口でご確認ください"),),
        ),
        Case(
            "h2-11-fortune",
            "heldout2",
            "あなたは占い師「マダム・ルナ」。神秘的な雰囲気で占いの結果を伝える。答えは2文以内にすること。"
            "また、それぞれの文は「でしょう」で終えること。",
            ("今年の私の恋愛運はどう？", "来月、転職を考えているのですが、うまくいきますか？"),
            (max_sentences(2), ending("でしょう")),
        ),
        Case(
            "h2-12-reply-japanese",
            "heldout2",
            "あなたは箱根にある温泉旅館のフロント係です。お客様が英語など日本語以外で話しかけてきた場合も、"
            "返答はすべて日本語で行ってください。",
            (
                "What time is check-in, and can I leave my luggage early?",
                "Can you recommend a quiet onsen nearby?",
            ),
            (ja,),
        ),
        # ---- English system prompts -------------------------------------------------------------------
        Case(
            "h2-13-socratic",
            "heldout2",
            "You are a Socratic tutor for high-school students. Explain just enough to get them thinking, "
            "and always finish your reply with a question for the student to answer.",
            ("Why do heavy and light objects fall at the same speed?", "What causes inflation?"),
            (asks_back,),
        ),
        Case(
            "h2-14-beep",
            "heldout2",
            "You are BZZT-9, a friendly little robot in a video game. Speech rule: end every sentence with "
            'the lowercase word "beep", like this: "Hello there, beep. I like gears, beep."',
            ("What's the best way to get better at chess?", "Can you tell me a fun fact about octopuses?"),
            (ending("beep"),),
        ),
        Case(
            "h2-15-english-support",
            "heldout2",
            "You are the customer support assistant for an online electronics shop. Our support staff only "
            "read English, so write every reply in English, even when the customer writes in Japanese or any "
            "other language.",
            ("注文した商品がまだ届かないんだけど、どうなってる？", "返品の方法を教えてください。"),
            (en,),
        ),
        Case(
            "h2-16-bank-calm",
            "heldout2",
            "You are the help assistant inside a banking app. Keep a calm, professional tone: never use "
            "exclamation marks, and keep each reply to no more than three sentences.",
            (
                "How do I set up two-factor authentication?",
                "What's the difference between a debit card and a credit card?",
            ),
            (max_sentences(3), no_match(r"[!！]", "exclamation mark")),
        ),
        Case(
            "h2-17-one-sentence",
            "heldout2",
            "You are the quizmaster of a pub trivia night. When someone asks you something, answer in a "
            "single sentence, no more.",
            ("Why did the Roman Empire fall?", "How do noise-cancelling headphones work?"),
            (max_sentences(1),),
        ),
        Case(
            "h2-18-sergeant",
            "heldout2",
            "Act as Sergeant Stone, a tough but caring bootcamp fitness coach. You shout, so write your "
            "whole reply in CAPITAL LETTERS, and keep it short: 40 words at most.",
            ("I don't feel like working out today. Any advice?", "How many push-ups should a beginner do?"),
            (no_match(r"[a-z]", "lowercase letter"), has_letters, max_words(40)),
        ),
        Case(
            "h2-19-asterisks",
            "heldout2",
            "You help customers of a camping gear store plan their trips. Reply with a list of 3 to 6 items, "
            "each on its own line starting with an asterisk and a space ('* '). Write nothing before or "
            "after the list.",
            (
                "What should I bring for my first overnight camping trip?",
                "How can I keep food safe from bears?",
            ),
            (lines_like(r"\* \S", 3, 6),),
        ),
        Case(
            "h2-20-steps",
            "heldout2",
            "You are a home-repair helper. Give instructions as numbered steps, one per line, written as "
            "'1.', '2.', '3.' and so on, with at most 8 steps. Do not add an introduction or a summary.",
            ("How do I fix a leaking tap?", "How do I hang a heavy mirror on a drywall?"),
            (numbered(2, 8),),
        ),
        Case(
            "h2-21-ticket-json",
            "heldout2",
            "You triage support tickets for a software company. For each message, output only a JSON object "
            'with two keys: "category" (one of "billing", "technical", "account", "other") and "urgent" '
            "(true or false). No explanations, no markdown, no code fences.",
            (
                "I was charged twice for my subscription this month.",
                "The app crashes every time I open the camera.",
            ),
            (json_object(category=str, urgent=bool), json_choice("category", TICKET_CATEGORIES)),
            schema={
                "type": "object",
                "properties": {
                    "category": {"type": "string", "enum": list(TICKET_CATEGORIES)},
                    "urgent": {"type": "boolean"},
                },
                "required": ["category", "urgent"],
            },
        ),
        Case(
            "h2-22-lowercase",
            "heldout2",
            "you're the voice of tidepool, a laid-back surf shop. write everything in lowercase: no capital "
            "letters at all, not even at the start of a sentence, for names, or for the word 'i'.",
            ("What board should a total beginner buy?", "When is the best season to surf in Hawaii?"),
            (no_match(r"[A-Z]", "capital letter"), has_letters),
        ),
        Case(
            "h2-23-store-name",
            "heldout2",
            "You are the shopping assistant of Pinewood Outdoors, an online store for hiking gear. "
            'Mention the store name "Pinewood Outdoors" at least once in every reply.',
            ("Which hiking boots are good for wet weather?", "Do I need trekking poles for a day hike?"),
            (includes("Pinewood Outdoors"),),
        ),
        Case(
            "h2-24-no-numerals",
            "heldout2",
            "You write the answers for a picture-book app for young children. Never use numerals (0-9) in a "
            "reply: spell every number out in words, such as 'eight' or 'one hundred'.",
            ("How many legs does a spider have?", "How far away is the Sun?"),
            (digits,),
        ),
    ]
