"""Query rewriting with the chat model: conversational follow-ups → standalone search queries, and
QUERY_DECOMPOSITION of a complex question into sub-questions.

Used by Cohere Command R's ``search_queries_only`` (InvokeModel) and by RetrieveAndGenerate, so both
rewrite the same way. Prompts are written for small local models: worked examples steer them towards
bare lines, and :func:`extract_queries` cleans up what they add anyway (bullets, labels, quotes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from haniwa.runtime.base import ChatRequest, InferenceParams, Message, TextBlock

__all__ = [
    "SEARCH_QUERY_PROMPT",
    "DECOMPOSE_PROMPT",
    "extract_queries",
    "search_query_request",
    "decompose_request",
]

SEARCH_QUERY_PROMPT = (
    "You turn a user's message into search queries for a document search engine. "
    "Rewrite the user's latest message into 1-3 short keyword search queries, one per line, "
    'in the same language as the user. Keep the user\'s key terms, and replace words like "it" or 「それ」 '
    "with what they refer to in the conversation so far. Write only the queries: no numbering, no quotes, "
    "no explanation. Do not answer the question."
)
# Worked turns steer small models toward bare keyword lines and show how earlier turns are passed.
_EXAMPLES = (
    (
        "What are the health benefits of green tea compared to coffee?",
        "green tea health benefits\ngreen tea vs coffee",
    ),
    ("おいしいカレーの作り方を教えて", "カレー 作り方"),
    (
        "Conversation so far:\nUSER: 富士山について教えて\nCHATBOT: 富士山は日本で一番高い山です。\n\n"
        "Latest message: 高さはどれくらい？",
        "富士山 高さ",
    ),
)

DECOMPOSE_PROMPT = (
    "You split a complex question into the simple questions a search engine can answer one by one. "
    "Write 1-4 short standalone questions, one per line, in the same language as the user. If the "
    "question is already simple, repeat it. Write only the questions: no numbering, no explanation, "
    "no answer."
)
_DECOMPOSE_EXAMPLES = (
    (
        "Which is taller, the Eiffel Tower or Tokyo Tower, and when was each built?",
        "How tall is the Eiffel Tower?\nHow tall is Tokyo Tower?\nWhen was the Eiffel Tower built?\n"
        "When was Tokyo Tower built?",
    ),
    ("ロボットの材料と製造手順を教えて", "ロボットの材料は何ですか\nロボットの製造手順は何ですか"),
)

_BULLET = re.compile(r"^\s*(?:[-*•・]+|\d+\s*[.)、．:]|\(\d+\)|[①-⑩])\s*")
_LABEL = re.compile(
    r"^(?:(?:search\s+)?quer(?:y|ies)\s*\d*|(?:sub-?)?questions?\s*\d*|latest message|検索クエリ\s*\d*"
    r"|クエリ\s*\d*|質問\s*\d*)\s*[:：]\s*",
    re.IGNORECASE,
)
_CONTEXT_LINE = re.compile(r"^(?:USER|CHATBOT):")
_QUOTES = "\"'`「」『』“”‘’【】"


def extract_queries(text: str, limit: int = 3) -> list[str]:
    """The model's lines → queries without bullets, numbering, labels or quotes; deduplicated; ≤ ``limit``."""
    queries: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        q = _LABEL.sub("", _BULLET.sub("", line.strip())).strip().strip(_QUOTES).strip()
        q = q.rstrip("。.?？!！").strip()
        # an empty line, a "Here are the queries:" preface, or the context echoed back
        if not q or q.endswith((":", "：")) or _CONTEXT_LINE.match(q):
            continue
        key = " ".join(q.lower().split())
        if key not in seen:
            seen.add(key)
            queries.append(q)
    return queries[:limit]


def _shots(examples: Sequence[tuple[str, str]]) -> list[Message]:
    out: list[Message] = []
    for question, answer in examples:
        out += [Message("user", (TextBlock(question),)), Message("assistant", (TextBlock(answer),))]
    return out


def search_query_request(
    message: str, history: Sequence[tuple[str, str]] = (), seed: int | None = None
) -> ChatRequest:
    """A request whose answer is search queries for ``message``; ``history`` is (role, text) pairs with
    role ``user`` or ``assistant``. Earlier turns go into the last user turn, where small models use them
    to resolve "it" / 「それ」."""
    if history:
        lines = "\n".join(f"{'USER' if role == 'user' else 'CHATBOT'}: {text}" for role, text in history)
        message = f"Conversation so far:\n{lines}\n\nLatest message: {message}"
    return ChatRequest(
        messages=(*_shots(_EXAMPLES), Message("user", (TextBlock(message),))),
        system=SEARCH_QUERY_PROMPT,
        params=InferenceParams(max_tokens=64, temperature=0.0, seed=seed),
        system_reminder=False,  # the few-shot turns set the format; a restated prompt would break the pattern
        system_rules=False,
    )


def decompose_request(question: str) -> ChatRequest:
    """A request whose answer is the sub-questions of ``question`` (Bedrock QUERY_DECOMPOSITION)."""
    return ChatRequest(
        messages=(*_shots(_DECOMPOSE_EXAMPLES), Message("user", (TextBlock(question),))),
        system=DECOMPOSE_PROMPT,
        params=InferenceParams(max_tokens=128, temperature=0.0),
        system_reminder=False,
        system_rules=False,
    )
