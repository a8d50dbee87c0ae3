"""Keyword tokens for BM25, Japanese-aware.

SQLite FTS5's own tokenizers cannot split Japanese: ``unicode61`` keeps a whole run of kana/kanji as one
token and ``trigram`` misses every 2-character word (東京, 天気, 検索). So text is split here, with
MeCab (fugashi) and the UniDic-lite dictionary for Japanese (5/5 test words found, see shared/STORAGE.md),
and the stores index the space-joined tokens. The same function tokenizes queries, so both sides agree.
"""

from __future__ import annotations

import re
import threading
import unicodedata

import fugashi

__all__ = ["keyword_tokens", "keyword_text"]

# parts of speech that carry no search meaning: particles, auxiliaries, symbols, blanks
_SKIP_POS = {"助詞", "助動詞", "補助記号", "記号", "空白"}
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f々〆ヵヶー]")
_RUN = re.compile(rf"{_CJK.pattern}+|(?:(?!{_CJK.pattern}).)+", re.DOTALL)
_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(
    ("a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is", "it")
    + ("its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "with")
)
_local = threading.local()


def _tagger() -> fugashi.Tagger:
    # MeCab taggers are not thread-safe; ingestion and queries run in worker threads
    tagger = getattr(_local, "tagger", None)
    if tagger is None:
        tagger = _local.tagger = fugashi.Tagger()
    return tagger


def keyword_tokens(text: str) -> list[str]:
    """Lower-cased, NFKC-normalised search tokens: MeCab words for runs of Japanese script, ``\\w+`` runs
    for everything else (so "P0001" is one token whether or not Japanese surrounds it); particles,
    symbols and a few English stop words are dropped."""
    text = unicodedata.normalize("NFKC", text).lower()
    out: list[str] = []
    for m in _RUN.finditer(text):
        run = m.group()
        if _CJK.match(run):
            for word in _tagger()(run):
                if word.feature.pos1 not in _SKIP_POS:
                    out += _WORD.findall(word.surface)
        else:
            out += (w for w in _WORD.findall(run) if w not in _STOP)
    return out


def keyword_text(text: str) -> str:
    """The tokens joined by spaces: what a store puts in its full-text column."""
    return " ".join(keyword_tokens(text))
