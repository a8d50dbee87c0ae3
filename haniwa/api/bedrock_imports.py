"""Custom model import on the wire (``bedrock``): Create/Get/ListModelImportJob(s) and
Get/List/DeleteImportedModel. Wire members ↔ ``haniwa.customization.imports`` records, nothing more."""

from __future__ import annotations

import datetime as dt
from typing import Any

from haniwa.api.context import Call
from haniwa.api.pagination import paginate
from haniwa.customization.imports import ImportedModel, ImportRecord, ImportService
from haniwa.customization.service import new_id
from haniwa.jobs.base import Job, JobState

__all__ = ["OPERATIONS"]

ACCOUNT = "000000000000"
_STATUS = {
    JobState.QUEUED: "InProgress",
    JobState.RUNNING: "InProgress",
    JobState.STOPPING: "InProgress",
    JobState.COMPLETE: "Completed",
    JobState.FAILED: "Failed",
    JobState.STOPPED: "Failed",
}


def _svc(call: Call) -> ImportService:
    return call.platform.imports


def _ts(t: float | None) -> dt.datetime | None:
    return None if t is None else dt.datetime.fromtimestamp(t, tz=dt.UTC)


def _arn(call: Call, kind: str, ident: str) -> str:
    return f"arn:aws:bedrock:{call.platform.settings.region}:{ACCOUNT}:{kind}/{ident}"


def _sorted(items: list[Any], p: dict[str, Any], created: Any, name: Any) -> list[Any]:
    if "creationTimeAfter" in p:
        items = [i for i in items if created(i) > p["creationTimeAfter"].timestamp()]
    if "creationTimeBefore" in p:
        items = [i for i in items if created(i) < p["creationTimeBefore"].timestamp()]
    if "nameContains" in p:
        items = [i for i in items if p["nameContains"] in name(i)]
    by_name = p.get("sortBy") not in (None, "CreationTime")
    return sorted(
        items, key=lambda i: name(i) if by_name else created(i), reverse=p.get("sortOrder") == "Descending"
    )


async def create_import(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    draft = ImportRecord(
        id="",
        name=p["jobName"],
        model_name=p["importedModelName"],
        model_id="",
        source_uri=p["modelDataSource"]["s3DataSource"]["s3Uri"],
        role_arn=p["roleArn"],
        created=0.0,
        client_token=p.get("clientRequestToken"),
    )
    record = await _svc(call).create(draft, new_id(), new_id())
    return {"jobArn": _arn(call, "model-import-job", record.id)}


def _job(call: Call, r: ImportRecord, job: Job, summary: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "jobArn": _arn(call, "model-import-job", r.id),
        "jobName": r.name,
        "importedModelName": r.model_name,
        "status": _STATUS[job.state],
        "creationTime": _ts(r.created),
        "lastModifiedTime": _ts(job.updated),
        "endTime": _ts(job.ended),
    }
    if job.state is JobState.COMPLETE:
        out["importedModelArn"] = _arn(call, "imported-model", r.model_id)
    if not summary:
        out["roleArn"] = r.role_arn
        out["modelDataSource"] = {"s3DataSource": {"s3Uri": r.source_uri}}
        if job.state in (JobState.FAILED, JobState.STOPPED) and job.message:
            out["failureMessage"] = job.message
    return out


async def get_import(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    record, job = await _svc(call).get_job(p["jobIdentifier"])
    return _job(call, record, job, False)


async def list_imports(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    pairs = _sorted(await _svc(call).list_jobs(), p, lambda x: x[0].created, lambda x: x[0].name)
    if "statusEquals" in p:
        pairs = [x for x in pairs if _STATUS[x[1].state] == p["statusEquals"]]
    page = paginate(call, p, pairs, key=lambda x: x[0].id)
    return page.wire("modelImportJobSummaries", [_job(call, r, j, True) for r, j in page.items])


def _model(call: Call, m: ImportedModel, summary: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "modelArn": _arn(call, "imported-model", m.id),
        "modelName": m.name,
        "creationTime": _ts(m.created),
        "modelArchitecture": m.architecture,
        "instructSupported": True,
    }
    if not summary:
        out["jobArn"] = _arn(call, "model-import-job", m.job_id)
    return out


async def get_imported(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    m = await _svc(call).get_model(p["modelIdentifier"])
    out = _model(call, m, False)
    record, _ = await _svc(call).get_job(m.job_id)
    out.update(jobName=record.name, modelDataSource={"s3DataSource": {"s3Uri": record.source_uri}})
    return out


async def list_imported(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    models = _sorted(await _svc(call).list_models(), p, lambda m: m.created, lambda m: m.name)
    page = paginate(call, p, models, key=lambda m: m.id)
    return page.wire("modelSummaries", [_model(call, m, True) for m in page.items])


async def delete_imported(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    await _svc(call).delete_model(p["modelIdentifier"])
    return {}


OPERATIONS = {
    ("bedrock", "CreateModelImportJob"): create_import,
    ("bedrock", "GetModelImportJob"): get_import,
    ("bedrock", "ListModelImportJobs"): list_imports,
    ("bedrock", "GetImportedModel"): get_imported,
    ("bedrock", "ListImportedModels"): list_imported,
    ("bedrock", "DeleteImportedModel"): delete_imported,
}
