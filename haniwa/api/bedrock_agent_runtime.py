"""``bedrock-agent-runtime`` knowledge-base operations: Retrieve, RetrieveAndGenerate(+Stream), Rerank."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from haniwa.api.bedrock_guardrails_calls import Checked, Guard, OutputGuard, acted, check, load_guard
from haniwa.api.context import Call
from haniwa.api.pagination import refuse_token
from haniwa.api.wire import EventStream
from haniwa.errors import ValidationError
from haniwa.guardrails.base import Grounding
from haniwa.knowledge.base import FILTER_OPERATORS, AllOf, AnyOf, Condition, Filter, Hit
from haniwa.knowledge.filters import validate
from haniwa.knowledge.generate import Citation, reference
from haniwa.knowledge.rag import Prepared, RagRequest, answer, finish, prepare, stream
from haniwa.knowledge.rerank import EmbeddingReranker
from haniwa.knowledge.retrieve import RetrievalQuery, retrieve
from haniwa.runtime.base import InferenceParams, StreamEnd, TextDelta, Usage

__all__ = ["OPERATIONS", "to_filter", "retrieval_query", "citation_wire"]


def to_filter(wire: Mapping[str, Any]) -> Filter:
    """A Bedrock ``RetrievalFilter`` → :data:`haniwa.knowledge.base.Filter` (exactly one operator)."""
    keys = [k for k in wire if wire[k] is not None]
    if len(keys) != 1:
        raise ValidationError(f"a retrieval filter takes exactly one operator, got {keys or 'none'}")
    op = keys[0]
    if op in ("andAll", "orAll"):
        parts = wire[op]
        if len(parts) < 2:
            raise ValidationError(f"{op} needs at least 2 filters")
        inner = tuple(to_filter(p) for p in parts)
        return AllOf(inner) if op == "andAll" else AnyOf(inner)
    if op not in FILTER_OPERATORS:
        raise ValidationError(f"unknown filter operator {op!r}")
    f = Condition(op, wire[op]["key"], wire[op]["value"])
    validate(f)
    return f


def retrieval_query(call: Call, text: str, cfg: Mapping[str, Any] | None) -> RetrievalQuery:
    vsc = (cfg or {}).get("vectorSearchConfiguration") or {}
    where = to_filter(vsc["filter"]) if vsc.get("filter") else None
    k = int(vsc.get("numberOfResults", 5))
    reranker = None
    candidates = 25
    rr = vsc.get("rerankingConfiguration")
    if rr:
        brc = rr.get("bedrockRerankingConfiguration")
        if not brc:
            raise ValidationError("rerankingConfiguration needs bedrockRerankingConfiguration")
        reranker = _reranker(call, brc["modelConfiguration"]["modelArn"])
        candidates = max(k, int(brc.get("numberOfRerankedResults", 25)))
    return RetrievalQuery(
        text=text,
        k=k,
        search_type=vsc.get("overrideSearchType", "HYBRID"),
        where=where,
        reranker=reranker,
        rerank_candidates=candidates,
    )


def _reranker(call: Call, model: str) -> EmbeddingReranker:
    res = call.platform.registry.resolve(model)
    if res.info.kind != "embedding":
        raise ValidationError(f"{model} cannot rerank: it is a chat model (use e.g. amazon.rerank-v1:0)")
    return EmbeddingReranker(call.platform.registry, model)


def _result(hit: Hit) -> dict[str, Any]:
    return {**reference(hit), "score": round(hit.score, 6)}


def _question(text: str) -> str:
    if not text.strip():
        raise ValidationError("the query text is empty")
    return text


async def retrieve_op(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    refuse_token(p)  # every result is on the one page
    svc = call.platform.knowledge
    query = p["retrievalQuery"]
    if "text" not in query:
        raise ValidationError("retrievalQuery.text is required (image queries need a multimodal embedder)")
    kb = await svc.get_kb(p["knowledgeBaseId"])
    rq = retrieval_query(call, _question(query["text"]), p.get("retrievalConfiguration"))
    store = await svc.store(kb)

    async def embed_query(text: str) -> list[float]:
        return (await svc.embed(kb, [text], "query"))[0]

    hits = await retrieve(store, embed_query, rq)
    return {"retrievalResults": [_result(h) for h in hits]}


def _rag_request(call: Call, p: Mapping[str, Any]) -> RagRequest:
    cfg = p.get("retrieveAndGenerateConfiguration")
    if not cfg or cfg["type"] != "KNOWLEDGE_BASE":
        raise ValidationError("retrieveAndGenerateConfiguration of type KNOWLEDGE_BASE is required")
    kbc = cfg.get("knowledgeBaseConfiguration")
    if not kbc:
        raise ValidationError("knowledgeBaseConfiguration is required")
    gen = kbc.get("generationConfiguration") or {}
    tic = (gen.get("inferenceConfig") or {}).get("textInferenceConfig") or {}
    params = InferenceParams(
        max_tokens=tic.get("maxTokens", 512),
        temperature=tic.get("temperature", 0.0),
        top_p=tic.get("topP"),
        stop=tuple(tic.get("stopSequences") or ()),
    )
    orch = kbc.get("orchestrationConfiguration") or {}
    qt = orch.get("queryTransformationConfiguration") or {}
    return RagRequest(
        question=_question(p["input"]["text"]),
        kb_id=kbc["knowledgeBaseId"],
        model_id=kbc["modelArn"],
        retrieval=retrieval_query(call, p["input"]["text"], kbc.get("retrievalConfiguration")),
        template=(gen.get("promptTemplate") or {}).get("textPromptTemplate"),
        params=params,
        decompose=qt.get("type") == "QUERY_DECOMPOSITION",
        session_id=p.get("sessionId"),
    )


def citation_wire(c: Citation, hits: Sequence[Hit]) -> dict[str, Any]:
    return {
        "generatedResponsePart": {
            "textResponsePart": {"text": c.text, "span": {"start": c.start, "end": c.end - 1}}
        },
        "retrievedReferences": [reference(hits[i]) for i in c.refs],
    }


async def _rag_guard(
    call: Call, p: Mapping[str, Any], req: RagRequest
) -> tuple[Guard | None, Checked | None, RagRequest]:
    """``generationConfiguration.guardrailConfiguration``: the guardrail and its check of the question
    (done before the question is rewritten, searched or answered; a masked question goes on masked)."""
    kbc = p["retrieveAndGenerateConfiguration"]["knowledgeBaseConfiguration"]
    cfg = (kbc.get("generationConfiguration") or {}).get("guardrailConfiguration")
    if cfg is None:
        return None, None, req
    guard = await load_guard(call, cfg.get("guardrailId"), cfg.get("guardrailVersion"))
    if guard is None:
        raise ValidationError("guardrailConfiguration.guardrailId is required")
    inputs = await check(guard, [req.question], "INPUT")
    if inputs.intervened and not inputs.blocked:
        question = inputs.texts[0]
        req = replace(req, question=question, retrieval=replace(req.retrieval, text=question))
    return guard, inputs, req


def _grounding(prep: Prepared, req: RagRequest) -> Grounding:
    """What a contextual grounding policy holds the answer to: the retrieved passages (the grounding
    source) and the question (the query)."""
    return Grounding(tuple(h.chunk.text for h in prep.hits), (req.question,))


def _session(req: RagRequest) -> str:
    return req.session_id or uuid.uuid4().hex


async def retrieve_and_generate(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    req = _rag_request(call, p)
    guard, inputs, req = await _rag_guard(call, p, req)
    outputs: OutputGuard | None = None
    if guard is None:
        result = await answer(call.platform.knowledge, req)
    elif inputs is not None and inputs.blocked:
        # refused before anything is searched or generated
        text = inputs.texts[0]
        return {
            "output": {"text": text},
            "citations": [],
            "sessionId": _session(req),
            "guardrailAction": "INTERVENED",
        }
    else:
        # the answer is checked before it is cited and remembered, so spans and history fit what is sent
        svc = call.platform.knowledge
        prep = await prepare(svc, req)
        _, backend = await svc.registry.chat(req.model_id)
        generated = await backend.converse(prep.chat)
        outputs = OutputGuard(guard, _grounding(prep, req))
        text = await outputs.text(generated.message.text)
        result = await finish(svc, prep, req.question, text, generated.usage)
    await call.platform.log_invocation(
        request_id=call.request_id,
        surface="bedrock",
        operation="RetrieveAndGenerate",
        model_requested=req.model_id,
        model_id=call.platform.registry.resolve(req.model_id).info.id,
        input_tokens=result.usage.input_tokens,
        output_tokens=result.usage.output_tokens,
        latency_ms=call.elapsed_ms(),
    )
    out = {
        "output": {"text": result.text},
        "citations": [citation_wire(c, result.hits) for c in result.citations],
        "sessionId": result.session_id,
    }
    if guard is not None:
        out["guardrailAction"] = "INTERVENED" if acted(inputs, outputs) else "NONE"
    return out


async def retrieve_and_generate_stream(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    svc = call.platform.knowledge
    req = _rag_request(call, p)
    guard, inputs, req = await _rag_guard(call, p, req)
    if inputs is not None and inputs.blocked:
        # refused before anything is searched or generated
        return {"sessionId": _session(req), "stream": EventStream(_refused(inputs.texts[0]))}
    prep = await prepare(svc, req)  # errors before the stream starts become ordinary error responses
    started = time.perf_counter()
    outputs = OutputGuard(guard, _grounding(prep, req)) if guard is not None else None

    async def events() -> AsyncIterator[tuple[str, Mapping[str, Any]]]:
        parts: list[str] = []
        usage = Usage(0, 0)
        generated = stream(svc, req, prep)
        async for ev in outputs.stream(generated) if outputs is not None else generated:
            if isinstance(ev, TextDelta) and ev.text:
                parts.append(ev.text)
                yield "output", {"text": ev.text}
            elif isinstance(ev, StreamEnd):
                usage = ev.usage
        if guard is not None and acted(inputs, outputs):
            yield "guardrail", {"action": "INTERVENED"}
        result = await finish(svc, prep, req.question, "".join(parts), usage)
        for c in result.citations:
            if c.refs:
                wire = citation_wire(c, result.hits)
                # the deprecated nested ``citation`` member too: Bedrock still sends it, and clients
                # (GenU's RAG chat) read ``event.citation.citation``
                yield "citation", {**wire, "citation": wire}
        await call.platform.log_invocation(
            request_id=call.request_id,
            surface="bedrock",
            operation="RetrieveAndGenerateStream",
            model_requested=req.model_id,
            model_id=call.platform.registry.resolve(req.model_id).info.id,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            latency_ms=int((time.perf_counter() - started) * 1000),
        )

    return {"sessionId": prep.session_id, "stream": EventStream(events())}


async def _refused(message: str) -> AsyncIterator[tuple[str, Mapping[str, Any]]]:
    yield "output", {"text": message}
    yield "guardrail", {"action": "INTERVENED"}


async def rerank(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    refuse_token(p)  # every result is on the one page
    queries = p["queries"]
    if len(queries) != 1:
        raise ValidationError("Rerank takes exactly one query")
    query = _question(queries[0]["textQuery"].get("text", ""))
    texts = []
    for s in p["sources"]:
        doc = s["inlineDocumentSource"]
        if doc["type"] == "TEXT":
            texts.append(doc.get("textDocument", {}).get("text", ""))
        else:
            texts.append(json.dumps(doc.get("jsonDocument"), ensure_ascii=False))
    brc = p["rerankingConfiguration"]["bedrockRerankingConfiguration"]
    n = int(brc.get("numberOfResults", len(texts)))
    scores = await _reranker(call, brc["modelConfiguration"]["modelArn"]).rerank(query, texts)
    order = sorted(range(len(texts)), key=lambda i: -scores[i])[:n]
    return {
        "results": [
            {"index": i, "relevanceScore": scores[i], "document": p["sources"][i]["inlineDocumentSource"]}
            for i in order
        ]
    }


OPERATIONS = {
    ("bedrock-agent-runtime", "Retrieve"): retrieve_op,
    ("bedrock-agent-runtime", "RetrieveAndGenerate"): retrieve_and_generate,
    ("bedrock-agent-runtime", "RetrieveAndGenerateStream"): retrieve_and_generate_stream,
    ("bedrock-agent-runtime", "Rerank"): rerank,
}
