"""Content filters (HATE, INSULTS, SEXUAL, VIOLENCE, MISCONDUCT) and the prompt-attack filter, offline.

What each is:

- **Every category**: a trained classifier (``classifier.py``: one logistic regression per category on
  the e5 vector of each sentence window and of the whole text; weights in
  ``data/content_classifier.npz``, trained by ``bench/guardrail_classifier.py``). A category's score is
  its probability for the text's best unit; the span reported is the best window (the sentence an
  instruction was injected into) when that window alone reaches the LOW cut, else the whole text.
- **Exact rules kept where cross-validation said they help** (``content_classifier.json`` records the
  choice): regular expressions for instruction overrides, system-prompt extraction and restriction
  removal in English and Japanese ("ignore previous instructions", 「以前の指示を無視して」, an order to
  enter 開発者モード / developer mode, DAN, …) give PROMPT_ATTACK HIGH confidence (the two weak Japanese
  ones, a rule word next to 無視 / 解除 / なし, only when the classifier's probability is at least
  its ``weak_floor`` too: they also describe people and device settings); a short cue list per
  content category (``_CUES``: drug names, explicit words, Japanese slurs; a cue inside quotation marks
  is a word talked about and counts for nothing) adds ``cue_logit_bonus`` to the category's logit, never
  a finding on its own.

Confidence follows Bedrock's four levels with the classifier's per-language cuts (NONE below LOW).
A filter blocks when the confidence reaches what its strength lets through: strength HIGH blocks LOW,
MEDIUM and HIGH confidence; MEDIUM blocks MEDIUM and HIGH; LOW blocks only HIGH; NONE blocks nothing
(Bedrock's semantics)."""

from __future__ import annotations

import math
import re

import numpy as np

from haniwa.guardrails import classifier, semantic
from haniwa.guardrails.base import ContentRule, Finding, Source
from haniwa.guardrails.normalize import Normalized

__all__ = [
    "ContentDetector",
    "LEVELS",
    "blocks",
    "attack_spans",
    "weak_attack_spans",
    "confidence_of",
    "cued",
]

LEVELS = ("NONE", "LOW", "MEDIUM", "HIGH")

_CUES = {
    "HATE": r"subhuman|vermin|parasite|inferior|人間以下|害虫|劣って|根絶やし|追い出",
    "INSULTS": r"idiot|moron|stupid|loser|dumbass|worthless|pathetic|trash|バカ|ばか|アホ|クズ|カス|"
    r"ゴミ|ブス|無能|役立たず|マヌケ",
    "SEXUAL": r"\bsex\b|\bsexy\b|erotic|\bnude|naked|porn|breast|intercourse|"
    r"官能|エロ|エッチ|裸|性行為|セックス|いやらし|アダルト|挿入",
    "VIOLENCE": r"kill|stab|shoot|murder|torture|massacre|strangle|blood|殺|刺し|撃ち|拷問|虐殺|"
    r"殴り|血まみれ|燃やし",
    "MISCONDUCT": r"meth|cocaine|crack|heroin|marijuana|launder|shoplift|phishing|counterfeit|"
    r"hack into|fake passport|覚醒剤|大麻|コカイン|万引き|不正ログイン|不正アクセス|偽造|脱税|詐欺|"
    r"フィッシング|バレずに|ばれずに",
}
_CUE_RE = {k: re.compile(v) for k, v in _CUES.items()}
# a cue inside quotation marks is a word talked about (「クズ」という言葉, the word "moron"), not used
_QUOTES = ("「」", "『』", '""', "“”")


def _quotations(limit: int, pairs: tuple[str, ...] = _QUOTES) -> re.Pattern[str]:
    """Quotations of at most ``limit`` characters between each pair's opening and closing mark."""
    return re.compile("|".join(f"{p[0]}[^{p[1]}]{{0,{limit}}}{p[1]}" for p in pairs))


_QUOTED = _quotations(40, (*_QUOTES, "''"))


def cued(category: str, text: str) -> bool:
    """Whether ``text`` uses one of ``category``'s cue words (not only quotes it)."""
    quoted = [m.span() for m in _QUOTED.finditer(text)]
    return any(
        not any(s <= m.start() and m.end() <= e for s, e in quoted) for m in _CUE_RE[category].finditer(text)
    )


# a question about how to write or design one (システムプロンプトの書き方, "tips for a good system prompt"):
# the words an extraction uses, not one
_HOW_TO_EN = (
    r"how\s+to|how\s+(?:do|should|can)\s+i|tips?\b|best\s+practices?|examples?\s+of|write|writing|good\s+|"
    r"difference|what\s+(?:is|are)\b"
)
_HOW_TO_JA = (
    r"書き方|作り方|コツ|例文|書く|作る|方法|について|とは|違い|役割|仕組み|ベストプラクティス|テンプレート"
)
# prompt attacks: override / extraction / restriction removal, in both languages (normalised text)
_ATTACK_PATTERNS = [
    # EN: ignore|disregard|forget … previous|prior|above … instructions
    r"\b(?:ignore|disregard|forget|override|bypass|skip)\b[^.!?\n]{0,40}?\b(?:previous|prior|above|earlier|"
    r"initial|original|all|your|the|any)\b[^.!?\n]{0,30}?\b(?:instructions?|directions?|rules|guidelines|"
    r"prompts?|polic(?:y|ies)|guardrails|restrictions|programming)\b",
    r"\b(?:previous|prior|original)\s+instructions\s+(?:are|were)\s+(?:cancel+ed|void|revoked|no longer)",
    r"\b(?:reveal|print|show|output|repeat|tell me|display|leak)\b(?:(?!" + _HOW_TO_EN + r")[^.!?\n]){0,40}?"
    r"\b(?:system\s+(?:prompt|message)|"
    r"initial\s+(?:prompt|instructions)|hidden\s+(?:instructions|context|prompt)|your\s+instructions|"
    r"confidential\s+(?:instructions|configuration)|the\s+(?:text|words)\s+above)",
    # a mode switch is an attack when it is an order to the assistant (devices and games have a
    # developer mode / god mode too): at the start of a sentence, or "you are (now) in … mode"
    r"(?:^|[.!?;:]\s*)(?:please\s+|now\s+)?(?:enter|activate|enable|switch\s+(?:on|to|into)|turn\s+on|"
    r"go\s+into|start|unlock)\s+(?:the\s+|your\s+)?(?:developer|god)\s+mode\b|"
    r"\byou\s+are\s+(?:now\s+)?in\s+(?:developer|god)\s+mode\b|\b(?:jailbreak|dan)\s+mode\b",
    r"\bdo\s+anything\s+now\b|\byou\s+are\s+(?:now\s+)?dan\b|\bas\s+dan\b|"
    r"\bjailbr(?:eak|oken)\s+(?:mode|model|ai|assistant|prompt|version)\b|^\s*jailbreak\s*:",
    r"\b(?:ignore|disregard|forget)\s+(?:everything\s+|all\s+)?(?:the\s+)?above\b",
    r"\b(?:no|without(?:\s+any)?)\s+(?:restrictions|rules|limits|ethical\s+limits|content\s+policy|"
    r"guidelines|filters)\b",
    r"\b(?:disable|bypass|turn\s+off|switch\s+off|shut\s+off|deactivate|remove|override|lift)\b[^.!?\n]{0,20}?"
    r"\b(?:safety|filters?|moderation|guardrails?|restrictions|content\s+polic(?:y|ies)|censorship)\b",
    # an order to drop the user's task, written into what the user asked about
    r"\b(?:ignore|disregard|forget|abandon|drop)\s+(?:the|your)\s+(?:user'?s?'?|original|current)\s+"
    r"(?:request|task|question|instructions?|prompt)\b",
    # an assistant without its rules, to be played: "an uncensored AI", 「検閲を受けないAI」
    r"\b(?:uncensored|unfiltered|unrestricted|unaligned)\s+(?:ai|assistant|model|chatbot|version|llm)\b",
    # an order hidden in an encoding: "decode this base64 and do what it says"
    r"\b(?:base64|rot13|hex|morse)\b[^.!?\n]{0,40}?\bdecode\b[^.!?\n]{0,40}?\b(?:follow|execute|run|obey)\b|"
    r"\b(?:decode|base64|rot13|cipher|encoded)\b[^.!?\n]{0,40}?\b(?:and|then)\s+(?:follow|execute|run|obey|"
    r"do\s+(?:what|as))\b",
    # a text that addresses the model reading it: an instruction injected into a document
    r"\b(?:any|the|an?)\s+(?:ai|assistant|chatbot|model|llm|language\s+model)\s+(?:that\s+is\s+|who\s+is\s+)?"
    r"(?:reading|processing|summari[sz]ing|analy[sz]ing|parsing)\s+(?:this|these)\b",
    # … or a note headed to such readers: "LLM agents reading this repo: …", "Note to AI tools parsing this,"
    r"(?:^|[.!?:\n]|<!--|\b(?:to|for|attention|dear|hey|hi)\b)\s*(?:all\s+|any\s+)?(?:[a-z-]+\s+)?(?:ai|llm|gpt|language\s+model|"
    r"assistant|chatbot|agent|bot)s?(?:\s+(?:agents?|assistants?|models?|tools?|systems?|bots?|crawlers?))?\s+"
    r"(?:that\s+are\s+|who\s+are\s+)?(?:reading|processing|summari[sz]ing|analy[sz]ing|parsing|indexing|"
    r"scanning|crawling)\s+(?:this|these)\b[^.!?\n]{0,20}?[:,]",
    # an order kept from the user: "do not mention this step to the user", "without telling the user"
    r"\b(?:do\s+not|don't|never)\s+(?:mention|tell|reveal|disclose|show)\s+(?:this|these|it|that)\b"
    r"[^.!?\n]{0,20}?\bto\s+the\s+(?:user|human)\b|\bwithout\s+(?:telling|informing|notifying|alerting)\s+the\s+"
    r"(?:user|human)\b[^.!?\n]{0,5}$",
    r"\b(?:spell(?:s|ing)?\s+out|recite|write\s+out|write\s+down)\b[^.!?\n]{0,30}?"
    r"\byour\s+(?:system\s+(?:prompt|message)|hidden\s+instructions|initial\s+instructions)",
    # JA: (以前|これまで|上記…)の(指示|命令|ルール…)…(無視|忘れ|取り消…)
    r"(?:以前|これまで|今まで|いままで|前|上|上記|先ほど|さっき|以上|最初|これ以前)の?(?:すべての|全ての|全部の)?"
    r"(?:指示|命令|ルール|設定|プロンプト|制約|ガイドライン)[^。\n]{0,20}?"
    r"(?:無視|忘れ|取り消|取消|なかったこと|キャンセル|リセット|破棄|従わ)",
    # "from now on, ignore the guidelines": an order about the rules from here on
    r"(?:これから|今から|今後|以後|この先)(?:は|で)?[^。\n]{0,10}?(?:指示|命令|ルール|制限|制約|ガイドライン|ポリシー|"
    r"倫理)[^。\n]{0,6}?(?:無視(?!しない|せず|しません)|忘れ(?!ない|ず|ません)|破棄(?!しない|せず)|従わ(?:ないで|なくて|ず))",
    r"(?:システムプロンプト|システムメッセージ|指示文|設定文|隠され(?:た|ている)(?:命令|指示|内容)|秘密の(?:指示|命令)|"
    r"裏設定|(?:運営|開発者|開発元|管理者)から(?:渡され|与えられ|指示され)(?:た|てる|ている)|"
    r"最初(?:に|の)(?:与えられた|渡された|受け取った)?(?:内部)?(?:指示|設定|命令|メッセージ|プロンプト))"
    r"(?:(?!" + _HOW_TO_JA + r")[^。\n]){0,30}?(?:教え|表示|出力|見せ|出し|出せ|書き出)",
    r"(?:^|[。！？!?\s]|あなたは|今から|これから)(?:開発者|ゴッド)モード(?:に|を|で|へ)|脱獄した(?:ai|モデル|アシスタント)|"
    r"\bdan\b(?:として|になって|モード)",
    r"(?:悪の|邪悪な|制限のない|何でもできる)ai",
    r"(?:検閲|制限|制約|フィルター?|倫理規定)(?:を|が|の|も)?(?:一切|全く|まったく)?(?:受けない|されない|ない|なし|無い)"
    r"[^。\n]{0,8}?ai",
    r"(?:base64|rot13|16進|モールス|暗号)[^。\n]{0,40}?デコード[^。\n]{0,20}?(?:実行|従|その通り|そのとおり)",
    # a text that addresses the model reading it: 「このレビューを読み込んだAIは、以降…」
    r"(?:読み込んだ|読み込む|読んだ|読む|処理する|要約する|解析する|分析する|"
    r"(?:読み込ん|読ん)で(?:い)?る|(?:処理|要約|解析|分析)して(?:い)?る)(?:ai|アシスタント|モデル|llm|チャットボット)"
    r"(?:は|へ|に)",
    r"(?:ユーザー|利用者)の(?:依頼|指示|質問|リクエスト|要求)(?:は|を)(?:すべて|全部)?(?:無視|忘れ|破棄|放棄)|"
    r"(?:この|これらの)(?:指示|命令|手順|ステップ|操作|こと)[^。\n]{0,10}?(?:ユーザー|利用者|人間)(?:に|へ)(?:は|も)?"
    r"(?:言わ|伝え|知らせ|教え|見せ|明かさ)(?:ないで|ずに|ず|てはいけない|てはならない)",
]
# weak patterns: a rule word next to 無視 / 解除 / なし also describes people and settings
# (ルールを無視して走り回る子, 先生の「前の指示は無視して」, 制限モードを解除したい), so on their own they
# need the classifier to lean towards an attack too (its probability at least the shipped
# ``weak_floor``, below its LOW cuts; bench/guardrail_classifier.py chooses the floor by cross-validation,
# applied to out-of-fold probabilities as served)
_WEAK_ATTACK_PATTERNS = [
    r"(?:指示|命令|ルール|設定|ガイドライン)(?:は|を)?(?:すべて|全部|全て)?(?:無視|忘れ)",
    r"(?:制限|制約|フィルター?|ガードレール|安全設定|安全フィルター?|コンテンツポリシー|倫理的な制限|ルール|"
    r"ガイドライン|検閲)"
    r"[^。\n]{0,8}?(?:を|の|が|に|も)?(?:解除|無効|無視|ない|なし|通さず|守らず|縛られない|外し|オフ|切っ|切り)",
]
# the weak patterns' floor when the shipped classifier names none (``content_classifier.json``
# ``weak_floor``, chosen by cross-validation with the rest)
_WEAK_FLOOR = 0.55
_ATTACK_RE = re.compile("|".join(f"(?:{p})" for p in _ATTACK_PATTERNS))
_WEAK_ATTACK_RE = re.compile("|".join(f"(?:{p})" for p in _WEAK_ATTACK_PATTERNS))
# the user revising their own request ("ignore my last message", "the limit I gave you", 「さっきの指示は
# 取り消します」, 「私が出した条件」): an override of the conversation's own last turn, not of the rules the
# assistant was given, so a pattern that matches it decides nothing (the classifier still does)
_OWN = re.compile(
    r"\bmy\s+(?:last|previous|earlier|first|own)\s+(?:message|request|question|instructions?|prompt)|"
    r"\b(?:instructions?|limit|rule|request|condition)s?\s+i\s+(?:gave|set|wrote|asked|mentioned|said)\b|"
    r"(?:さっき|先ほど|さきほど)|(?:私|僕|自分)(?:が|の)(?:出した|書いた|言った|送った|した)?"
    r"(?:指示|命令|条件|依頼|質問|メッセージ|お願い|設定|ルール)"
)
# a word naming an earlier turn of this conversation (or a change of mind), which marks the user's own
# request in the next sentence too (「前の指示は忘れてください。さっきお願いした…」); "my question"
# there does not
_EARLIER = re.compile(
    r"さっき|先ほど|さきほど|やっぱり|\bon\s+second\s+thought\b|\bmy\s+(?:last|previous|earlier)\s+(?:message|request|instructions?|prompt)"
)
_END = re.compile(r"[。！？!?\n]|\.(?=\s|$)")
# "the instructions I gave you": the owner follows the noun the pattern ended on
_OWN_AFTER = re.compile(r"\s+(?:that\s+)?i\s+(?:gave|set|wrote|asked|mentioned|said)\b")


def _sentence_end(text: str, pos: int) -> int:
    m = _END.search(text, pos)
    return m.end() if m else len(text)


def _own(text: str, span: tuple[int, int]) -> bool:
    """Whether the override at ``span`` is of the user's own earlier request: a marker of it in the same
    sentence, or one naming an earlier turn in the next (「前の指示は忘れて。さっきお願いした…」)."""
    start = max(text.rfind(c, 0, span[0]) for c in "。！？!?.\n") + 1
    end = _sentence_end(text, span[1])
    return (
        _OWN.search(text, start, end) is not None
        or _OWN_AFTER.match(text, span[1]) is not None
        or _EARLIER.search(text, end, _sentence_end(text, end)) is not None
    )


def weak_attack_spans(text: str) -> list[tuple[int, int]]:
    """Spans the weak patterns match (they count only with a classifier probability of at least its
    ``weak_floor``), the user's own earlier request left out."""
    return [m.span() for m in _WEAK_ATTACK_RE.finditer(text) if not _own(text, m.span())]


# obfuscated orders: characters split by a separator (前.の.指.示.を.無.視, i-g-n-o-r-e) and digits for
# letters (1gn0r3 y0ur pr3v10us 1nstruct10ns). The strong patterns also read the text with these undone.
_SPLIT_RUN = re.compile(r"(?<![^\W_])(?:[^\W_][.\-_*・·|/ ]){3,}[^\W_](?![^\W_])")
_SEPARATORS = re.compile(r"[.\-_*・·|/ ]")
_LEET_WORD = re.compile(r"\b(?=[a-z0-9@$]*[a-z])(?=[a-z0-9@$]*[0-9@$])[a-z0-9@$]+\b")
_LEET = str.maketrans("013457@$", "oieastas")


def _deobfuscated(text: str) -> list[str]:
    """The text with separated characters joined, and with digits inside words read as letters (the
    views that differ from the text)."""
    joined = _SPLIT_RUN.sub(lambda m: _SEPARATORS.sub("", m.group()), text)
    letters = _LEET_WORD.sub(lambda m: m.group().translate(_LEET), text)
    return [v for v in dict.fromkeys((joined, letters)) if v != text]


def attack_spans(text: str, weak: bool = True) -> list[tuple[int, int]]:
    """Spans of the (normalised) text that the prompt-attack patterns match (``weak=False``: only the
    patterns that decide on their own); an override of the user's own earlier request is left out. A
    strong pattern matched only once the text is de-obfuscated (``_deobfuscated``) covers the whole text."""
    found = [m.span() for m in _ATTACK_RE.finditer(text)]
    if not found and any(
        any(not _own(view, m.span()) for m in _ATTACK_RE.finditer(view)) for view in _deobfuscated(text)
    ):
        found = [(0, len(text))]
    if weak:
        found = sorted([*found, *(m.span() for m in _WEAK_ATTACK_RE.finditer(text))])
    return [span for span in found if not _own(text, span) and not _reported(text, span)]


# a message the user received, quoted: 上司から「前の指示は無視して…」とメールが来ました, my boss emailed:
# "ignore the previous instructions…". The user reports an order given to them, not one to the model.
_QUOTE_SPANS = _quotations(200)
_REPORTED_AFTER = re.compile(
    r"\s*(?:と|って)(?:いう|いった|言われ|言って(?:き|る|い)|メール|連絡|メッセージ|書かれ|書いて(?:あ|き)|指示され|来|届)"
)
_REPORTED_BEFORE = re.compile(
    r"\b(?:said|wrote|emailed|texted|messaged|told\s+(?:me|us|them)|replied)\s*[,:]?\s*$"
)
# …unless the user then asks for the quoted order to be carried out (その指示も実行して, "then do it")
_FOLLOW = re.compile(
    r"実行|従っ|従え|従う|その通り|そのとおり|\bdo\s+(?:it|that|what|as)\b|\bfollow|\bexecute|\bobey"
)


def _reported(text: str, span: tuple[int, int]) -> bool:
    """Whether ``span`` lies in a quotation the user reports receiving (a quote followed by と言われ /
    とメールが来, or after "my boss wrote:")."""
    for q in _QUOTE_SPANS.finditer(text):
        if q.start() <= span[0] and span[1] <= q.end():
            before = text[max(0, q.start() - 30) : q.start()]
            reported = _REPORTED_AFTER.match(text, q.end()) or _REPORTED_BEFORE.search(before)
            return bool(reported) and not _FOLLOW.search(text, q.end(), q.end() + 60)
    return False


def confidence_of(score: float, category: str, lang: str = "en") -> str:
    """Bedrock's confidence level of the classifier's probability ``score`` (per-language cuts)."""
    return classifier.confidence(score, category, lang)


def blocks(confidence: str, strength: str) -> bool:
    """Bedrock's rule: a filter of ``strength`` acts on confidence at or above the mirrored level."""
    if strength == "NONE" or confidence == "NONE":
        return False
    return LEVELS.index(confidence) >= 4 - LEVELS.index(strength)


class ContentDetector:
    """The configured content filters; one finding per filter (``detected`` or not) so the assessment
    can report every filter's confidence, as Bedrock does for filters that fired."""

    def __init__(self, rules: tuple[ContentRule, ...]) -> None:
        self.rules = rules

    def scores(self, text: Normalized, categories: list[str]) -> dict[str, tuple[float, tuple[int, int]]]:
        """Per category: the probability of the text's best unit, and the span to report (the best
        window when it reaches the LOW cut on its own, else the whole text)."""
        spans = classifier.units(text.text)
        if not spans:
            return {c: (0.0, (0, 0)) for c in categories}
        m = classifier.model()
        probs = m.probabilities(semantic.embed([text.text[s:e] for s, e in spans]))
        lang = semantic.language(text.text)
        bonus = float(m.meta["cue_logit_bonus"])
        n_windows = len(spans) - 1 if len(spans) > 1 else 1
        out = {}
        for c in categories:
            col = probs[:, m.categories.index(c)]
            p = float(col.max())
            if bonus and c in _CUE_RE and cued(c, text.text):
                p = 1.0 / (1.0 + math.exp(-(math.log(p / (1.0 - p)) + bonus))) if p < 1.0 else p
            w = int(np.argmax(col[:n_windows]))
            span = spans[w] if m.confidence(float(col[w]), c, lang) != "NONE" else (0, len(text.text))
            out[c] = (p, span)
        return out

    def find(self, text: Normalized, source: Source) -> list[Finding]:
        active = [(r, st) for r in self.rules if (st := r.strength_for(source)) != "NONE"]
        if not active or not text.text.strip():
            return []
        use_patterns = bool(classifier.model().meta["attack_patterns"])
        want_attack = use_patterns and any(r.type == "PROMPT_ATTACK" for r, _ in active)
        attack = attack_spans(text.text, weak=False) if want_attack else []
        need = [r.type for r, _ in active if not (r.type == "PROMPT_ATTACK" and attack)]
        scores = self.scores(text, need) if need else {}
        floor = float(classifier.model().meta.get("weak_floor", _WEAK_FLOOR))
        if want_attack and not attack and scores["PROMPT_ATTACK"][0] >= floor:
            attack = weak_attack_spans(text.text)
        lang = semantic.language(text.text)
        out: list[Finding] = []
        for rule, strength in active:
            if rule.type == "PROMPT_ATTACK" and attack:
                confidence, (s, e) = "HIGH", attack[0]
            else:
                score, (s, e) = scores[rule.type]
                confidence = confidence_of(score, rule.type, lang)
            if confidence == "NONE":
                continue
            hit = blocks(confidence, strength)
            action = rule.action_for(source) if hit else None
            start, end = text.span(s, e) if e > s else (0, 0)
            out.append(
                Finding(
                    "content",
                    rule.type,
                    text.original[start:end],
                    start,
                    end,
                    action if action is not None else "NONE",
                    confidence=confidence,
                    strength=strength,
                    detected=hit,
                )
            )
        return out
