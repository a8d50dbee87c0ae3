"""Model customization on the wire (``bedrock``): customization jobs, custom models, provisioned
throughput and custom-model deployments. Wire members ↔ ``haniwa.customization`` records, nothing more.

Status values come from the service model's enums: a job is ``InProgress`` while it waits for the one
training slot or trains, then ``Completed``, ``Failed`` or ``Stopped``. GetModelCustomizationJob's
``trainingMetrics``/``validationMetrics`` carry the last training loss and the validation loss; the
before/after comparison, the progress and the loss curve are at ``GET /haniwa/v1/customization/jobs/<id>``
(the output shapes have no member for them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from haniwa.api.context import Call
from haniwa.api.pagination import paginate
from haniwa.customization.base import CustomModel, JobRecord, Provisioned
from haniwa.customization.service import CustomizationService, JobView
from haniwa.errors import ValidationError
from haniwa.jobs.base import JobState
from haniwa.runtime.bundled import BUNDLES
from haniwa.runtime.registry import strip_arn

__all__ = ["OPERATIONS", "job_status", "job_arn", "model_arn"]

ACCOUNT = "000000000000"
_STATUS = {
    JobState.QUEUED: "InProgress",
    JobState.RUNNING: "InProgress",
    JobState.STOPPING: "Stopping",
    JobState.COMPLETE: "Completed",
    JobState.FAILED: "Failed",
    JobState.STOPPED: "Stopped",
}
T = TypeVar("T")


def _svc(call: Call) -> CustomizationService:
    return call.platform.customization


def _ts(t: float | None) -> dt.datetime | None:
    return None if t is None else dt.datetime.fromtimestamp(t, tz=dt.UTC)


def _arn(call: Call, kind: str, tail: str) -> str:
    return f"arn:aws:bedrock:{call.platform.settings.region}:{ACCOUNT}:{kind}/{tail}"


def _base_part(record: JobRecord) -> str:
    """The base-model part of job and custom-model ARNs (``provider.model``, as Bedrock's pattern wants)."""
    mid = strip_arn(record.base_model).lower()
    head, _, rest = mid.partition(".")
    if rest and all(c.isalnum() or c in "-.:" for c in mid):
        return mid.split(":")[0] if ":" in mid else mid
    return f"haniwa.{record.bundle.replace('.', '-')}"


def job_arn(call: Call, record: JobRecord) -> str:
    return _arn(call, "model-customization-job", f"{_base_part(record)}/{record.id}")


def model_arn(call: Call, record: JobRecord) -> str:
    return _arn(call, "custom-model", f"{_base_part(record)}/{record.custom_model_id}")


def _foundation_arn(call: Call, record: JobRecord) -> str:
    return _arn(call, "foundation-model", strip_arn(record.base_model)).replace(f":{ACCOUNT}:", "::")


def job_status(view: JobView) -> str:
    return _STATUS[view.job.state]


def _filter(
    items: Sequence[T], p: dict[str, Any], created: Callable[[T], float], name: Callable[[T], str]
) -> list[T]:
    out = list(items)
    if "creationTimeAfter" in p:
        out = [i for i in out if created(i) > p["creationTimeAfter"].timestamp()]
    if "creationTimeBefore" in p:
        out = [i for i in out if created(i) < p["creationTimeBefore"].timestamp()]
    if "nameContains" in p:
        out = [i for i in out if p["nameContains"] in name(i)]
    by_name = p.get("sortBy") not in (None, "CreationTime")
    out.sort(
        key=lambda i: name(i) if by_name else created(i),
        reverse=p.get("sortOrder", "Descending") == "Descending",
    )
    return out


# -- customization jobs ---------------------------------------------------------------------------------
async def create_job(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    kind = p.get("customizationType", "FINE_TUNING")
    if kind not in ("FINE_TUNING", "CONTINUED_PRE_TRAINING", "DISTILLATION"):
        raise ValidationError(
            f"customizationType {kind} is not supported here; use FINE_TUNING,"
            " CONTINUED_PRE_TRAINING or DISTILLATION"
        )
    res = call.platform.registry.resolve(p["baseModelIdentifier"])
    bundle = res.info.options.get("bundled")
    if res.info.backend != "llamacpp" or bundle not in BUNDLES:
        raise ValidationError(
            f"{p['baseModelIdentifier']} resolves to {res.info.id}, which cannot be customized; bundled"
            f" models can: {', '.join(BUNDLES)}"
        )
    teacher = None
    max_tokens = 512
    if kind == "DISTILLATION":
        cfg = (p.get("customizationConfig") or {}).get("distillationConfig", {}).get("teacherModelConfig")
        if not cfg:
            raise ValidationError(
                "DISTILLATION needs customizationConfig.distillationConfig.teacherModelConfig"
            )
        teacher = cfg["teacherModelIdentifier"]
        max_tokens = _int(cfg, "maxResponseLengthForInference", 1, 32768, 512)
    training = p["trainingDataConfig"].get("s3Uri")
    if not training:
        raise ValidationError("trainingDataConfig.s3Uri is required (invocation logs are not read)")
    draft = JobRecord(
        id="",
        name=p["jobName"],
        engine_id="",
        customization_type=kind,
        base_model=p["baseModelIdentifier"],
        base_info=res.info.id,
        bundle=str(bundle),
        custom_model_id="",
        custom_model_name=p["customModelName"],
        role_arn=p["roleArn"],
        hyperparameters=dict(p.get("hyperParameters") or {}),
        training_uri=training,
        validation_uris=tuple(
            v["s3Uri"] for v in (p.get("validationDataConfig") or {}).get("validators", ())
        ),
        output_uri=p["outputDataConfig"]["s3Uri"],
        created=0.0,
        client_token=p.get("clientRequestToken"),
        teacher=teacher,
        teacher_max_tokens=max_tokens,
    )
    record = await _svc(call).create_job(draft)
    return {"jobArn": job_arn(call, record)}


def _details(view: JobView) -> dict[str, Any]:
    job = view.job
    started, ended = job.started, job.ended
    data_done = job.done > 0 or job.state is JobState.COMPLETE

    def status(running: bool, done: bool) -> str:
        if done:
            return "Completed"
        if job.state is JobState.FAILED:
            return "Failed"
        if job.state is JobState.STOPPED:
            return "Stopped"
        return "InProgress" if running else "NotStarted"

    return {
        "validationDetails": {
            "status": status(started is not None, started is not None),
            "creationTime": _ts(job.created),
            "lastModifiedTime": _ts(started or job.created),
        },
        "dataProcessingDetails": {
            "status": status(started is not None, data_done),
            "creationTime": _ts(job.created),
            "lastModifiedTime": _ts(job.updated),
        },
        "trainingDetails": {
            "status": status(data_done, job.state is JobState.COMPLETE),
            "creationTime": _ts(started or job.created),
            "lastModifiedTime": _ts(ended or job.updated),
        },
    }


async def get_job(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    view = await _svc(call).get_job(p["jobIdentifier"])
    r, job = view.record, view.job
    out: dict[str, Any] = {
        "jobArn": job_arn(call, r),
        "jobName": r.name,
        "outputModelName": r.custom_model_name,
        "roleArn": r.role_arn,
        "status": job_status(view),
        "statusDetails": _details(view),
        "creationTime": _ts(r.created),
        "lastModifiedTime": _ts(job.updated),
        "endTime": _ts(job.ended),
        "baseModelArn": _foundation_arn(call, r),
        "hyperParameters": dict(r.hyperparameters),
        "trainingDataConfig": {"s3Uri": r.training_uri},
        "validationDataConfig": {"validators": [{"s3Uri": u} for u in r.validation_uris]},
        "outputDataConfig": {"s3Uri": r.output_uri},
        "customizationType": r.customization_type,
    }
    if r.client_token:
        out["clientRequestToken"] = r.client_token
    if job.state is JobState.COMPLETE:
        out["outputModelArn"] = model_arn(call, r)
    if job.state is JobState.FAILED and job.message:
        out["failureMessage"] = job.message
    if "loss" in job.figures:
        out["trainingMetrics"] = {"trainingLoss": job.figures["loss"]}
    if "validationLoss" in job.figures:
        out["validationMetrics"] = [{"validationLoss": job.figures["validationLoss"]}]
    if r.teacher:
        out["customizationConfig"] = {
            "distillationConfig": {
                "teacherModelConfig": {
                    "teacherModelIdentifier": r.teacher,
                    "maxResponseLengthForInference": r.teacher_max_tokens,
                }
            }
        }
    return out


async def list_jobs(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    views = _filter(await _svc(call).list_jobs(), p, lambda v: v.record.created, lambda v: v.record.name)
    if "statusEquals" in p:
        views = [v for v in views if job_status(v) == p["statusEquals"]]
    page = paginate(call, p, views, key=lambda v: v.record.id)
    items = []
    for v in page.items:
        item = {
            "jobArn": job_arn(call, v.record),
            "baseModelArn": _foundation_arn(call, v.record),
            "jobName": v.record.name,
            "status": job_status(v),
            "statusDetails": _details(v),
            "lastModifiedTime": _ts(v.job.updated),
            "creationTime": _ts(v.record.created),
            "endTime": _ts(v.job.ended),
            "customModelName": v.record.custom_model_name,
            "customizationType": v.record.customization_type,
        }
        if v.job.state is JobState.COMPLETE:
            item["customModelArn"] = model_arn(call, v.record)
        items.append(item)
    return page.wire("modelCustomizationJobSummaries", items)


async def stop_job(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    await _svc(call).stop_job(p["jobIdentifier"])
    return {}


# -- custom models ----------------------------------------------------------------------------------
async def _model_record(call: Call, m: CustomModel) -> JobRecord:
    return await _svc(call).job_record(m.job_id)


async def get_custom_model(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    m = await _svc(call).get_model(p["modelIdentifier"])
    r = await _model_record(call, m)
    view = await _svc(call).get_job(r.id)
    out: dict[str, Any] = {
        "modelArn": model_arn(call, r),
        "modelName": m.name,
        "jobName": r.name,
        "jobArn": job_arn(call, r),
        "baseModelArn": _foundation_arn(call, r),
        "customizationType": r.customization_type,
        "hyperParameters": dict(r.hyperparameters),
        "trainingDataConfig": {"s3Uri": r.training_uri},
        "validationDataConfig": {"validators": [{"s3Uri": u} for u in r.validation_uris]},
        "outputDataConfig": {"s3Uri": r.output_uri},
        "creationTime": _ts(m.created),
        "modelStatus": "Active",
    }
    if "loss" in view.job.figures:
        out["trainingMetrics"] = {"trainingLoss": view.job.figures["loss"]}
    if "validationLoss" in view.job.figures:
        out["validationMetrics"] = [{"validationLoss": view.job.figures["validationLoss"]}]
    return out


async def list_custom_models(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    pairs = [(m, await _model_record(call, m)) for m in await _svc(call).list_models()]
    pairs = _filter(pairs, p, lambda x: x[0].created, lambda x: x[0].name)
    if "baseModelArnEquals" in p or "foundationModelArnEquals" in p:
        want = p.get("baseModelArnEquals") or p["foundationModelArnEquals"]
        pairs = [x for x in pairs if _foundation_arn(call, x[1]) == want]
    if p.get("modelStatus") not in (None, "Active"):
        pairs = []
    page = paginate(call, p, pairs, key=lambda x: x[0].id)
    items = [
        {
            "modelArn": model_arn(call, r),
            "modelName": m.name,
            "creationTime": _ts(m.created),
            "baseModelArn": _foundation_arn(call, r),
            "baseModelName": r.base_info,
            "customizationType": r.customization_type,
            "ownerAccountId": ACCOUNT,
            "modelStatus": "Active",
        }
        for m, r in page.items
    ]
    return page.wire("modelSummaries", items)


async def delete_custom_model(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    await _svc(call).delete_model(p["modelIdentifier"])
    return {}


# -- provisioned throughput -------------------------------------------------------------------------------
def _pt_arn(call: Call, pm: Provisioned) -> str:
    return _arn(call, "provisioned-model" if pm.kind == "provisioned" else "custom-model-deployment", pm.id)


def _pt(call: Call, pm: Provisioned) -> dict[str, Any]:
    out: dict[str, Any] = {
        "provisionedModelName": pm.name,
        "provisionedModelArn": _pt_arn(call, pm),
        "modelArn": pm.model_arn,
        "desiredModelArn": pm.model_arn,
        "foundationModelArn": pm.model_arn,
        "modelUnits": pm.units,
        "desiredModelUnits": pm.units,
        "status": "InService",
        "creationTime": _ts(pm.created),
        "lastModifiedTime": _ts(pm.updated),
    }
    if pm.commitment:
        out["commitmentDuration"] = pm.commitment
    return out


_INT32 = 2**31 - 1


def _int(p: dict[str, Any], member: str, low: int, high: int, default: int) -> int:
    value = p.get(member, default)
    if not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{member} must be an integer between {low} and {high}")
    return value


async def create_pt(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    draft = Provisioned(
        id="",
        name=p["provisionedModelName"],
        kind="provisioned",
        model_arn=p["modelId"],
        serves="",
        created=0.0,
        updated=0.0,
        units=_int(p, "modelUnits", 1, _INT32, 1),
        commitment=p.get("commitmentDuration"),
    )
    pm = await _svc(call).serve(draft, p.get("clientRequestToken"))
    return {"provisionedModelArn": _pt_arn(call, pm)}


async def get_pt(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    return _pt(call, await _svc(call).get_served("provisioned", p["provisionedModelId"]))


async def list_pt(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    items = _filter(await _svc(call).list_served("provisioned"), p, lambda x: x.created, lambda x: x.name)
    if "modelArnEquals" in p:
        items = [i for i in items if i.model_arn == p["modelArnEquals"]]
    if p.get("statusEquals") not in (None, "InService"):
        items = []
    page = paginate(call, p, items, key=lambda x: x.id)
    return page.wire("provisionedModelSummaries", [_pt(call, i) for i in page.items])


async def update_pt(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    await _svc(call).update_served(
        p["provisionedModelId"], p.get("desiredProvisionedModelName"), p.get("desiredModelId")
    )
    return {}


async def delete_pt(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    await _svc(call).delete_served("provisioned", p["provisionedModelId"])
    return {}


# -- custom model deployments -----------------------------------------------------------------------------
def _dep(call: Call, d: Provisioned, summary: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "customModelDeploymentArn": _pt_arn(call, d),
        ("customModelDeploymentName" if summary else "modelDeploymentName"): d.name,
        "modelArn": d.model_arn,
        "createdAt": _ts(d.created),
        "status": "Active",
        "lastUpdatedAt": _ts(d.updated),
    }
    if not summary and d.description:
        out["description"] = d.description
    return out


async def create_deployment(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    draft = Provisioned(
        id="",
        name=p["modelDeploymentName"],
        kind="deployment",
        model_arn=p["modelArn"],
        serves="",
        created=0.0,
        updated=0.0,
        description=p.get("description", ""),
    )
    d = await _svc(call).serve(draft, p.get("clientRequestToken"))
    return {"customModelDeploymentArn": _pt_arn(call, d)}


async def get_deployment(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    return _dep(call, await _svc(call).get_served("deployment", p["customModelDeploymentIdentifier"]), False)


async def list_deployments(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    if "createdAfter" in p:
        p = {**p, "creationTimeAfter": p["createdAfter"]}
    if "createdBefore" in p:
        p = {**p, "creationTimeBefore": p["createdBefore"]}
    items = _filter(await _svc(call).list_served("deployment"), p, lambda x: x.created, lambda x: x.name)
    if "modelArnEquals" in p:
        items = [i for i in items if i.model_arn == p["modelArnEquals"]]
    if p.get("statusEquals") not in (None, "Active"):
        items = []
    page = paginate(call, p, items, key=lambda x: x.id)
    return page.wire("modelDeploymentSummaries", [_dep(call, i, True) for i in page.items])


async def delete_deployment(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    await _svc(call).delete_served("deployment", p["customModelDeploymentIdentifier"])
    return {}


_Kind = Literal["provisioned", "deployment"]
OPERATIONS = {
    ("bedrock", "CreateModelCustomizationJob"): create_job,
    ("bedrock", "GetModelCustomizationJob"): get_job,
    ("bedrock", "ListModelCustomizationJobs"): list_jobs,
    ("bedrock", "StopModelCustomizationJob"): stop_job,
    ("bedrock", "GetCustomModel"): get_custom_model,
    ("bedrock", "ListCustomModels"): list_custom_models,
    ("bedrock", "DeleteCustomModel"): delete_custom_model,
    ("bedrock", "CreateProvisionedModelThroughput"): create_pt,
    ("bedrock", "GetProvisionedModelThroughput"): get_pt,
    ("bedrock", "ListProvisionedModelThroughputs"): list_pt,
    ("bedrock", "UpdateProvisionedModelThroughput"): update_pt,
    ("bedrock", "DeleteProvisionedModelThroughput"): delete_pt,
    ("bedrock", "CreateCustomModelDeployment"): create_deployment,
    ("bedrock", "GetCustomModelDeployment"): get_deployment,
    ("bedrock", "ListCustomModelDeployments"): list_deployments,
    ("bedrock", "DeleteCustomModelDeployment"): delete_deployment,
}
