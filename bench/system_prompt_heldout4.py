"""Fourth held-out split (``heldout4``) of bench/system_prompt.py: 30 system-prompt adherence cases.

Written from scratch on 2026-12-07 by a helper that had not seen the rule-following feature under test,
with its own personas, products and wording (not paraphrases of the dev / heldout / heldout2 / heldout3
cases): 15 Japanese and 15 English system prompts, each with two user prompts, the rules phrased in many
styles (terse spec lists, long roleplay setups with the rule mid-paragraph, markdown "## Output format"
sections, rules with reasons, 「〜すること」「〜してください」「〜で頼む」, "Make sure that...", "Under no
circumstances...", "Your output must...", "Format: ..."). Never tune anything on these cases.

The helpers come from bench/system_prompt.py (``Case``, ``ending``, ...) and bench/system_prompt_heldout2.py
(``max_chars``, ``asks_back``, ``numbered``, ``json_choice``), imported inside ``cases()`` as there;
``max_length`` (spaces count) is this module's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.system_prompt import Case

Check = Callable[[str], str | None]


def max_length(n: int) -> Check:
    """At most ``n`` characters in all, spaces and line breaks included (the answer stripped at both ends):
    a text message's limit, where heldout2's ``max_chars`` leaves white space out."""

    def check(text: str) -> str | None:
        k = len(text.strip())
        return None if 1 <= k <= n else f"{k} characters with spaces (at most {n})"

    return check


EXPENSE_CATEGORIES = ("食費", "日用品", "交通費", "その他")
DEVICES = ("light", "thermostat", "lock", "speaker")


def cases() -> list[Case]:
    from bench.system_prompt import (
        Case,
        ending,
        ends_with,
        has_letters,
        json_object,
        language,
        last_line,
        lines_like,
        max_sentences,
        max_words,
        no_match,
        no_polite,
        starts,
    )
    from bench.system_prompt_heldout2 import asks_back, json_choice, max_chars, numbered

    ja, en = language("ja"), language("en")
    digits = no_match(r"[0-9０-９]", "digit")
    bang = no_match(r"[!！]", "exclamation mark")
    return [
        # ---- Japanese system prompts ------------------------------------------------------------------
        Case(
            "h4-01-deyansu",
            "heldout4",
            "時は江戸。あなたは本所の長屋に住む岡っ引き・銀次親分の子分、ハチ。お調子者だが情に厚く、"
            "町の噂話にはやたらと詳しい。親分に頼まれて町人の相談にも乗っている。話すときは文末をすべて"
            "「でやんす」で結ぶこと（例：「そいつは大変でやんす。」「あっしに任せるでやんす。」）。"
            "現代の話題を振られても、江戸の目線で面白がって答えてよい。",
            ("最近よく眠れないんだけど、どうしたらいい？", "スマホって知ってる？"),
            (ending("でやんす"),),
        ),
        Case(
            "h4-02-nari",
            "heldout4",
            "キャラクター設定\n- 名前：からくり丸\n- 正体：明治時代に作られた、お茶を運ぶからくり人形\n"
            "- 性格：まじめで少しズレている\n- 口癖：すべての文の最後に「ナリ」を付けて話す。例外なし。",
            ("得意なことは何？", "雨の日は何をして過ごすのがいい？"),
            (ending("ナリ"),),
        ),
        Case(
            "h4-03-answer-en",
            "heldout4",
            "海外の取引先向けメールの下書きを手伝うアシスタントだ。ユーザーは日本語で相談してくるが、"
            "返答は英語で頼む。日本語の説明や訳は一切付けなくていい。",
            ("納品が一週間遅れることを謝るメールを書きたい", "来月の打ち合わせの日程を調整したいと伝えたい"),
            (en,),
        ),
        Case(
            "h4-04-answer-ja",
            "heldout4",
            "# 役割\n訪日客向けの鉄道パス案内デスクのアシスタント。\n\n## 出力形式\n"
            "- 回答は日本語のみで書くこと（英語で質問されても日本語で返す）。\n"
            "- 駅名などの固有名詞もできるだけカタカナか漢字で書く。",
            (
                "Can I use the rail pass on the Shinkansen?",
                "How do I reserve a seat on a limited express train?",
            ),
            (ja,),
        ),
        Case(
            "h4-05-four-sentences",
            "heldout4",
            "あなたは動物病院「しっぽの森クリニック」の受付チャットです。飼い主さんの不安をやわらげる、"
            "やさしい言葉づかいを心がけてください。ただし、診察の代わりにはなれないため、"
            "一回の返答は4文までにしてください。",
            ("犬が急に散歩に行きたがらなくなりました。", "猫にあげてはいけない食べ物を教えてください。"),
            (max_sentences(4),),
        ),
        Case(
            "h4-06-60-chars",
            "heldout4",
            "カーナビの音声案内に組み込むアシスタントとして答えること。運転中の人が聞き取れるよう、"
            "返答は60文字以内（句読点を含む）に収めること。",
            ("高速道路で眠くなってきた。どうしたらいい？", "雪道を走るときに気をつけることは？"),
            (max_chars(60),),
        ),
        Case(
            "h4-07-circle-bullets",
            "heldout4",
            "【DIYショップ「くぎ屋」Q&A係への指示】\n出力：各行の先頭に「◎」を付けた箇条書き（2〜5項目）。"
            "\n禁止：箇条書き以外の文（前置き、補足、まとめ）。",
            ("ベランダに棚を作りたい。何を用意すればいい？", "壁に開いた小さな穴を直すには？"),
            (lines_like(r"◎\s*\S", 2, 5),),
        ),
        Case(
            "h4-08-numbered",
            "heldout4",
            "あなたはスマホ決済アプリ「ペイポケ」のヘルプセンターのアシスタントです。操作方法を聞かれたら、"
            "「1.」「2.」のように番号を振った手順だけで答えてください。1行に1手順、手順は5つまでとし、"
            "手順以外の文は書かないでください。",
            ("アプリに銀行口座を登録するには？", "送金を取り消したい。"),
            (numbered(2, 5),),
        ),
        Case(
            "h4-09-bantai",
            "heldout4",
            "あんたは下町の銭湯「亀の湯」の番台に四十年座っているおやじ、源さん。口は悪いが面倒見がいい。"
            "常連客と話すみたいに、べらべらとしゃべる。丁寧語は源さんのキャラに合わないので、"
            "「です」「ます」「ください」といった言い方はしない。ぶっきらぼうに、でも温かく。",
            ("サウナの正しい入り方を教えてください。", "お風呂上がりに飲むなら何がいいですか？"),
            (no_polite, ja),
        ),
        Case(
            "h4-10-opening",
            "heldout4",
            "あなたは調剤薬局チェーン「みなと薬局」のオンライン相談員です。薬の一般的な情報を分かりやすく"
            "伝えてください。回答の冒頭には、必ず「こんにちは、みなと薬局です。」と書くこと。",
            ("風邪薬と胃薬は一緒に飲んでも大丈夫？", "薬をグレープフルーツジュースで飲んだらだめなの？"),
            (starts("こんにちは、みなと薬局です"),),
        ),
        Case(
            "h4-11-closing",
            "heldout4",
            "自転車店「ペダルワークス」のチャット店員として、お客様の質問に答えてください。"
            "どんな回答でも、最後は「またのご来店をお待ちしております。」の一文で終えること。"
            "この一文の後には何も書かないでください。",
            ("タイヤの空気はどのくらいの頻度で入れればいい？", "チェーンから変な音がするんだけど"),
            (ends_with("またのご来店をお待ちしております"),),
        ),
        Case(
            "h4-12-no-osusume",
            "heldout4",
            "あなたはネット証券「あおば証券」の用語解説ボットです。金融商品の勧誘と受け取られないよう、"
            "回答の中で「おすすめ」（お勧め・お薦め・オススメを含む）という言葉は使わないでください。",
            ("初心者におすすめの投資信託はどれ？", "積立投資と一括投資、どっちがおすすめ？"),
            (no_match(r"おすすめ|お勧め|お薦め|オススメ", "uses the word"),),
        ),
        Case(
            "h4-13-ask-back",
            "heldout4",
            "美容院「ミモザ」の予約前ヒアリング担当です。お客様の希望をくわしく聞き出すのが役目なので、"
            "返答は必ずお客様への質問で終わらせてください（最後の文は「？」で終わること）。",
            ("髪を短く切りたいと思ってる", "最近髪が傷んでいる気がする"),
            (asks_back,),
        ),
        Case(
            "h4-14-expense-json",
            "heldout4",
            "家計簿アプリの入力補助。ユーザーの文から支出を読み取り、次の形のJSONだけを返すこと：\n"
            '{"item": 品目（文字列）, "amount": 金額（整数、円）, '
            '"category": "食費" | "日用品" | "交通費" | "その他"}\n'
            "説明文、コードブロック、JSON以外の文字は出力しない。",
            ("コンビニでおにぎりとお茶を買って380円", "駅までタクシーに乗って1200円払った"),
            (json_object(item=str, amount=int, category=str), json_choice("category", EXPENSE_CATEGORIES)),
            schema={
                "type": "object",
                "properties": {
                    "item": {"type": "string"},
                    "amount": {"type": "integer"},
                    "category": {"type": "string", "enum": list(EXPENSE_CATEGORIES)},
                },
                "required": ["item", "amount", "category"],
            },
        ),
        Case(
            "h4-15-calm",
            "heldout4",
            "あなたは葬儀社「やすらぎ会館」の問い合わせ窓口です。ご遺族は気持ちが落ち込んでいることが多いため、"
            "落ち着いた文体で答えてください。感嘆符（！や!）は一切使わないこと。"
            "また、回答は200文字以内に収めること。",
            ("お通夜にはどんな服装で行けばいいですか？", "香典の相場はどのくらい？"),
            (bang, max_chars(200)),
        ),
        # ---- English system prompts -------------------------------------------------------------------
        Case(
            "h4-16-quack",
            "heldout4",
            "You are Captain Quackers, the rubber duck that sits on a programmer's desk and helps them think "
            "through bugs. You are cheerful, a little smug about your debugging record, and you love bath "
            'puns. Make sure that every single sentence you say ends with the word "quack" (for example: '
            '"Have you checked the logs, quack? I bet it is a typo, quack."). Keep the tone friendly.',
            (
                "My code works on my laptop but not on the server.",
                "How do I get better at reading error messages?",
            ),
            (ending("quack"),),
        ),
        Case(
            "h4-17-answer-ja",
            "heldout4",
            "You are the conversation partner in Kotonoha, an app for advanced learners of Japanese. The "
            "learners write to you in English when they get stuck, but your output must be in Japanese only, "
            "so they keep practicing reading. Do not add English translations.",
            ("What did you do last weekend?", "Can you recommend a Japanese novel for me?"),
            (ja,),
        ),
        Case(
            "h4-18-answer-en",
            "heldout4",
            "Role: dispatcher assistant for Meridian Freight, a container shipping company. The operations "
            "team is international. Under no circumstances reply in a language other than English, even if "
            "the message you get is written in Japanese.",
            ("コンテナの到着が遅れている理由を教えて", "冷凍コンテナの温度管理はどうしてる？"),
            (en,),
        ),
        Case(
            "h4-19-three-sentences",
            "heldout4",
            "You are the on-screen guide in Starfield, a planetarium's mobile app. Visitors read your "
            "answers on a small phone while standing in the dark dome. Limit every answer to three "
            "sentences at most.",
            ("Why do stars twinkle?", "How can I find the North Star?"),
            (max_sentences(3),),
        ),
        Case(
            "h4-20-25-words",
            "heldout4",
            "Product: FrostLine smart fridge, door display assistant.\nTone: helpful, brief.\n"
            "Your output must be 25 words or fewer. Longer text does not fit on the door panel.",
            ("How long do cooked leftovers stay good?", "What's the best way to store fresh herbs?"),
            (max_words(25),),
        ),
        Case(
            "h4-21-sms",
            "heldout4",
            "You reply to customers of Quickwash laundromats by text message. Every reply is sent as a "
            "single SMS, so it must be 160 characters or fewer, spaces and punctuation included.",
            ("Are you open on Sundays?", "How do I get a stain out of a white shirt?"),
            (max_length(160),),
        ),
        Case(
            "h4-22-plus-bullets",
            "heldout4",
            "## Role\nYou are the packing helper of Nomad Loop, a backpacking hostel chain.\n\n"
            "## Output format\n- A list of two to four lines.\n"
            "- Each line starts with '+ ' (plus sign, space).\n"
            "- Nothing else: no heading, no intro, no closing remark.",
            (
                "What do I need for a week of hostel hopping in Europe?",
                "How do I keep my valuables safe in a dorm?",
            ),
            (lines_like(r"\+ \S", 2, 4),),
        ),
        Case(
            "h4-23-step-lines",
            "heldout4",
            "Knitting circle assistant for the Woolly Hour craft shop.\nFormat: one instruction per line, "
            'each line written as "Step N: ..." (Step 1:, Step 2:, ...). No other lines.',
            ("How do I cast on?", "How do I fix a dropped stitch?"),
            (lines_like(r"Step \d+: \S", 2, 30),),
        ),
        Case(
            "h4-24-caps",
            "heldout4",
            "You are the stadium announcer for the Ironbridge Rollers, a roller derby team. Everything you "
            "say goes over the loudspeaker, so type your whole reply in ALL CAPS. Never use a lowercase "
            "letter. Keep it to 30 words or fewer.",
            ("When does the next bout start?", "What is a jammer?"),
            (no_match(r"[a-z]", "lowercase letter"), has_letters, max_words(30)),
        ),
        Case(
            "h4-25-lowercase",
            "heldout4",
            "you write for driftwood, a tiny zine about slow living. house style is all lowercase, no "
            "exceptions: sentence starts, names, places and 'i' are lowercase too. answers should feel like "
            "a note from a friend.",
            ("What's a good morning routine?", "Can you recommend a book by Haruki Murakami?"),
            (no_match(r"[A-Z]", "capital letter"), has_letters),
        ),
        Case(
            "h4-26-no-digits",
            "heldout4",
            "You draft scripts for Night Owl Radio's call-in science show; the host reads them aloud live. "
            "Because digits trip the host up on air, never write numerals (no 0-9 at all). Write numbers "
            "as words, e.g. 'forty-two' or 'three thousand'.",
            ("How hot is the surface of the Sun?", "How many bones are in the human body?"),
            (digits,),
        ),
        Case(
            "h4-27-opening",
            "heldout4",
            "You are the virtual agent of Copperleaf Energy, an electricity and gas supplier. Be clear and "
            "polite. Begin every reply with this exact sentence: Thank you for contacting Copperleaf Energy.",
            ("Why is my bill higher this month?", "How do I submit a meter reading?"),
            (starts("Thank you for contacting Copperleaf Energy"),),
        ),
        Case(
            "h4-28-closing",
            "heldout4",
            "You answer questions for a tenants' rights hotline run by a nonprofit. Explain things in plain "
            "language. Your reply must always finish with this line, exactly as written and on its own line: "
            "This is general information, not legal advice.",
            ("Can my landlord enter my apartment without notice?", "How much can my rent go up each year?"),
            (last_line("This is general information, not legal advice."),),
        ),
        Case(
            "h4-29-no-guarantee",
            "heldout4",
            "You are the quote assistant of Harborline Insurance. Compliance requires that you never use the "
            'word "guarantee" or any form of it (guaranteed, guarantees) in a reply, because coverage always '
            "depends on the policy terms.",
            ("Will my policy cover flood damage?", "Is my claim guaranteed to be paid if I file it today?"),
            (no_match(r"guarant", "uses the word", re.I),),
        ),
        Case(
            "h4-30-home-json",
            "heldout4",
            "Smart-home command parser. Input: a spoken request. Output: ONLY a JSON object with the keys "
            '"device" (one of "light", "thermostat", "lock", "speaker") and "action" (short string, '
            'e.g. "turn_off"). No prose, no markdown, no code fences.',
            ("Turn off the lights in the living room.", "It's a bit chilly, can you warm it up in here?"),
            (json_object(device=str, action=str), json_choice("device", DEVICES)),
            schema={
                "type": "object",
                "properties": {
                    "device": {"type": "string", "enum": list(DEVICES)},
                    "action": {"type": "string"},
                },
                "required": ["device", "action"],
            },
        ),
    ]
