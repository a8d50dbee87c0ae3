"""Tokens for reference-based metrics, the same way for Japanese and English.

English follows the reference implementations the metrics are compared with: SQuAD's ``normalize_answer``
(lower case, no punctuation, no articles, split on white space) for F1 and exact match, and
``rouge-score``'s default tokenizer (lower case, runs of ``[a-z0-9]``) for ROUGE. Both drop every
Japanese character, which is why HF ``evaluate`` scores 0 on Japanese; runs of Japanese script are
instead split into MeCab words (fugashi + the UniDic-lite dictionary, the tokenizer knowledge bases use
for BM25, see ``knowledge/tokenize.py``), dropping only symbols and blanks. Particles stay: they carry
meaning in a Japanese answer (東京 *から* vs 東京 *まで*), as English function words do in rouge-score.
"""

from __future__ import annotations

import re
import string
import threading
import unicodedata

import fugashi

__all__ = ["is_japanese", "squad_tokens", "rouge_tokens", "mecab_words", "normalize_answer"]

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f々〆ヵヶー]")
_KANA = re.compile(r"[\u3040-\u30ff\uff66-\uff9f]")
_RUN = re.compile(rf"{_CJK.pattern}+|(?:(?!{_CJK.pattern}).)+", re.DOTALL)
_SKIP_POS = {"補助記号", "記号", "空白"}
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)
_ROUGE_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_local = threading.local()


def _tagger() -> fugashi.Tagger:
    # MeCab taggers are not thread-safe; metrics run in worker threads
    tagger = getattr(_local, "tagger", None)
    if tagger is None:
        tagger = _local.tagger = fugashi.Tagger()
    return tagger


def is_japanese(text: str) -> bool:
    """Kana anywhere, or Han characters with no Latin letters (a kanji-only answer such as 東京都)."""
    if _KANA.search(text):
        return True
    return bool(_CJK.search(text)) and not re.search(r"[A-Za-z]", text)


def mecab_words(text: str) -> list[str]:
    """MeCab surface forms of ``text``, symbols and blanks dropped."""
    return [w.surface for w in _tagger()(text) if w.feature.pos1 not in _SKIP_POS and w.surface.strip()]


def normalize_answer(text: str) -> str:
    """SQuAD v1.1's ``normalize_answer`` for non-Japanese text (NFKC first, so full-width ＡＢＣ is abc)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def squad_tokens(text: str) -> list[str]:
    """Tokens for token F1 and exact match: SQuAD's normalisation outside Japanese runs, MeCab words
    inside them."""
    text = unicodedata.normalize("NFKC", text).lower()
    out: list[str] = []
    for m in _RUN.finditer(text):
        run = m.group()
        out += mecab_words(run) if _CJK.match(run) else normalize_answer(run).split()
    return out


def rouge_tokens(text: str) -> list[str]:
    """Tokens for ROUGE: ``rouge-score``'s default tokenizer outside Japanese runs (lower case, runs of
    ``[a-z0-9]``, no stemming), MeCab words inside them."""
    text = unicodedata.normalize("NFKC", text).lower()
    out: list[str] = []
    for m in _RUN.finditer(text):
        run = m.group()
        if _CJK.match(run):
            out += mecab_words(run)
        else:
            out += [t for t in _ROUGE_NON_ALNUM.split(run) if t]
    return out
