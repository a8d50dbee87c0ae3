"""A rough, dependency-free token count shared by the API, the runtime and knowledge.

Used wherever a model's own tokenizer is not at hand (usage estimates, rate limits, chunk sizes), so it
lives apart from any one backend: everything that counts this way counts the same.
"""

from __future__ import annotations

import re

__all__ = ["TOKEN", "rough_tokens"]

# public for callers that walk matches (offsets, or finditer to yield the GIL between tokens)
TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\W_]+|[^\s\w]", re.UNICODE)


def rough_tokens(text: str) -> list[str]:
    """Word-ish tokens: each CJK character alone, runs of letters/digits, single punctuation marks."""
    return TOKEN.findall(text)
