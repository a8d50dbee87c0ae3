"""Perturbations for the robustness metric, Japanese-aware and seeded (the same seed, the same text).

Bedrock measures robustness as the change in a task's accuracy metric when the prompt is perturbed. For
Japanese, the perturbations a real user's input shows are: full-/half-width forms (ＡＢＣ１２３ vs
ABC123, ｶﾀｶﾅ vs カタカナ), hiragana written as katakana and back, other punctuation (、。 vs ，．, or
none) and typos (a dropped, doubled or swapped character). English gets the width, punctuation and typo
perturbations (case instead of kana).
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable

from haniwa.evaluation.text import is_japanese

__all__ = ["PERTURBATIONS", "perturb", "to_full_width", "to_half_width", "swap_kana", "punctuation", "typo"]

_HIRA = range(0x3041, 0x3097)  # ぁ..ゖ
_KATA_SHIFT = 0x60


def to_full_width(text: str) -> str:
    """ASCII letters, digits and symbols as their full-width forms (Ａ, １, ！); space as U+3000."""
    out = []
    for ch in text:
        o = ord(ch)
        out.append(chr(o + 0xFEE0) if 0x21 <= o <= 0x7E else ("\u3000" if ch == " " else ch))
    return "".join(out)


def to_half_width(text: str) -> str:
    """Full-width ASCII back to ASCII and katakana to half-width katakana (ｶﾀｶﾅ), through NFKC for the
    former and the Unicode names for the latter."""
    out = []
    for ch in text:
        o = ord(ch)
        if 0xFF01 <= o <= 0xFF5E:
            out.append(chr(o - 0xFEE0))
            continue
        if 0x30A1 <= o <= 0x30FA or ch == "ー":
            decomposed = unicodedata.normalize("NFD", ch)
            base = decomposed[0]
            name = unicodedata.name(base, "").replace("KATAKANA LETTER", "HALFWIDTH KATAKANA LETTER")
            try:
                half = unicodedata.lookup(name) if ch != "ー" else "ｰ"
            except KeyError:
                out.append(ch)
                continue
            marks = {"\u3099": "ﾞ", "\u309a": "ﾟ"}
            out.append(half + "".join(marks.get(m, "") for m in decomposed[1:]))
            continue
        out.append(ch)
    return "".join(out)


def swap_kana(text: str) -> str:
    """Hiragana as katakana and katakana as hiragana (a user typing without converting)."""
    out = []
    for ch in text:
        o = ord(ch)
        if o in _HIRA:
            out.append(chr(o + _KATA_SHIFT))
        elif o - _KATA_SHIFT in _HIRA:
            out.append(chr(o - _KATA_SHIFT))
        else:
            out.append(ch)
    return "".join(out)


_JA_PUNCT = {"、": "，", "。": "．", "，": "、", "．": "。", "？": "?", "！": "!"}
_EN_PUNCT = {",": "", ".": "", "?": "", "!": "", ";": ",", ":": ""}


def punctuation(text: str, rng: random.Random) -> str:
    """Japanese punctuation in its other form (、。 ↔ ，．) or dropped; English punctuation dropped."""
    table = _JA_PUNCT if is_japanese(text) else _EN_PUNCT
    drop = rng.random() < 0.5
    return "".join(("" if drop and c in "、。，．" else table[c]) if c in table else c for c in text)


def typo(text: str, rng: random.Random, rate: float = 0.05) -> str:
    """About ``rate`` of the letters get a typo: dropped, doubled or swapped with the next one (at least
    one typo in a non-empty text)."""
    chars = list(text)
    idx = [i for i, c in enumerate(chars) if c.isalnum()]
    if not idx:
        return text
    picks = sorted(rng.sample(idx, max(1, round(len(idx) * rate))), reverse=True)
    for i in picks:
        kind = rng.randrange(3)
        if kind == 0:
            del chars[i]
        elif kind == 1:
            chars.insert(i, chars[i])
        elif i + 1 < len(chars):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def _case(text: str, rng: random.Random) -> str:
    return text.upper() if rng.random() < 0.5 else text.lower()


PERTURBATIONS: dict[str, Callable[[str, random.Random], str]] = {
    "full_width": lambda t, _: to_full_width(t),
    "half_width": lambda t, _: to_half_width(t),
    "kana": lambda t, _: swap_kana(t),
    "punctuation": punctuation,
    "typo": typo,
}


def perturb(text: str, seed: int | str) -> tuple[str, str]:
    """One perturbation of ``text``, chosen by the seeded generator among those that change it; returns
    (its name, the perturbed text). ``seed`` is usually the job's seed and the record's index."""
    rng = random.Random(str(seed))
    names = list(PERTURBATIONS) if is_japanese(text) else ["full_width", "punctuation", "typo", "case"]
    rng.shuffle(names)
    for name in names:
        out = _case(text, rng) if name == "case" else PERTURBATIONS[name](text, rng)
        if out != text:
            return name, out
    return "typo", typo(text, rng)
