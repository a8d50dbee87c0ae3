"""Text normalisation with a map back to the original: detectors match on NFKC-normalised, ASCII
case-folded text (so ０９０, ＡＢＣ and ﾊﾟ match 090, abc and パ) and report spans of the original text,
so masks replace exactly the characters the client sent and leave the rest byte for byte.

Written here because ``unicodedata.normalize`` returns no offsets."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Normalized", "normalize"]

# half-width katakana voicing marks compose with the character before them under NFKC
_JOINERS = {"\uff9e", "\uff9f"}


@dataclass(frozen=True)
class Normalized:
    """``text`` is the normalised form; ``starts[i]``/``ends[i]`` the original span of ``text[i]``."""

    original: str
    text: str
    starts: Sequence[int]
    ends: Sequence[int]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of normalised ``text[start:end]`` (non-empty)."""
        return self.starts[start], self.ends[end - 1]


def _fold(s: str) -> str:
    # ASCII only: str.lower on other scripts can change lengths (İ) and is not wanted for Japanese
    return "".join(c.lower() if c.isascii() else c for c in s)


def normalize(original: str) -> Normalized:
    """Normalise cluster by cluster (a character and the combining marks after it), so each output
    character maps to the cluster it came from."""
    if unicodedata.is_normalized("NFKC", original):
        # the common case (ASCII folding keeps lengths): offsets map to themselves, no per-cluster work
        n = len(original)
        return Normalized(original, _fold(original), range(n), range(1, n + 1))
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i, n = 0, len(original)
    while i < n:
        j = i + 1
        while j < n and (unicodedata.combining(original[j]) or original[j] in _JOINERS):
            j += 1
        piece = _fold(unicodedata.normalize("NFKC", original[i:j]))
        out.append(piece)
        starts.extend([i] * len(piece))
        ends.extend([j] * len(piece))
        i = j
    return Normalized(original, "".join(out), starts, ends)
