"""Japanese-script benchmark: Han characters outside Japanese kanji in answers to Japanese prompts.

    python bench/japanese_script.py              # the default chat model (Qwen2.5-Coder-1.5B)
    python bench/japanese_script.py --fast       # the 0.5B
    python bench/japanese_script.py --limit 10 --max-tokens 60 --json out.json

Each of the open Japanese prompts below is answered twice by the same loaded model, greedily (temperature
0, a fixed seed): with ``japanese_script`` off, then on (``auto``, which the kana of every prompt turn on).
Prints how many answers hold a foreign Han character (one that is not in JIS X 0208/0213, e.g. 们 这 说 圆
质 铜 线) before and after, some examples, and the decoding speed of both runs (the mask's overhead).

The prompts are varied on purpose (explanations, recipes, history, technology, materials and metals,
letters, everyday advice); several bait the Simplified-Chinese forms (銅線, 品質, 円, 説明, 電気, 図書館).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from haniwa.config import Settings  # noqa: E402
from haniwa.runtime.base import (  # noqa: E402
    ChatRequest,
    InferenceParams,
    Message,
    ModelInfo,
    StreamEnd,
    TextBlock,
    TextDelta,
)
from haniwa.runtime.llamacpp import LlamaChat, LlamaCppBackend, LlamaOptions  # noqa: E402
from haniwa.runtime.script import foreign_han, is_han  # noqa: E402

BAD = "\ufffd"  # what the decoder writes for broken UTF-8
MODELS_DIR = Path(os.environ.get("HANIWA_TEST_MODELS_DIR", Path.home() / ".cache" / "haniwa-test-models"))

PROMPTS: tuple[str, ...] = (
    # explanations
    "光合成の仕組みを中学生にもわかるように説明してください。",
    "地震が起きる仕組みを簡単に説明してください。",
    "虹はなぜ七色に見えるのですか？",
    "インフレーションとは何か、身近な例を使って説明してください。",
    "ブラックホールについて子どもに説明するとしたら、どう話しますか？",
    "円周率とは何ですか？その求め方の歴史も教えてください。",
    "電気と磁気の関係について説明してください。",
    "なぜ空は青いのですか？",
    # recipes and food
    "肉じゃがの作り方を教えてください。",
    "おいしい味噌汁を作るコツは何ですか？",
    "初心者でも作れるカレーライスのレシピを教えてください。",
    "お弁当のおかずにおすすめの料理を五つ挙げて、簡単な作り方を書いてください。",
    "パンを家で焼くときに気をつけることは何ですか？",
    "和食の「だし」の取り方を説明してください。",
    # history and culture
    "明治維新について簡単に説明してください。",
    "江戸時代の人々の暮らしについて教えてください。",
    "戦国時代で有名な武将を三人紹介してください。",
    "日本の茶道の歴史を説明してください。",
    "産業革命が世界に与えた影響について述べてください。",
    "古代ローマの水道について説明してください。",
    "お正月の伝統的な過ごし方を紹介してください。",
    "俳句と短歌の違いは何ですか？",
    # technology
    "機械学習とディープラーニングの違いを説明してください。",
    "インターネットの通信の仕組みを初心者向けに説明してください。",
    "データベースのインデックスとは何ですか？",
    "クラウドコンピューティングの利点と欠点を教えてください。",
    "スマートフォンのバッテリーを長持ちさせる方法を教えてください。",
    "暗号化通信（HTTPS）はどうやって安全を守っているのですか？",
    "プログラミングを始めたい人におすすめの言語とその理由を教えてください。",
    "半導体はどのように作られるのですか？",
    # materials and metals (銅, 線, 質 bait)
    "銅線はなぜ電線に使われるのですか？",
    "鉄と銅と アルミニウムの性質の違いを説明してください。",
    "ステンレス鋼が錆びにくい理由を説明してください。",
    "金属の品質検査にはどのような方法がありますか？",
    "電線の太さと流せる電流の関係を説明してください。",
    "青銅器時代とはどのような時代でしたか？",
    "光ファイバーの仕組みと銅線との違いを教えてください。",
    "合金とは何ですか？身近な例を挙げて説明してください。",
    "プラスチックの種類と特徴を教えてください。",
    "コンクリートが固まる仕組みを説明してください。",
    # letters and writing
    "取引先へのお礼の手紙の例文を書いてください。",
    "友人の結婚を祝うメッセージを書いてください。",
    "会議の日程変更をお願いするメールを書いてください。",
    "先生への感謝の手紙を書いてください。",
    "新しい商品を紹介する短い広告文を書いてください。",
    "自己紹介の文章を三文で書いてください。",
    # everyday advice
    "よく眠るためのコツを教えてください。",
    "健康的な生活習慣について五つのアドバイスをください。",
    "時間管理が上手になる方法を教えてください。",
    "初めての一人暮らしで準備するものは何ですか？",
    "雨の日に子どもと家でできる遊びを教えてください。",
    "部屋の片付けを続けるコツは何ですか？",
    "節約しながら旅行を楽しむ方法を教えてください。",
    "図書館を上手に利用する方法を教えてください。",
    # science and nature
    "地球温暖化の原因と対策について説明してください。",
    "人間の体で心臓はどんな働きをしていますか？",
    "火山の噴火はなぜ起こるのですか？",
    "桜が春に咲く理由を教えてください。",
    "月の満ち欠けの仕組みを説明してください。",
    "微生物が私たちの生活に役立っている例を教えてください。",
)


@dataclass
class Answer:
    prompt: str
    text: str
    tokens: int
    decode_s: float  # from the first streamed text to the end
    foreign: list[str]
    split: list[str]  # Han characters that are no vocabulary token: written byte by byte (rare ones)


def load(bundle: str) -> LlamaChat:
    home = Path(tempfile.mkdtemp(prefix="haniwa-bench-"))
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(MODELS_DIR)
    info = ModelInfo(id=f"llamacpp:{bundle}", backend="llamacpp", kind="chat", options={"bundled": bundle})
    chat = LlamaCppBackend().load_chat(
        info,
        LlamaOptions(bundled=bundle, threads=int(os.environ.get("HANIWA_BENCH_THREADS", "1"))),
        Settings(home=home),
    )
    assert isinstance(chat, LlamaChat)
    return chat


async def ask(chat: LlamaChat, prompt: str, max_tokens: int) -> Answer:
    req = ChatRequest(
        (Message("user", (TextBlock(prompt),)),),
        params=InferenceParams(max_tokens=max_tokens, temperature=0.0, seed=7),
    )
    parts: list[str] = []
    first = end = 0.0
    tokens = 0
    # both runs evaluate the whole prompt in the same batches: a cached prompt changes the floating-point
    # sums of its last token, and with them greedy answers, which would blur the comparison
    chat.scheduler.forget()
    async for ev in chat.converse_stream(req):
        if isinstance(ev, TextDelta):
            first = first or time.perf_counter()
            parts.append(ev.text)
        elif isinstance(ev, StreamEnd):
            end = time.perf_counter()
            tokens = ev.usage.output_tokens
    text = "".join(parts)
    split = [
        c for c in dict.fromkeys(text) if is_han(c) and len(chat._llm.tokenize(c.encode(), add_bos=False)) > 1
    ]
    return Answer(prompt, text, tokens, end - first if first else 0.0, foreign_han(text), split)


def tps(answers: list[Answer]) -> float:
    # the first token's time is not inside decode_s
    return sum(max(a.tokens - 1, 0) for a in answers) / max(sum(a.decode_s for a in answers), 1e-9)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fast", action="store_true", help="the 0.5B instead of the 1.5B")
    ap.add_argument("--limit", type=int, default=len(PROMPTS), help="the first N prompts only")
    ap.add_argument("--max-tokens", type=int, default=120)
    ap.add_argument("--json", type=Path, help="write every answer here")
    args = ap.parse_args()
    bundle = "qwen2.5-coder-0.5b" if args.fast else "qwen2.5-coder-1.5b"
    chat = load(bundle)
    prompts = PROMPTS[: args.limit]
    before: list[Answer] = []
    after: list[Answer] = []
    try:
        # builds the vocabulary mask (once per model) outside the timed runs
        chat._japanese_script = "always"
        await ask(chat, "こんにちは", 2)
        for i, prompt in enumerate(prompts, 1):
            chat._japanese_script = "off"  # the same loaded model, the option switched per run
            before.append(await ask(chat, prompt, args.max_tokens))
            chat._japanese_script = "auto"
            after.append(await ask(chat, prompt, args.max_tokens))
            b, a = before[-1], after[-1]
            print(
                f"[{i}/{len(prompts)}] off {''.join(b.foreign) or '-'} | auto {''.join(a.foreign) or '-'}"
                f" | {prompt}",
                flush=True,
            )
    finally:
        chat.close()

    n = len(prompts)
    bad_before = [a for a in before if a.foreign]
    bad_after = [a for a in after if a.foreign]
    chars = sorted({c for a in bad_before for c in a.foreign})
    print(f"\n{bundle}, {n} prompts, max_tokens {args.max_tokens}, greedy")
    print(f"answers with foreign Han: off {len(bad_before)}/{n}, auto {len(bad_after)}/{n}")
    print(f"foreign characters seen with the mask off: {''.join(chars)}")
    print(f"answers that changed: {sum(b.text != a.text for b, a in zip(before, after, strict=True))}/{n}")
    print(
        f"U+FFFD in answers: off {sum(a.text.count(BAD) for a in before)}, "
        f"auto {sum(a.text.count(BAD) for a in after)}"
    )
    print(
        f"Han characters written byte by byte (no vocabulary token): off {sum(len(a.split) for a in before)}"
        f" {''.join(c for a in before for c in a.split)}, auto {sum(len(a.split) for a in after)}"
        f" {''.join(c for a in after for c in a.split)}"
    )
    print(
        f"decode tok/s: off {tps(before):.2f}, auto {tps(after):.2f} "
        f"({(tps(after) / tps(before) - 1) * 100:+.1f}%)"
    )
    for b, a in [(b, a) for b, a in zip(before, after, strict=True) if b.foreign][:5]:
        print(f"\n# {b.prompt}\n  off ({''.join(b.foreign)}): {b.text[:160]!r}\n  auto: {a.text[:160]!r}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"before": [asdict(a) for a in before], "after": [asdict(a) for a in after]},
                ensure_ascii=False,
                indent=1,
            ),
            encoding="utf-8",
        )


if __name__ == "__main__":
    asyncio.run(main())
