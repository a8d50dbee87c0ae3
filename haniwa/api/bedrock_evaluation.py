"""Evaluation jobs on the wire: ``bedrock`` CreateEvaluationJob, GetEvaluationJob, ListEvaluationJobs,
StopEvaluationJob and BatchDeleteEvaluationJob (shapes and statuses from botocore's model), plus two
haniwa routes that Bedrock's shapes have no room for: a job's progress and results
(``GET /haniwa/v1/evaluation-jobs/{id}``) and the comparison of two jobs
(``GET /haniwa/v1/evaluation-jobs/{a}/compare/{b}``).

Wire request ↔ :class:`haniwa.evaluation.base.Plan`, nothing more. Automated model evaluation (Builtin
and judge metrics, Bedrock models or bring-your-own responses) and retrieve-only RAG evaluation (a
haniwa knowledge base or precomputed retrieval results) are served; human evaluation and
retrieve-and-generate RAG evaluation answer ValidationException saying so.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from haniwa.api.context import Call, Platform
from haniwa.api.errors import OPENAI_RESPONSES
from haniwa.api.openai import OpenAIRoute
from haniwa.api.pagination import paginate
from haniwa.errors import NotFoundError, ValidationError
from haniwa.evaluation.base import (
    BUILTIN_AUTOMATED,
    CITATION_METRICS,
    HUMAN_RATING_METHODS,
    JUDGE_METRICS,
    RAG_GENERATE_METRICS,
    RAG_METRICS,
    CustomMetric,
    DatasetTask,
    HumanMetric,
    Plan,
    RatingLevel,
    Source,
)
from haniwa.evaluation.judge import MAX_JUDGE_SAMPLES
from haniwa.evaluation.service import EvaluationJob, EvaluationService
from haniwa.jobs.base import JobState

__all__ = ["OPERATIONS", "router", "plan_of", "evaluation_arn", "JUDGE_SAMPLES_HEADER"]

_STATUS = {
    JobState.QUEUED: "InProgress",
    JobState.RUNNING: "InProgress",
    JobState.STOPPING: "Stopping",
    JobState.COMPLETE: "Completed",
    JobState.FAILED: "Failed",
    JobState.STOPPED: "Stopped",
}
_WIRE_MEMBERS = (
    "jobDescription",
    "roleArn",
    "customerEncryptionKeyId",
    "evaluationConfig",
    "inferenceConfig",
)


def _status(ev: EvaluationJob) -> str:
    return "InProgress" if ev.awaiting_ratings else _STATUS[ev.state]


def _service(call: Call) -> EvaluationService:
    return call.platform.evaluation


def evaluation_arn(region: str, eval_id: str) -> str:
    return f"arn:aws:bedrock:{region}:000000000000:evaluation-job/{eval_id}"


def _eid(identifier: str) -> str:
    return identifier.rsplit("evaluation-job/", 1)[-1]


def _ts(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC)


# -- wire → plan -------------------------------------------------------------------------------------
def _params(raw: str | None) -> dict[str, Any]:
    """``inferenceParams``: a JSON string, ``{"inferenceConfig": {"maxTokens", "temperature", "topP"}}``."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValidationError(f"inferenceParams is not JSON: {exc}") from exc
    cfg = data.get("inferenceConfig", data) if isinstance(data, Mapping) else None
    if not isinstance(cfg, Mapping):
        raise ValidationError("inferenceParams must be a JSON object (with inferenceConfig)")
    out: dict[str, Any] = {}
    for wire, name, kind in (("maxTokens", "max_tokens", int), ("temperature", "temperature", float)) + (
        ("topP", "top_p", float),
    ):
        if cfg.get(wire) is not None:
            if not isinstance(cfg[wire], int | float):
                raise ValidationError(f"inferenceParams inferenceConfig.{wire} must be a number")
            out[name] = kind(cfg[wire])
    return out


def _sources(platform: Platform, inference: Mapping[str, Any]) -> list[Source]:
    sources: list[Source] = []
    for m in inference.get("models") or []:
        if "bedrockModel" in m:
            bm = m["bedrockModel"]
            _known(platform, bm["modelIdentifier"])
            sources.append(Source("model", bm["modelIdentifier"], **_params(bm.get("inferenceParams"))))
        elif "precomputedInferenceSource" in m:
            sources.append(
                Source("precomputed", m["precomputedInferenceSource"]["inferenceSourceIdentifier"])
            )
    for r in inference.get("ragConfigs") or []:
        kb = r.get("knowledgeBaseConfig") or {}
        pre = r.get("precomputedRagSourceConfig") or {}
        if "retrieveConfig" in kb:
            rc = kb["retrieveConfig"]
            vector = rc["knowledgeBaseRetrievalConfiguration"]["vectorSearchConfiguration"]
            sources.append(
                Source("retrieve", rc["knowledgeBaseId"], number_of_results=vector.get("numberOfResults", 5))
            )
        elif "retrieveAndGenerateConfig" in kb:
            sources.append(_rag_source(platform, kb["retrieveAndGenerateConfig"]))
        elif "retrieveSourceConfig" in pre:
            sources.append(Source("precomputed", pre["retrieveSourceConfig"]["ragSourceIdentifier"]))
        elif "retrieveAndGenerateSourceConfig" in pre:
            # bring-your-own RAG answers: the dataset's modelResponses (no citations, so the citation
            # metrics answer None with the reason)
            sources.append(
                Source("precomputed", pre["retrieveAndGenerateSourceConfig"]["ragSourceIdentifier"])
            )
        else:
            raise ValidationError("ragConfigs needs knowledgeBaseConfig or precomputedRagSourceConfig")
    if not sources:
        raise ValidationError("inferenceConfig needs at least one model or ragConfig")
    names = [s.identifier for s in sources]
    if len(set(names)) != len(names):
        raise ValidationError("inferenceConfig names the same model or source twice")
    return sources


def _rag_source(platform: Platform, cfg: Mapping[str, Any]) -> Source:
    """A retrieve-and-generate source, answered as RetrieveAndGenerate answers (knowledge bases only)."""
    if cfg["type"] != "KNOWLEDGE_BASE" or "knowledgeBaseConfiguration" not in cfg:
        raise ValidationError(
            "retrieveAndGenerateConfig must be of type KNOWLEDGE_BASE (external sources are not served)"
        )
    kbc = cfg["knowledgeBaseConfiguration"]
    _known(platform, kbc["modelArn"])
    vector = (kbc.get("retrievalConfiguration") or {}).get("vectorSearchConfiguration") or {}
    gen = kbc.get("generationConfiguration") or {}
    tic = (gen.get("inferenceConfig") or {}).get("textInferenceConfig") or {}
    return Source(
        "rag",
        kbc["knowledgeBaseId"],
        max_tokens=tic.get("maxTokens"),
        temperature=tic.get("temperature"),
        top_p=tic.get("topP"),
        number_of_results=vector.get("numberOfResults", 5),
        model=kbc["modelArn"],
        template=(gen.get("promptTemplate") or {}).get("textPromptTemplate"),
    )


def _known(platform: Platform, model_id: str) -> None:
    try:
        platform.registry.resolve(model_id)
    except NotFoundError as exc:
        raise ValidationError(f"model {model_id!r} is not served here (see ListFoundationModels)") from exc


def _custom(defn: Mapping[str, Any]) -> CustomMetric:
    levels = []
    for item in defn.get("ratingScale") or []:
        v = item["value"]
        value: float | str = float(v["floatValue"]) if "floatValue" in v else str(v.get("stringValue", ""))
        levels.append(RatingLevel(item["definition"], value))
    return CustomMetric(defn["name"], defn["instructions"], tuple(levels))


def _human(config: Mapping[str, Any]) -> tuple[HumanMetric, ...]:
    """``evaluationConfig.human``'s metrics. The SageMaker ``flowDefinitionArn`` is accepted and not used:
    people rate in haniwa's playground (or through its REST route) instead of a SageMaker work team."""
    metrics = []
    for m in config.get("customMetrics") or []:
        if m["ratingMethod"] not in HUMAN_RATING_METHODS:
            raise ValidationError(
                f"rating method {m['ratingMethod']!r} is not served here;"
                f" use one of {list(HUMAN_RATING_METHODS)}"
            )
        metrics.append(HumanMetric(m["name"], m["ratingMethod"], m.get("description", "")))
    if not metrics:
        raise ValidationError("a human evaluation job needs customMetrics (name and ratingMethod)")
    if len({m.name for m in metrics}) != len(metrics):
        raise ValidationError("customMetrics names a metric twice")
    return tuple(metrics)


def plan_of(platform: Platform, p: Mapping[str, Any]) -> Plan:
    """CreateEvaluationJob's request as a plan; ``ValidationError`` for what is not served or wrong."""
    config = p["evaluationConfig"]
    if "human" in config:
        human = config["human"]
        metrics = _human(human)
        datasets = []
        for d in human["datasetMetricConfigs"]:
            uri = (d["dataset"].get("datasetLocation") or {}).get("s3Uri")
            if not uri:
                raise ValidationError(
                    f"dataset {d['dataset']['name']!r} needs datasetLocation.s3Uri"
                    " (Bedrock's built-in datasets are not shipped)"
                )
            names = {m.name for m in metrics}
            if not set(d["metricNames"]) <= names:
                raise ValidationError(
                    f"metricNames {d['metricNames']} must be among customMetrics {sorted(names)}"
                )
            datasets.append(DatasetTask(d["taskType"], d["dataset"]["name"], uri, tuple(d["metricNames"])))
        sources = _sources(platform, p["inferenceConfig"])
        if any(s.kind in ("retrieve", "rag") for s in sources):
            raise ValidationError(
                "human evaluation rates model responses; knowledge-base sources are not served"
            )
        return Plan(
            name=p["jobName"],
            output_uri=p["outputDataConfig"]["s3Uri"],
            datasets=tuple(datasets),
            sources=tuple(sources),
            human_metrics=metrics,
        )
    auto = config.get("automated")
    if auto is None:
        raise ValidationError("evaluationConfig needs 'automated' or 'human'")
    evaluators = [
        m["modelIdentifier"]
        for m in (auto.get("evaluatorModelConfig") or {}).get("bedrockEvaluatorModels", [])
    ]
    custom_cfg = auto.get("customMetricConfig") or {}
    custom = [_custom(c["customMetricDefinition"]) for c in custom_cfg.get("customMetrics", [])]
    custom_evaluators = [
        m["modelIdentifier"]
        for m in (custom_cfg.get("evaluatorModelConfig") or {}).get("bedrockEvaluatorModels", [])
    ]
    for m in (*evaluators, *custom_evaluators):
        _known(platform, m)
    custom_names = {c.name for c in custom}
    datasets = []
    for d in auto["datasetMetricConfigs"]:
        ds = d["dataset"]
        uri = (ds.get("datasetLocation") or {}).get("s3Uri")
        if not uri:
            raise ValidationError(
                f"dataset {ds['name']!r} needs datasetLocation.s3Uri"
                " (Bedrock's built-in datasets are not shipped)"
            )
        for m in d["metricNames"]:
            if (
                m not in BUILTIN_AUTOMATED | JUDGE_METRICS | RAG_METRICS | RAG_GENERATE_METRICS
                and m not in custom_names
            ):
                raise ValidationError(
                    f"unknown metric {m!r}; custom metrics must be defined in customMetricConfig"
                )
            if (m in JUDGE_METRICS | (RAG_GENERATE_METRICS - CITATION_METRICS) and not evaluators) or (
                m in custom_names and not (custom_evaluators or evaluators)
            ):
                raise ValidationError(f"metric {m!r} needs an evaluator model (evaluatorModelConfig)")
        datasets.append(DatasetTask(d["taskType"], ds["name"], uri, tuple(d["metricNames"])))
    return Plan(
        name=p["jobName"],
        output_uri=p["outputDataConfig"]["s3Uri"],
        datasets=tuple(datasets),
        sources=tuple(_sources(platform, p["inferenceConfig"])),
        evaluators=tuple(evaluators),
        custom_metrics=tuple(custom),
        custom_evaluators=tuple(custom_evaluators),
    )


# -- operations --------------------------------------------------------------------------------------
def _application(ev: EvaluationJob) -> str:
    given = ev.request.get("applicationType")
    if given:
        return str(given)
    return (
        "RagEvaluation"
        if any(s.kind in ("retrieve", "rag") for s in ev.plan.sources)
        or ev.request.get("inferenceConfig", {}).get("ragConfigs")
        else "ModelEvaluation"
    )


# CreateEvaluationJob has no member for judge sampling: HANIWA_EVAL_JUDGE_SAMPLES, or this header per job
JUDGE_SAMPLES_HEADER = "x-haniwa-judge-samples"


def _judge_samples(call: Call) -> int:
    raw = call.headers.get(JUDGE_SAMPLES_HEADER)
    if raw is None:
        return call.platform.settings.eval_judge_samples
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_JUDGE_SAMPLES:
        raise ValidationError(f"{JUDGE_SAMPLES_HEADER} must be an integer from 1 to {MAX_JUDGE_SAMPLES}")
    return n


async def create_evaluation_job(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    plan = plan_of(call.platform, p)
    if not plan.human_metrics:
        plan = replace(plan, judge_samples=_judge_samples(call))
    request = {k: p[k] for k in (*_WIRE_MEMBERS, "applicationType", "outputDataConfig", "jobTags") if k in p}
    ev = await _service(call).create(plan, request, p.get("clientRequestToken"))
    return {"jobArn": evaluation_arn(call.platform.settings.region, ev.id)}


async def get_evaluation_job(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    ev = await _service(call).get(_eid(p["jobIdentifier"]))
    out: dict[str, Any] = {
        "jobName": ev.name,
        "status": _status(ev),
        "jobArn": evaluation_arn(call.platform.settings.region, ev.id),
        "jobType": "Human" if ev.human else "Automated",
        "applicationType": _application(ev),
        "outputDataConfig": ev.request["outputDataConfig"],
        "creationTime": _ts(ev.created),
        "lastModifiedTime": _ts(ev.updated),
    }
    out.update({k: ev.request[k] for k in _WIRE_MEMBERS if k in ev.request})
    if ev.job.failures:
        out["failureMessages"] = list(ev.job.failures)
    return out


def _summary(region: str, ev: EvaluationJob) -> dict[str, Any]:
    plan = ev.plan
    models = [s.identifier for s in plan.sources if s.kind == "model"]
    pre = [s.identifier for s in plan.sources if s.kind == "precomputed"]
    kbs = [s.identifier for s in plan.sources if s.kind in ("retrieve", "rag")]
    rag = _application(ev) == "RagEvaluation"
    out: dict[str, Any] = {
        "jobArn": evaluation_arn(region, ev.id),
        "jobName": ev.name,
        "status": _status(ev),
        "creationTime": _ts(ev.created),
        "jobType": "Human" if ev.human else "Automated",
        "evaluationTaskTypes": sorted({d.task_type for d in plan.datasets}),
        "applicationType": _application(ev),
    }
    if rag:
        out["ragIdentifiers"] = kbs + pre
        out["inferenceConfigSummary"] = {
            "ragConfigSummary": {
                "bedrockKnowledgeBaseIdentifiers": kbs,
                "precomputedRagSourceIdentifiers": pre,
            }
        }
    else:
        out["modelIdentifiers"] = models + pre
        out["inferenceConfigSummary"] = {
            "modelConfigSummary": {
                "bedrockModelIdentifiers": models,
                "precomputedInferenceSourceIdentifiers": pre,
            }
        }
    if plan.evaluators:
        out["evaluatorModelIdentifiers"] = list(plan.evaluators)
    if plan.custom_evaluators:
        out["customMetricsEvaluatorModelIdentifiers"] = list(plan.custom_evaluators)
    return out


async def list_evaluation_jobs(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    items = await _service(call).list_jobs()
    after, before = p.get("creationTimeAfter"), p.get("creationTimeBefore")
    if after is not None:
        items = [e for e in items if e.created > after.timestamp()]
    if before is not None:
        items = [e for e in items if e.created < before.timestamp()]
    if p.get("statusEquals"):
        items = [e for e in items if _status(e) == p["statusEquals"]]
    if p.get("applicationTypeEquals"):
        items = [e for e in items if _application(e) == p["applicationTypeEquals"]]
    if p.get("nameContains"):
        items = [e for e in items if p["nameContains"] in e.name]
    if p.get("sortOrder", "Descending") == "Descending":
        items.reverse()
    page = paginate(call, p, items, key=lambda e: e.id)
    region = call.platform.settings.region
    return page.wire("jobSummaries", [_summary(region, e) for e in page.items])


async def stop_evaluation_job(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    await _service(call).stop(_eid(p["jobIdentifier"]))
    return {}


async def batch_delete_evaluation_job(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    errors, deleted = [], []
    for ident in p["jobIdentifiers"]:
        try:
            await _service(call).delete(_eid(ident))
        except NotFoundError as exc:
            errors.append(
                {"jobIdentifier": ident, "code": "ResourceNotFoundException", "message": exc.message}
            )
            continue
        deleted.append({"jobIdentifier": ident, "jobStatus": "Deleting"})
    return {"errors": errors, "evaluationJobs": deleted}


OPERATIONS = {
    ("bedrock", "CreateEvaluationJob"): create_evaluation_job,
    ("bedrock", "GetEvaluationJob"): get_evaluation_job,
    ("bedrock", "ListEvaluationJobs"): list_evaluation_jobs,
    ("bedrock", "StopEvaluationJob"): stop_evaluation_job,
    ("bedrock", "BatchDeleteEvaluationJob"): batch_delete_evaluation_job,
}


# -- haniwa extras: progress, results, comparison ------------------------------------------------------
router = APIRouter(route_class=OpenAIRoute, prefix="/haniwa/v1", responses=OPENAI_RESPONSES)


def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


@router.get("/evaluation-jobs/{job_id}")
async def evaluation_progress(job_id: str, request: Request) -> JSONResponse:
    """Progress (done/total, ETA), failures and, once complete, each metric's mean and 95% interval."""
    ev = await _platform(request).evaluation.get(_eid(job_id))
    j = ev.job
    done, total = j.done, j.total
    if ev.awaiting_ratings:  # the rating is the progress now
        task = await _platform(request).evaluation.rating_task(ev.id)
        done, total = float(task["rated"]), float(task["total"])
    return JSONResponse(
        {
            "id": ev.id,
            "name": ev.name,
            "status": _status(ev),
            "human": ev.human,
            "awaitingRatings": ev.awaiting_ratings,
            "done": done,
            "total": total,
            "eta": j.eta,
            "message": j.message
            if not ev.awaiting_ratings
            else f"rated {int(done or 0)} of {int(total or 0)}",
            "figures": dict(j.figures),
            "failures": list(j.failures),
            "summary": ev.summary,
        }
    )


@router.get("/evaluation-jobs/{a}/compare/{b}")
async def evaluation_compare(a: str, b: str, request: Request) -> JSONResponse:
    """Job ``b`` against job ``a`` per metric: mean difference, its 95% interval and the verdict."""
    comparisons = await _platform(request).evaluation.compare(_eid(a), _eid(b))
    return JSONResponse(
        {
            "comparisons": [
                {
                    "metric": c.metric,
                    "difference": c.difference,
                    "ci95Low": c.low,
                    "ci95High": c.high,
                    "count": c.n,
                    "verdict": c.verdict,
                }
                for c in comparisons
            ]
        }
    )


@router.get("/evaluation-jobs/{job_id}/records")
async def evaluation_records(
    job_id: str, request: Request, offset: int = 0, limit: int = 200
) -> JSONResponse:
    """Scored records (source, dataset index, record index, output line), ``limit`` (≤ 1,000) at a time."""
    if offset < 0 or not 1 <= limit <= 1000:
        raise ValidationError("offset must be ≥ 0 and limit between 1 and 1000")
    rows = await _platform(request).evaluation.records(_eid(job_id))
    page = rows[offset : offset + limit]
    nxt = offset + len(page) if offset + len(page) < len(rows) else None
    return JSONResponse({"records": page, "total": len(rows), "nextOffset": nxt})


@router.get("/evaluation-jobs/{job_id}/ratings")
async def evaluation_rating_task(job_id: str, request: Request) -> JSONResponse:
    """A human job's rating task: its metrics (name, ratingMethod) and every record with its response."""
    return JSONResponse(await _platform(request).evaluation.rating_task(_eid(job_id)))


@router.put("/evaluation-jobs/{job_id}/ratings/{source}/{dataset}/{record}")
async def evaluation_rate(
    job_id: str, source: str, dataset: int, record: int, request: Request
) -> JSONResponse:
    """Rate one record: ``{"ratings": {metric: "up" | "down" | 1…5}}``. The last rating completes the job."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise ValidationError('the body must be JSON: {"ratings": {metric: rating}}') from exc
    if not isinstance(body, Mapping) or not isinstance(body.get("ratings"), Mapping):
        raise ValidationError('the body must be {"ratings": {metric: rating}}')
    out = await _platform(request).evaluation.rate(_eid(job_id), source, dataset, record, body["ratings"])
    return JSONResponse(out)
