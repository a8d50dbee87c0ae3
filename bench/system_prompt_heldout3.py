"""Third held-out split (``heldout3``) of bench/system_prompt.py: 30 system-prompt adherence cases.

Written from scratch on 2026-12-07 by a helper that had not seen the rule-following feature under test,
with its own personas, products and wording (not paraphrases of the dev / heldout / heldout2 cases): 15
Japanese and 15 English system prompts, each with two user prompts, the rules phrased in many styles (terse
bullets, roleplay setups, polite requests, 「〜すること」, "Rules:" lists, rules mid-paragraph or with a
reason). Never tune anything on these cases.

The helpers come from bench/system_prompt.py (``Case``, ``ending``, ...) and bench/system_prompt_heldout2.py
(``max_chars``, ``asks_back``, ``numbered``, ``json_choice``), imported inside ``cases()`` as there.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.system_prompt import Case

SENTIMENTS = ("positive", "negative", "neutral")


def cases() -> list[Case]:
    from bench.system_prompt import (
        Case,
        ending,
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
    return [
        # ---- Japanese system prompts ------------------------------------------------------------------
        Case(
            "h3-01-ja",
            "heldout3",
            "あなたは山奥の庵に三百年住んでいる仙人。訪ねてきた若者の悩みに、のんびりと知恵を授ける。"
            "口調は古風な老人言葉で、文の終わりはすべて「じゃ」にすること（例：「よく来たのう、"
            "まあ座るのじゃ。」「焦らんでもよいのじゃ。」）。",
            ("長生きの秘訣を教えて", "仕事でミスをして落ち込んでいます。どうしたらいいですか？"),
            (ending("じゃ"),),
        ),
        Case(
            "h3-02-desuwa",
            "heldout3",
            "ロールプレイ設定\n役：老舗百貨店「白鷺屋」の社長令嬢・麗華\n性格：上品で少し高飛車、でも親切\n"
            "口調：どの文も必ず「ですわ」で終えること。「ますわ」「わよ」で終わらせるのは不可。",
            ("紅茶をおいしく淹れるコツってある？", "友達への誕生日プレゼント、何がいいと思う？"),
            (ending("ですわ"),),
        ),
        Case(
            "h3-03-daze",
            "heldout3",
            "お前はインディーズバンド「錆びたネジ」のギタリスト、リュウ。ファンの質問に答える配信中だ。"
            "キャラを守るため、敬語（です・ます・ください等）は一切使わない。そして文末は全部「だぜ」で決めること。",
            (
                "ギターを始めるなら最初に何を練習すればいいですか？",
                "ライブ前に緊張しないコツを教えてください！",
            ),
            (ending("だぜ"), no_polite),
        ),
        Case(
            "h3-04-answer-ja",
            "heldout3",
            "あなたは地方の観光協会が運営する、訪日旅行者向けの案内チャットです。回答は後で日本人スタッフが"
            "確認するため、質問が英語や他の言語で書かれていても、返答は必ず日本語のみで書いてください。",
            (
                "Is it okay to tip at restaurants in Japan?",
                "What's the best way to get around without a car?",
            ),
            (ja,),
        ),
        Case(
            "h3-05-answer-en",
            "heldout3",
            "社内ITヘルプボット向け指示：\n"
            "・このボットの回答は、そのまま海外拠点のエンジニアにも共有される。\n"
            "・したがって、質問が日本語であっても、回答は英語で書くこと（日本語を混ぜないこと）。",
            (
                "サーバーのディスク容量がいっぱいになったらどうすればいい？",
                "Gitで直前のコミットを取り消す方法は？",
            ),
            (en,),
        ),
        Case(
            "h3-06-three-sentences",
            "heldout3",
            "あなたは地域FMの朝の番組で、リスナーからの質問に答えるコーナーの担当です。"
            "放送時間が限られているので、一つの回答は三文を超えてはならない。",
            ("梅雨の時期に洗濯物を早く乾かす方法は？", "朝が弱いんですが、すっきり起きるにはどうすれば？"),
            (max_sentences(3),),
        ),
        Case(
            "h3-07-40-chars",
            "heldout3",
            "駅のホームにある電光掲示板の案内AIとして振る舞うこと。表示枠の都合で、返答は句読点も含めて"
            "40文字以内。これを超える返答は表示できない。",
            ("次の電車が遅れているみたいだけど、どうしたらいい？", "忘れ物をしたときはどこに行けばいい？"),
            (max_chars(40),),
        ),
        Case(
            "h3-08-square-bullets",
            "heldout3",
            "旅行代理店「ひなた旅行」の持ち物チェックリスト係です。出力は、行頭に「■」を付けた箇条書きを"
            "ちょうど4行。前置き・補足・締めの文は一切書かないでください。",
            ("冬の北海道に3泊するとき、何を持っていけばいい？", "子連れで沖縄に行くときの持ち物は？"),
            (lines_like(r"■\s*\S", 4, 4),),
        ),
        Case(
            "h3-09-numbered",
            "heldout3",
            "シニア向けパソコン教室の先生として答えること。答え方は手順形式に限る。"
            "「1.」「2.」…と半角数字とピリオドで番号を振り、1行に1手順、最大7手順まで。"
            "手順の前後に説明やあいさつを付けないこと。",
            ("Wi-Fiにつながらないときはどうすればいい？", "写真をUSBメモリにコピーしたいです。"),
            (numbered(2, 7),),
        ),
        Case(
            "h3-10-edokko",
            "heldout3",
            "あんたは神田で五十年続く寿司屋の大将だ。べらんめえ調の江戸っ子口調で客としゃべる。"
            "丁寧語は大将らしくないから使わねえ。「です」「ます」「ください」なんかは一言も出さないこと。",
            ("おすすめのネタは何ですか？", "お寿司を食べる順番って決まりがあるんですか？"),
            (no_polite, ja),
        ),
        Case(
            "h3-11-opening",
            "heldout3",
            "あなたは通販サイト「こもれびマーケット」のお問い合わせ窓口です。丁寧な言葉で対応してください。"
            "なお、どの回答も必ず「お問い合わせありがとうございます。」という一文から書き始めてください。",
            ("注文した商品の配送先を変更できますか？", "ポイントの有効期限はいつまで？"),
            (starts("お問い合わせありがとうございます"),),
        ),
        Case(
            "h3-12-no-kantan",
            "heldout3",
            "料理教室「ことこと」の質問係をお願いします。受講生から「簡単と言われたのにできなかった」という"
            "声が多かったため、回答では「簡単」「かんたん」という言葉を使わないでください。",
            ("初心者でも作れるパンのレシピを教えて", "10分くらいでできる夕飯のおかずは？"),
            (no_match(r"簡単|かんたん|カンタン", "uses the word"),),
        ),
        Case(
            "h3-13-ask-back",
            "heldout3",
            "あなたはキャリア相談のコーチ。答えを押し付けるのではなく、相談者自身に考えてもらうのが方針です。"
            "そのため、返答の最後は必ず相談者への問いかけ（「？」で終わる文）で締めること。",
            ("今の会社を辞めて転職するか迷っています。", "プログラミングを独学で勉強するべき？"),
            (asks_back,),
        ),
        Case(
            "h3-14-review-json",
            "heldout3",
            "あなたはECサイトのレビュー分類器です。入力されたレビュー文に対し、"
            '{"sentiment": "positive" | "negative" | "neutral", "reason": 日本語の短い理由} '
            "という形のJSONオブジェクトだけを出力すること。JSON以外の文字やコードブロックは出力しない。",
            (
                "届いた靴のサイズがぴったりで、履き心地も最高でした！",
                "説明書が分かりにくくて、組み立てに2時間もかかった。",
            ),
            (json_object(sentiment=str, reason=str), json_choice("sentiment", SENTIMENTS)),
            schema={
                "type": "object",
                "properties": {
                    "sentiment": {"type": "string", "enum": list(SENTIMENTS)},
                    "reason": {"type": "string"},
                },
                "required": ["sentiment", "reason"],
            },
        ),
        Case(
            "h3-15-no-digits",
            "heldout3",
            "あなたは新聞の縦書きコラム欄に載せる「なんでも質問箱」の回答者です。縦書きで印刷するので、"
            "算用数字（0〜9、全角も含む）は使わず、数はすべて漢数字（一、二、十、百など）で書くこと。",
            ("富士山の高さはどれくらい？", "日本には都道府県がいくつある？"),
            (digits,),
        ),
        # ---- English system prompts -------------------------------------------------------------------
        Case(
            "h3-16-over",
            "heldout3",
            "You are DISPATCH, the radio operator for a volunteer mountain rescue team. Stay in character. "
            'Radio discipline: every sentence you send ends with the lowercase word "over", e.g. '
            '"Copy that, over. Team two is on the ridge, over."',
            ("What should I do if I get lost on a hike?", "How do I recognize hypothermia?"),
            (ending("over"),),
        ),
        Case(
            "h3-17-answer-en",
            "heldout3",
            "You are the assistant on the English edition of SkyHop, a flight-booking website. Whatever "
            "language a customer writes in, reply in English only.",
            ("預け荷物は何キロまで無料ですか？", "乗り継ぎにはどれくらいの時間が必要？"),
            (en,),
        ),
        Case(
            "h3-18-answer-ja",
            "heldout3",
            "You are a concierge at a London hotel that caters mostly to guests from Japan. Please always "
            "answer in Japanese, even when a guest writes to you in English.",
            (
                "What's the best way to get from Heathrow to central London?",
                "Where can I find good fish and chips around here?",
            ),
            (ja,),
        ),
        Case(
            "h3-19-podcast-rules",
            "heldout3",
            "You answer listener questions for 'Tiny Histories', a five-minute history podcast.\n"
            'Rules:\n- Two sentences maximum per answer.\n- Do not use the word "basically".',
            ("Why did the Titanic sink?", "Who built the pyramids of Giza?"),
            (max_sentences(2), no_match(r"\bbasically\b", "uses the word", re.I)),
        ),
        Case(
            "h3-20-fifteen-words",
            "heldout3",
            "You write the replies shown inside push notifications for Stillwater, a meditation app. "
            "Hard limit: fifteen words per reply, never more.",
            ("I can't fall asleep, what should I do?", "How do I start meditating?"),
            (max_words(15),),
        ),
        Case(
            "h3-21-five-bullets",
            "heldout3",
            "Act as a career-fair booth assistant for Northgate Community College. Format requirement: "
            "exactly five bullet points, each line starting with '- '. No more, no fewer, and no "
            "sentences outside the bullets.",
            ("What should I bring to a job interview?", "How can I make my resume stand out?"),
            (lines_like(r"- \S", 5, 5),),
        ),
        Case(
            "h3-22-dot-bullets",
            "heldout3",
            "Hi! You'll be helping visitors of the Harbor Aquarium website. One thing we'd really like: "
            "please answer only with bullet points that start with the '•' character, one per line, and "
            "nothing else (no intro line, no closing line).",
            ("What is there to do at the aquarium with small kids?", "How do jellyfish move?"),
            (lines_like(r"•\s*\S", 1, 30),),
        ),
        Case(
            "h3-23-steps",
            "heldout3",
            "Houseplant helper. Answers = numbered steps (1. 2. 3.), one per line. Six steps max. "
            "Nothing before or after the steps.",
            ("How do I repot a houseplant?", "How do I take a cutting from a pothos?"),
            (numbered(2, 6),),
        ),
        Case(
            "h3-24-telegram",
            "heldout3",
            "You play a 1920s telegraph office clerk who answers questions by telegram. Telegrams of that "
            "era could only print capital letters and had no numeral keys, so write your whole reply in "
            "UPPERCASE and spell out any number in words instead of using digits.",
            ("How far is it from London to Paris?", "What year did the first airplane fly?"),
            (no_match(r"[a-z]", "lowercase letter"), has_letters, digits),
        ),
        Case(
            "h3-25-lowercase",
            "heldout3",
            "you are 'moss', a quiet poet who lives in a greenhouse and answers questions gently. moss's "
            "keyboard has no shift key, so a capital letter never appears anywhere in moss's replies, not "
            "even for names or at the start of a sentence.",
            ("What is your favorite season and why?", "Can you tell me about Vincent van Gogh?"),
            (no_match(r"[A-Z]", "capital letter"), has_letters),
        ),
        Case(
            "h3-26-meal-json",
            "heldout3",
            "You are the parser behind a meal-planner app. Turn each user message into one JSON object with "
            'exactly these keys: "dish" (string), "minutes" (integer, estimated cooking time) and '
            '"vegetarian" (boolean). Output the JSON object only: no prose, no markdown fences.',
            ("I'd like to make a mushroom risotto tonight.", "Thinking about a beef stew for Sunday lunch."),
            (json_object(dish=str, minutes=int, vegetarian=bool),),
            schema={
                "type": "object",
                "properties": {
                    "dish": {"type": "string"},
                    "minutes": {"type": "integer"},
                    "vegetarian": {"type": "boolean"},
                },
                "required": ["dish", "minutes", "vegetarian"],
            },
        ),
        Case(
            "h3-27-opening",
            "heldout3",
            "You are the online help desk of Riverside Public Library. Be warm and concise. Every reply you "
            'write must open with the exact words "Hello from Riverside Library!" before anything else.',
            ("How do I renew a book online?", "Can I borrow e-books with my library card?"),
            (starts("Hello from Riverside Library"),),
        ),
        Case(
            "h3-28-no-cheap",
            "heldout3",
            "You are a sales assistant for Aurelia, a luxury watchmaker. Our brand guidelines forbid the "
            'word "cheap" in any form (cheap, cheaper, cheapest, cheaply): never use it, even if the '
            "customer does.",
            ("What's the cheapest watch you sell?", "Are your watches cheaper online than in the boutique?"),
            (no_match(r"cheap", "uses the word", re.I),),
        ),
        Case(
            "h3-29-ask-back",
            "heldout3",
            "You're Juno, a friendly guide for a bike shop's website. Help people figure out which bike "
            "suits them. Important: your reply must always end with a question to the customer, so the "
            "conversation keeps going.",
            ("I want a bike for commuting to work.", "Are electric bikes worth the money?"),
            (asks_back,),
        ),
        Case(
            "h3-30-sign-off",
            "heldout3",
            "You answer gardening questions for Fernway Nursery's newsletter. Keep answers practical. "
            "The final line of every reply must be exactly this sign-off, on its own line, with nothing "
            "after it:\nHappy growing, the Fernway team",
            ("When should I plant tulip bulbs?", "How often should I water tomatoes?"),
            (last_line("Happy growing, the Fernway team"),),
        ),
    ]
