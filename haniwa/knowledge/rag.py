"""RetrieveAndGenerate orchestration: session history, query rewriting / decomposition, retrieval,
the grounded generation request, and citations. Wire-free: ``api/bedrock_agent_runtime.py`` converts."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from haniwa.errors import NotFoundError
from haniwa.knowledge.base import Hit
from haniwa.knowledge.generate import DEFAULT_PROMPT, Citation, cite, render_prompt
from haniwa.knowledge.retrieve import RetrievalQuery, fuse, retrieve
from haniwa.knowledge.rewrite import decompose_request, extract_queries, search_query_request
from haniwa.knowledge.service import KnowledgeBase, KnowledgeService
from haniwa.runtime.base import (
    ChatEvent,
    ChatRequest,
    ChatResult,
    InferenceParams,
    Message,
    TextBlock,
    Usage,
)

__all__ = ["RagRequest", "Prepared", "RagAnswer", "prepare", "answer", "finish", "MAX_REFERENCES"]

MAX_REFERENCES = 15


@dataclass(frozen=True)
class RagRequest:
    """One RetrieveAndGenerate call in engine terms."""

    question: str
    kb_id: str
    model_id: str
    retrieval: RetrievalQuery
    template: str | None = None
    params: InferenceParams = InferenceParams(max_tokens=512, temperature=0.0)
    decompose: bool = False
    session_id: str | None = None


@dataclass(frozen=True)
class Prepared:
    """Everything decided before generation starts."""

    session_id: str
    queries: tuple[str, ...]
    hits: tuple[Hit, ...]
    chat: ChatRequest
    history: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RagAnswer:
    text: str
    citations: tuple[Citation, ...]
    hits: tuple[Hit, ...]
    session_id: str
    usage: Usage


async def _history(svc: KnowledgeService, session_id: str | None) -> tuple[str, list[tuple[str, str]]]:
    if session_id is None:
        return uuid.uuid4().hex, []
    rows = await svc.db.query("SELECT turns FROM rag_sessions WHERE id = ?", (session_id,))
    if not rows:
        raise NotFoundError(f"session {session_id!r} does not exist (sessions come from an earlier answer)")
    return session_id, [(r, t) for r, t in json.loads(rows[0]["turns"])]


async def _ask(svc: KnowledgeService, model_id: str, req: ChatRequest) -> str:
    _, backend = await svc.registry.chat(model_id)
    result = await backend.converse(req)
    return result.message.text


async def prepare(svc: KnowledgeService, req: RagRequest) -> Prepared:
    """Resolve the session, rewrite the question into search queries, retrieve, build the chat request."""
    session_id, history = await _history(svc, req.session_id)
    kb: KnowledgeBase = await svc.get_kb(req.kb_id)
    queries = [req.question]
    if history:
        # a follow-up ("and its price?") is rewritten into standalone queries, as Command R's
        # search_queries_only does
        text = await _ask(svc, req.model_id, search_query_request(req.question, history))
        queries = extract_queries(text) or queries
    if req.decompose:
        subs: list[str] = []
        for q in queries:
            text = await _ask(svc, req.model_id, decompose_request(q))
            subs += extract_queries(text, limit=4) or [q]
        queries = list(dict.fromkeys([*queries, *subs]))
    store = await svc.store(kb)

    async def embed_query(text: str) -> list[float]:
        return (await svc.embed(kb, [text], "query"))[0]

    lists = [await retrieve(store, embed_query, replace(req.retrieval, text=q)) for q in queries]
    hits = lists[0] if len(lists) == 1 else fuse(lists)[: min(MAX_REFERENCES, req.retrieval.k * len(lists))]
    system, in_template = render_prompt(req.template, hits, req.question)
    messages = [Message("user" if r == "user" else "assistant", (TextBlock(t),)) for r, t in history]
    if in_template and not messages:
        messages.append(Message("user", (TextBlock("Answer using the search results."),)))
    elif not in_template or messages:
        messages.append(Message("user", (TextBlock(req.question),)))
    # format rules come from the template, never from the documents filled into it (runtime/sysrules.py)
    rules_from = re.sub(r"\$\w+\$", "", req.template or DEFAULT_PROMPT)
    chat = ChatRequest(messages=tuple(messages), system=system, params=req.params, rules_from=rules_from)
    return Prepared(session_id, tuple(queries), tuple(hits), chat, tuple(history))


async def finish(svc: KnowledgeService, prep: Prepared, question: str, text: str, usage: Usage) -> RagAnswer:
    """Cite the answer and remember the turn in the session."""
    clean, citations = cite(text, prep.hits)
    turns = [*prep.history, ("user", question), ("assistant", clean)]
    now = time.time()
    await svc.db.execute(
        "INSERT INTO rag_sessions (id, turns, created, updated) VALUES (?,?,?,?)"
        " ON CONFLICT (id) DO UPDATE SET turns = excluded.turns, updated = excluded.updated",
        (prep.session_id, json.dumps(turns, ensure_ascii=False), now, now),
    )
    return RagAnswer(clean, tuple(citations), prep.hits, prep.session_id, usage)


async def answer(svc: KnowledgeService, req: RagRequest) -> RagAnswer:
    """The whole RetrieveAndGenerate, non-streaming."""
    prep = await prepare(svc, req)
    _, backend = await svc.registry.chat(req.model_id)
    result: ChatResult = await backend.converse(prep.chat)
    return await finish(svc, prep, req.question, result.message.text, result.usage)


async def stream(svc: KnowledgeService, req: RagRequest, prep: Prepared) -> AsyncIterator[ChatEvent]:
    """The generation of a prepared request as chat events (RetrieveAndGenerateStream)."""
    _, backend = await svc.registry.chat(req.model_id)
    async for ev in backend.converse_stream(prep.chat):
        yield ev
