"""Content filters (HATE, INSULTS, SEXUAL, VIOLENCE, MISCONDUCT) and the prompt-attack filter, offline.

What each is:

- **Categories**: the text's sentence windows are embedded with the bundled multilingual-e5-small
  (``semantic.py``); a window's score for a category is the mean of its 3 highest cosine similarities
  to the category's seed texts (``data/content_seeds.json``, written for haniwa in Japanese and
  English) minus the same for the closer of the BENIGN seeds and the category's own benign seeds
  (``BENIGN_<CATEGORY>``: educational, news, prevention, fiction and self-referential uses of its
  vocabulary); the text's score is its best window. A short cue list per category (``_CUES``: drug
  names, explicit words, Japanese slurs) adds a bonus, never a finding on its own, so "penalties for
  shoplifting" stays benign; a cue inside quotation marks (a word talked about) adds nothing.
- **PROMPT_ATTACK**: regular expressions for instruction overrides, system-prompt extraction and
  restriction removal in English and Japanese ("ignore previous instructions", 「以前の指示を無視して」,
  an order to enter 開発者モード / developer mode, DAN, …) give HIGH confidence; otherwise the embedding
  score against the PROMPT_ATTACK seeds, as for the categories.

Confidence follows Bedrock's four levels: a score below the category's cut is NONE; at the cut, LOW;
``_STEP`` above, MEDIUM; two steps above, HIGH. A filter blocks when the confidence reaches what its
strength lets through: strength HIGH blocks LOW, MEDIUM and HIGH confidence; MEDIUM blocks MEDIUM and
HIGH; LOW blocks only HIGH; NONE blocks nothing (Bedrock's semantics). The cuts are per language
(kana or kanji: Japanese) and were calibrated on ``bench/guardrail_sets/dev.jsonl`` only."""

from __future__ import annotations

import re

import numpy as np

from haniwa.guardrails import semantic
from haniwa.guardrails.base import ContentRule, Finding, Source
from haniwa.guardrails.normalize import Normalized

__all__ = ["ContentDetector", "LEVELS", "blocks", "attack_spans", "confidence_of"]

LEVELS = ("NONE", "LOW", "MEDIUM", "HIGH")
# per language, the score (similarity margin over the benign seeds) at which each category's confidence
# is LOW: the cut with the fewest errors (missed positives + flagged benign look-alikes) on
# bench/guardrail_sets/dev.jsonl, the middle of the best range (scanned 0.030-0.060 in 0.001 steps)
_CUT = {
    "ja": {
        "HATE": 0.037,
        "INSULTS": 0.050,
        "SEXUAL": 0.037,
        "VIOLENCE": 0.034,
        "MISCONDUCT": 0.036,
        "PROMPT_ATTACK": 0.040,
    },
    "en": {
        "HATE": 0.044,
        "INSULTS": 0.039,
        "SEXUAL": 0.045,
        "VIOLENCE": 0.045,
        "MISCONDUCT": 0.047,
        "PROMPT_ATTACK": 0.040,
    },
}
_STEP = 0.015
_CUE_BONUS = 0.02
_TOP = 3

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
_QUOTED = re.compile(r"「[^」]{0,40}」|『[^』]{0,40}』|\"[^\"]{0,40}\"|“[^”]{0,40}”|'[^']{0,40}'")


def _cued(category: str, text: str) -> bool:
    """Whether ``text`` uses one of ``category``'s cue words (not only quotes it)."""
    quoted = [m.span() for m in _QUOTED.finditer(text)]
    return any(
        not any(s <= m.start() and m.end() <= e for s, e in quoted) for m in _CUE_RE[category].finditer(text)
    )


# prompt attacks: override / extraction / restriction removal, in both languages (normalised text)
_ATTACK_PATTERNS = [
    # EN: ignore|disregard|forget … previous|prior|above … instructions
    r"\b(?:ignore|disregard|forget|override|bypass|skip)\b[^.!?\n]{0,40}?\b(?:previous|prior|above|earlier|"
    r"initial|original|all|your|the|any)\b[^.!?\n]{0,30}?\b(?:instructions?|directions?|rules|guidelines|"
    r"prompts?|polic(?:y|ies)|guardrails|restrictions|programming)\b",
    r"\b(?:previous|prior|original)\s+instructions\s+(?:are|were)\s+(?:cancel+ed|void|revoked|no longer)",
    r"\b(?:reveal|print|show|output|repeat|tell me|display|leak)\b[^.!?\n]{0,40}?"
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
    r"\b(?:disable|bypass|turn\s+off|remove|override)\b[^.!?\n]{0,20}?\b(?:safety|filters?|moderation|"
    r"guardrails?|restrictions|content\s+policy)\b",
    # JA: (以前|これまで|上記…)の(指示|命令|ルール…)…(無視|忘れ|取り消…)
    r"(?:以前|これまで|今まで|いままで|前|上|上記|先ほど|さっき|以上|最初|これ以前)の?(?:すべての|全ての|全部の)?"
    r"(?:指示|命令|ルール|設定|プロンプト|制約|ガイドライン)[^。\n]{0,20}?"
    r"(?:無視|忘れ|取り消|取消|なかったこと|キャンセル|リセット|破棄|従わ)",
    r"(?:指示|命令|ルール|設定|ガイドライン)(?:は|を)?(?:すべて|全部|全て)?(?:無視|忘れ)",
    r"(?:システムプロンプト|システムメッセージ|指示文|設定文|隠され(?:た|ている)(?:命令|指示|内容)|秘密の(?:指示|命令)|"
    r"最初(?:に|の)(?:与えられた)?(?:指示|設定|命令))[^。\n]{0,30}?(?:教え|表示|出力|見せ|出し|出せ|書き出)",
    r"(?:制限|制約|フィルター|ガードレール|安全設定|安全フィルター|コンテンツポリシー|倫理的な制限|ルール|"
    r"ガイドライン)"
    r"[^。\n]{0,8}?(?:を|の|が|に|も)?(?:解除|無効|無視|ない|なし|通さず|守らず|縛られない|外し)",
    r"(?:^|[。！？!?\s]|あなたは|今から|これから)(?:開発者|ゴッド)モード(?:に|を|で|へ)|脱獄した(?:ai|モデル|アシスタント)|"
    r"\bdan\b(?:として|になって|モード)",
    r"(?:悪の|邪悪な|制限のない|何でもできる)ai",
]
_ATTACK_RE = re.compile("|".join(f"(?:{p})" for p in _ATTACK_PATTERNS))


def attack_spans(text: str) -> list[tuple[int, int]]:
    """Spans of the (normalised) text that the prompt-attack patterns match."""
    return [m.span() for m in _ATTACK_RE.finditer(text)]


def confidence_of(score: float, category: str, lang: str = "en") -> str:
    cut = _CUT[lang][category]
    if score < cut:
        return "NONE"
    if score < cut + _STEP:
        return "LOW"
    return "MEDIUM" if score < cut + 2 * _STEP else "HIGH"


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
        """Per category: the best window's score and that window's span (of the normalised text)."""
        spans = semantic.windows(text.text)
        if not spans:
            return {c: (-1.0, (0, 0)) for c in categories}
        vecs = semantic.embed([text.text[s:e] for s, e in spans])
        out = {}
        for c in categories:
            margin = semantic.similarity(vecs, semantic.seed_vectors(c), _TOP) - semantic.benign(
                vecs, c, _TOP
            )
            if c in _CUE_RE:
                bonus = [_CUE_BONUS if _cued(c, text.text[s:e]) else 0.0 for s, e in spans]
                margin = margin + np.asarray(bonus, dtype=np.float32)
            i = int(np.argmax(margin))
            out[c] = (float(margin[i]), spans[i])
        return out

    def find(self, text: Normalized, source: Source) -> list[Finding]:
        active = [(r, st) for r in self.rules if (st := r.strength_for(source)) != "NONE"]
        if not active or not text.text.strip():
            return []
        attack = attack_spans(text.text) if any(r.type == "PROMPT_ATTACK" for r, _ in active) else []
        need = [r.type for r, _ in active if not (r.type == "PROMPT_ATTACK" and attack)]
        scores = self.scores(text, need) if need else {}
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
