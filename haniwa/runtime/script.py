"""Japanese answers in Japanese kanji: a decoding-time mask over a byte-level BPE vocabulary.

Qwen2.5 models learned far more Chinese than Japanese, and a Japanese answer regularly slips into
Simplified-Chinese forms (们 这 说 圆 质 铜 线 instead of 円 質 銅 線 ...). Rewriting the text afterwards
cannot choose the right Japanese word, so the characters are removed where the model chooses them: every
vocabulary token whose text holds a Han character outside Japanese kanji gets a logit of -inf, and the
model picks its next best token, which is nearly always the Japanese form.

Definitions
-----------
* A *Han character* is one of Unicode's Han-script code points: the CJK Unified Ideographs and their
  extensions A-H, the compatibility ideographs, the CJK and Kangxi radicals and the few ideographic
  symbols in U+3005-U+303B (々, 〇, 〻...).
* *Japanese kanji* are the Han characters encodable in JIS X 0208 or JIS X 0213 (Python's
  ``euc_jis_2004`` / ``shift_jis_2004`` codecs, whose repertoire is JIS X 0213:2004, a superset of
  JIS X 0208). Every other Han character is *foreign*.
* A conversation is *Japanese* (:func:`is_japanese_conversation`) when its system prompt or one of its user
  turns holds at least one hiragana or katakana character. Kana occur in Japanese and (practically) nowhere
  else, while Han characters alone cannot tell Japanese from Chinese. The middle dot ・ and the long-vowel
  mark ー are not counted: Chinese text borrows them for transliterated names.

Why hand-written
----------------
llama-cpp-python's ``logit_bias`` is static and works on whole tokens, and its grammars (GBNF) cannot say
"any character except these 80,000" without a rule listing them all. Libraries that constrain decoding
(outlines, guidance, lm-format-enforcer, transformers' ``bad_words_ids``) work on strings or token
sequences, not on Unicode properties of characters that a byte-level BPE token may hold only partly. So:

* a token whose own complete characters include a foreign one, or whose trailing incomplete UTF-8 sequence
  can only end as a foreign character, is banned statically (a numpy index array, built once per model);
* a token that starts with UTF-8 continuation bytes completes the character left pending by the text so
  far; which of those (about 1.5% of Qwen's vocabulary) are banned depends on the pending bytes, is
  computed on first sight of each pending sequence, and is cached.

The processor tracks the pending bytes itself from the token ids llama-cpp-python hands it, so it composes
with grammar-constrained decoding (the grammar sampler runs after it and masks further).
"""

from __future__ import annotations

import codecs
import functools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "is_han",
    "is_japanese_han",
    "foreign_han",
    "has_kana",
    "is_japanese_conversation",
    "ScriptMask",
    "JapaneseScriptProcessor",
]

# Unicode's Script=Han blocks (Scripts.txt), as inclusive code point ranges.
_HAN_RANGES: tuple[tuple[int, int], ...] = (
    (0x2E80, 0x2FDF),  # CJK Radicals Supplement, Kangxi Radicals
    (0x3005, 0x3005),  # 々
    (0x3007, 0x3007),  # 〇
    (0x3021, 0x3029),  # Hangzhou numerals
    (0x3038, 0x303B),
    (0x3400, 0x4DBF),  # Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0x20000, 0x3FFFF),  # Extensions B-H, Compatibility Supplement (planes 2 and 3)
)
_JIS_CODECS = ("euc_jis_2004", "shift_jis_2004")
_NEG_INF = np.float32(-np.inf)


def _is_han_cp(cp: int) -> bool:
    if cp < 0x2E80:
        return False
    return any(lo <= cp <= hi for lo, hi in _HAN_RANGES)


def is_han(ch: str) -> bool:
    """Whether ``ch`` (one character) is a Han-script character."""
    return _is_han_cp(ord(ch))


@functools.lru_cache(maxsize=1 << 17)  # about all Han code points in use
def is_japanese_han(ch: str) -> bool:
    """Whether ``ch`` is a Han character encodable in JIS X 0208/0213 (Japanese kanji)."""
    if not is_han(ch):
        return False
    for codec in _JIS_CODECS:
        try:
            ch.encode(codec)
        except UnicodeEncodeError:
            continue
        return True
    return False


def _is_foreign_cp(cp: int) -> bool:
    return _is_han_cp(cp) and not is_japanese_han(chr(cp))


def foreign_han(text: str) -> list[str]:
    """The Han characters of ``text`` that are not Japanese kanji, each once, in order of appearance."""
    out: list[str] = []
    for ch in text:
        if ch >= "\u2e80" and ch not in out and _is_foreign_cp(ord(ch)):
            out.append(ch)
    return out


def _is_kana(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x3041 <= cp <= 0x309F  # hiragana, including ゝゞゟ
        or (0x30A0 <= cp <= 0x30FF and cp not in (0x30FB, 0x30FC))  # katakana except ・ ー
        or 0x31F0 <= cp <= 0x31FF  # small katakana for Ainu
        or 0xFF66 <= cp <= 0xFF9D  # half-width katakana
    )


def has_kana(text: str) -> bool:
    """Whether ``text`` holds a hiragana or katakana character (・ and ー do not count)."""
    return any(ch >= "\u3041" and _is_kana(ch) for ch in text)


def is_japanese_conversation(texts: Iterable[str]) -> bool:
    """Whether a conversation is Japanese, given its system prompt and user turns: one kana suffices."""
    return any(has_kana(t) for t in texts)


# -- UTF-8 bookkeeping -------------------------------------------------------------------------------
def _utf8_len(lead: int) -> int:
    return 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4


@functools.lru_cache(maxsize=4096)
def _dead(pending: bytes) -> bool:
    """Whether every character that the incomplete UTF-8 sequence ``pending`` can still become is foreign.

    ``pending`` is a valid prefix as Python's decoder buffers it, so it fixes a range of code points.
    """
    n = _utf8_len(pending[0])
    value = pending[0] & (0x7F >> n)
    for b in pending[1:]:
        value = (value << 6) | (b & 0x3F)
    missing = 6 * (n - len(pending))
    lo, hi = value << missing, ((value + 1) << missing) - 1
    if not (_is_han_cp(lo) and _is_han_cp(hi)):
        return False  # a non-Han code point at either end is allowed (a shortcut: the loop finds it too)
    return all(_is_foreign_cp(cp) for cp in range(lo, hi + 1))


def _decode(data: bytes) -> tuple[str, bytes]:
    """``data`` decoded as Python's incremental decoder does it: the text and the bytes left pending."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    text = decoder.decode(data)
    return text, decoder.getstate()[0]


def _bans(text: str, pending: bytes) -> bool:
    return bool(foreign_han(text)) or (bool(pending) and _dead(pending))


class ScriptMask:
    """The foreign-Han tables of one vocabulary (``pieces[i]``: the bytes of token ``i``)."""

    def __init__(self, pieces: Sequence[bytes]) -> None:
        self.pieces = list(pieces)
        self.n_vocab = len(self.pieces)
        banned: list[int] = []
        cont: list[int] = []
        for i, piece in enumerate(self.pieces):
            if not piece:
                continue
            if 0x80 <= piece[0] <= 0xBF:
                cont.append(i)  # also completes whatever character is pending before it
            if piece.isascii():
                continue
            if _bans(*_decode(piece)):
                banned.append(i)
        self.static: npt.NDArray[np.intp] = np.array(banned, dtype=np.intp)
        self._cont = cont
        self._dynamic: dict[bytes, npt.NDArray[np.intp]] = {}

    @classmethod
    def of_llama(cls, llm: Any) -> ScriptMask:
        """The tables of a ``llama_cpp.Llama``'s vocabulary (special tokens detokenize to nothing)."""
        return cls([llm.detokenize([i]) for i in range(llm.n_vocab())])

    def dynamic(self, pending: bytes) -> npt.NDArray[np.intp]:
        """The tokens banned because, after the incomplete sequence ``pending``, they end foreign."""
        found = self._dynamic.get(pending)
        if found is None:
            found = np.array(
                [i for i in self._cont if _bans(*_decode(pending + self.pieces[i]))], dtype=np.intp
            )
            if len(self._dynamic) < 4096:
                self._dynamic[pending] = found
        return found

    def allowed(self, pending: bytes = b"") -> npt.NDArray[np.bool_]:
        """A boolean mask over the vocabulary: the tokens that may follow ``pending``."""
        ok = np.ones(self.n_vocab, dtype=np.bool_)
        ok[self.static] = False
        if pending:
            ok[self.dynamic(pending)] = False
        return ok

    def processor(self, start: int) -> JapaneseScriptProcessor:
        """A logits processor for a generation whose prompt is ``start`` tokens long."""
        return JapaneseScriptProcessor(self, start)


class JapaneseScriptProcessor:
    """A llama-cpp-python logits processor: ``(input_ids, scores) -> scores`` with foreign Han banned.

    ``input_ids`` holds the prompt and every token generated so far; the tokens after ``start`` are decoded
    here (from the mask's byte table) to know which bytes of an unfinished character are pending.
    """

    def __init__(self, mask: ScriptMask, start: int) -> None:
        self._mask = mask
        self._seen = start
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    @property
    def pending(self) -> bytes:
        """The trailing bytes of the generated text that do not form a whole character yet."""
        state: bytes = self._decoder.getstate()[0]
        return state

    def __call__(
        self, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]
    ) -> npt.NDArray[np.single]:
        pieces = self._mask.pieces
        for token in input_ids[self._seen :].tolist():
            if 0 <= token < len(pieces):
                self._decoder.decode(pieces[token])
        self._seen = max(self._seen, len(input_ids))
        scores[self._mask.static] = _NEG_INF
        pending = self.pending
        if pending:
            scores[self._mask.dynamic(pending)] = _NEG_INF
        return scores
