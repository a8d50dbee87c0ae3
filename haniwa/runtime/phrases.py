"""Phrases a generation may not write, banned token by token while decoding (``PhraseBan``).

A grammar can say what an answer looks like, not what it must never contain; a persona that forbids
polite forms (「敬語は使わない」) needs the second. The ban works on the vocabulary's bytes: a token whose
bytes hold a banned phrase is masked at every step, and a token that would *finish* one (the text so far
ends with 「で」, the token starts with 「す」) is masked at the step where that is so. The model then
picks another form (「だ」, 「だよ」) instead of being cut off afterwards.

Written by hand: llama.cpp has no banned-phrase sampler in the pinned build, and llama-cpp-python's
``logit_bias`` bans single tokens only, not a phrase split across tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["POLITE_JA", "PhraseBan", "PhraseBanProcessor", "chain"]

# Japanese polite (です・ます) forms: what 「敬語は使わない」 / 「タメ口で」 rules out
POLITE_JA = ("です", "ます", "ました", "でした", "ません", "ましょう", "ください", "ございます")
_NEG_INF = np.single(-np.inf)

Processor = Callable[[npt.NDArray[np.intc], npt.NDArray[np.single]], npt.NDArray[np.single]]


class PhraseBan:
    """The ban tables of one vocabulary (``pieces[i]``: the bytes of token ``i``) for ``phrases``."""

    def __init__(self, pieces: Sequence[bytes], phrases: Sequence[str]) -> None:
        self.pieces = pieces
        self.phrases = tuple(p.encode() for p in phrases if p)
        by_first: dict[int, list[int]] = {}
        for i, piece in enumerate(pieces):
            if piece:
                by_first.setdefault(piece[0], []).append(i)
        self.static = np.array(
            [i for i, piece in enumerate(pieces) if any(p in piece for p in self.phrases)], dtype=np.intp
        )
        # (the phrase's first k bytes, the tokens starting with the rest): banned after that prefix
        self.finishers: list[tuple[bytes, npt.NDArray[np.intp]]] = []
        for phrase in self.phrases:
            for k in range(1, len(phrase)):
                rest = phrase[k:]
                ids = [i for i in by_first.get(rest[0], ()) if pieces[i].startswith(rest)]
                if ids:
                    self.finishers.append((phrase[:k], np.array(sorted(set(ids)), dtype=np.intp)))
        self.keep = max((len(p) for p in self.phrases), default=1)

    def processor(self) -> PhraseBanProcessor:
        return PhraseBanProcessor(self)


class PhraseBanProcessor:
    """A logits processor ``(generated ids, scores) -> scores`` for one generation."""

    def __init__(self, ban: PhraseBan) -> None:
        self._ban = ban
        self._seen = 0
        self._tail = b""

    def __call__(
        self, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]
    ) -> npt.NDArray[np.single]:
        ban, pieces = self._ban, self._ban.pieces
        for token in input_ids[self._seen :].tolist():
            if 0 <= token < len(pieces):
                self._tail = (self._tail + pieces[token])[-ban.keep :]
        self._seen = max(self._seen, len(input_ids))
        scores[ban.static] = _NEG_INF
        for head, ids in ban.finishers:
            if self._tail.endswith(head):
                scores[ids] = _NEG_INF
        return scores


def chain(*processors: Processor | None) -> Processor | None:
    """One processor running ``processors`` in turn (None: none of them)."""
    steps = [p for p in processors if p is not None]
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]

    def run(ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]) -> npt.NDArray[np.single]:
        for step in steps:
            scores = step(ids, scores)
        return scores

    return run
