"""Customization's state: jobs, custom models, provisioned throughput and deployments (SQLite rows), and
the serving of custom models through the model registry.

A job is a :class:`JobRecord` row plus a job-engine job of kind ``"training"`` (its state, progress and
checkpoint). When it completes, its custom model is listed; provisioning throughput for it (or creating a
custom-model deployment) adds a catalog entry — the base GGUF with the adapter's ``lora_path`` — and an
alias from the provisioned model's id (or the deployment's) to it, so InvokeModel, Converse and the
playground reach it by ARN like any model.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import string
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from haniwa.config import Settings
from haniwa.customization.base import (
    CustomModel,
    JobRecord,
    Provisioned,
    family_of,
    parse_hyperparameters,
)
from haniwa.customization.compare import served_model
from haniwa.customization.data import parse_lines
from haniwa.customization.s3io import read_text, split_uri
from haniwa.customization.training import TRAINING, TrainingWork, job_folder
from haniwa.errors import ConflictError, NotFoundError, ValidationError
from haniwa.jobs.base import Job
from haniwa.jobs.engine import JobEngine
from haniwa.runtime.registry import Alias, ModelRegistry
from haniwa.s3.base import NoSuchBucketError, NoSuchKeyError, ObjectStore
from haniwa.store.db import Database

__all__ = ["CustomizationService", "JobView", "new_id", "CHEAP_CHECK_BYTES"]

CHEAP_CHECK_BYTES = 8 * 1024 * 1024  # data files up to this size are checked at create time
_ALPHABET = string.ascii_lowercase + string.digits
R = TypeVar("R", JobRecord, CustomModel, Provisioned)


def new_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(12))


@dataclasses.dataclass(frozen=True)
class JobView:
    """A job's record and its engine job (state, progress, failure)."""

    record: JobRecord
    job: Job


_TABLES: Mapping[type, str] = {
    JobRecord: "customization_jobs",
    CustomModel: "custom_models",
}


def _load(cls: type[R], row: Mapping[str, Any]) -> R:
    data = json.loads(row["data"])
    for f in dataclasses.fields(cls):
        if f.name == "validation_uris":
            data[f.name] = tuple(data[f.name])
    return cls(**data)


class CustomizationService:
    def __init__(
        self, settings: Settings, registry: ModelRegistry, db: Database, jobs: JobEngine, store: ObjectStore
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.db = db
        self.jobs = jobs
        self.store = store
        jobs.register(TRAINING, TrainingWork(settings, registry, store, self.job_record, self.add_model))

    # -- jobs -----------------------------------------------------------------------------------------
    async def create_job(self, draft: JobRecord) -> JobRecord:
        """Check and queue ``draft`` (its ``id``/``engine_id``/``custom_model_id`` are filled here).
        A repeated ``client_token`` returns the job it created; a taken name is a ConflictError."""
        if draft.client_token:
            rows = await self.db.query(
                "SELECT * FROM customization_jobs WHERE client_token = ?", (draft.client_token,)
            )
            if rows:
                return _load(JobRecord, rows[0])
        for table, name in (("customization_jobs", draft.name), ("custom_models", draft.custom_model_name)):
            if await self.db.query(f"SELECT id FROM {table} WHERE name = ?", (name,)):
                what = "job" if table == "customization_jobs" else "custom model"
                raise ConflictError(f"a {what} named {name!r} already exists")
        parse_hyperparameters(family_of(draft.base_model), draft.hyperparameters)
        split_uri(draft.output_uri, "outputDataConfig.s3Uri")
        await self._check_data(draft.training_uri, "trainingDataConfig.s3Uri", draft.customization_type)
        for uri in draft.validation_uris:
            kind = "FINE_TUNING" if draft.customization_type == "DISTILLATION" else draft.customization_type
            await self._check_data(uri, "validationDataConfig.validators[].s3Uri", kind)
        if draft.teacher is not None:
            self.registry.resolve(draft.teacher)
        record = dataclasses.replace(draft, id=new_id(), custom_model_id=new_id(), created=time.time())
        await self.db.execute(
            "INSERT INTO customization_jobs (id, name, client_token, data, created) VALUES (?,?,?,?,?)",
            (record.id, record.name, record.client_token, _dump(record), record.created),
        )
        job = await self.jobs.submit(TRAINING, name=record.name, spec={"customizationJobId": record.id})
        record = dataclasses.replace(record, engine_id=job.id)
        await self._save(record)
        return record

    async def _check_data(self, uri: str, what: str, kind: str) -> None:
        bucket, key = split_uri(uri, what)
        try:
            info = await self.store.head(bucket, key)
        except (NoSuchKeyError, NoSuchBucketError):
            raise ValidationError(f"{what}: {uri} does not exist") from None
        if info.size <= CHEAP_CHECK_BYTES:
            parse_lines((await read_text(self.store, uri, what)).splitlines(), kind, uri)

    async def _save(self, record: JobRecord | CustomModel) -> None:
        table = _TABLES[type(record)]
        await self.db.execute(
            f"UPDATE {table} SET data = ? WHERE id = ?",
            (_dump(record), record.id),
        )

    async def job_record(self, job_id: str) -> JobRecord:
        rows = await self.db.query("SELECT * FROM customization_jobs WHERE id = ?", (job_id,))
        if not rows:
            raise NotFoundError(f"model customization job {job_id!r} does not exist")
        return _load(JobRecord, rows[0])

    async def get_job(self, identifier: str) -> JobView:
        """By id, ARN or name."""
        key = identifier.rsplit("/", 1)[-1]
        rows = await self.db.query(
            "SELECT * FROM customization_jobs WHERE id = ? OR name = ?", (key, identifier)
        )
        if not rows:
            raise NotFoundError(f"model customization job {identifier!r} does not exist")
        record = _load(JobRecord, rows[0])
        return JobView(record, await self.jobs.get(record.engine_id))

    async def list_jobs(self) -> list[JobView]:
        rows = await self.db.query("SELECT * FROM customization_jobs ORDER BY created, id")
        engine = {j.id: j for j in await self.jobs.find(TRAINING)}
        out = []
        for row in rows:
            record = _load(JobRecord, row)
            if record.engine_id in engine:
                out.append(JobView(record, engine[record.engine_id]))
        return out

    async def stop_job(self, identifier: str) -> None:
        view = await self.get_job(identifier)
        await self.jobs.stop(view.record.engine_id)

    def comparison(self, job_id: str) -> dict[str, Any] | None:
        path = job_folder(self.settings, job_id) / "comparison.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    async def add_model(self, record: JobRecord, adapter: Path) -> None:
        """List ``record``'s custom model, served from the LoRA GGUF ``adapter`` (a completed job's)."""
        if await self.db.query("SELECT id FROM custom_models WHERE id = ?", (record.custom_model_id,)):
            return
        model = CustomModel(
            record.custom_model_id, record.custom_model_name, record.id, str(adapter), time.time()
        )
        await self.db.execute(
            "INSERT INTO custom_models (id, name, client_token, data, created) VALUES (?,?,?,?,?)",
            (model.id, model.name, None, _dump(model), model.created),
        )

    # -- custom models ----------------------------------------------------------------------------------
    async def list_models(self) -> list[CustomModel]:
        rows = await self.db.query("SELECT * FROM custom_models ORDER BY created, id")
        return [_load(CustomModel, r) for r in rows]

    async def get_model(self, identifier: str) -> CustomModel:
        """By id, ARN (``…:custom-model/<base>/<id>``) or name."""
        key = identifier.rsplit("/", 1)[-1]
        rows = await self.db.query("SELECT * FROM custom_models WHERE id = ? OR name = ?", (key, identifier))
        if not rows:
            raise NotFoundError(f"custom model {identifier!r} does not exist")
        return _load(CustomModel, rows[0])

    async def delete_model(self, identifier: str) -> None:
        model = await self.get_model(identifier)
        users = [p.name for p in await self.list_served() if p.serves == f"llamacpp:custom-{model.id}"]
        if users:
            raise ConflictError(
                f"custom model {model.name} is in use by {', '.join(users)}; delete them first"
            )
        await self.db.execute("DELETE FROM custom_models WHERE id = ?", (model.id,))
        self.registry.remove_model(f"llamacpp:custom-{model.id}")

    # -- provisioned throughput and deployments ---------------------------------------------------------
    def _table(self, kind: str) -> str:
        return "provisioned_models" if kind == "provisioned" else "custom_model_deployments"

    async def serve(self, draft: Provisioned, client_token: str | None) -> Provisioned:
        """Provision ``draft.model_arn`` (a custom model, or a foundation model id) under a new id."""
        table = self._table(draft.kind)
        if client_token:
            rows = await self.db.query(f"SELECT * FROM {table} WHERE client_token = ?", (client_token,))
            if rows:
                return _served(rows[0])
        if await self.db.query(f"SELECT id FROM {table} WHERE name = ?", (draft.name,)):
            raise ConflictError(f"{draft.name!r} already exists")
        serves = await self._target(draft.model_arn, draft.kind)
        now = time.time()
        record = dataclasses.replace(draft, id=new_id(), serves=serves, created=now, updated=now)
        await self.db.execute(
            f"INSERT INTO {table} (id, name, client_token, data, created) VALUES (?,?,?,?,?)",
            (record.id, record.name, client_token, json.dumps(dataclasses.asdict(record)), now),
        )
        self._route(record)
        return record

    async def _target(self, model_arn: str, kind: str) -> str:
        if ":custom-model/" in model_arn or re.fullmatch(r"[a-z0-9]{12}", model_arn):
            model = await self.get_model(model_arn)
            record = await self.job_record(model.job_id)
            return served_model(self.registry, record, Path(model.adapter)).id
        if kind == "deployment":
            raise ValidationError(f"modelArn must be a custom model's ARN, not {model_arn!r}")
        return self.registry.resolve(model_arn).info.id

    def _route(self, record: Provisioned) -> None:
        self._unroute(record.id)
        self.registry.add_alias(Alias(record.id, record.serves, description=record.name))

    async def get_served(self, kind: Literal["provisioned", "deployment"], identifier: str) -> Provisioned:
        key = identifier.rsplit("/", 1)[-1]
        table = self._table(kind)
        rows = await self.db.query(f"SELECT * FROM {table} WHERE id = ? OR name = ?", (key, identifier))
        if not rows:
            what = "provisioned model" if kind == "provisioned" else "custom model deployment"
            raise NotFoundError(f"{what} {identifier!r} does not exist")
        return _served(rows[0])

    async def list_served(self, kind: str | None = None) -> list[Provisioned]:
        kinds = [kind] if kind else ["provisioned", "deployment"]
        out: list[Provisioned] = []
        for k in kinds:
            out += [
                _served(r) for r in await self.db.query(f"SELECT * FROM {self._table(k)} ORDER BY created")
            ]
        return out

    async def update_served(self, identifier: str, name: str | None, model_arn: str | None) -> Provisioned:
        record = await self.get_served("provisioned", identifier)
        if name and name != record.name:
            if await self.db.query("SELECT id FROM provisioned_models WHERE name = ?", (name,)):
                raise ConflictError(f"{name!r} already exists")
            record = dataclasses.replace(record, name=name)
        if model_arn:
            serves = await self._target(model_arn, "provisioned")
            record = dataclasses.replace(record, model_arn=model_arn, serves=serves)
        record = dataclasses.replace(record, updated=time.time())
        await self.db.execute(
            "UPDATE provisioned_models SET name = ?, data = ? WHERE id = ?",
            (record.name, json.dumps(dataclasses.asdict(record)), record.id),
        )
        self._route(record)
        return record

    async def delete_served(self, kind: Literal["provisioned", "deployment"], identifier: str) -> None:
        record = await self.get_served(kind, identifier)
        await self.db.execute(f"DELETE FROM {self._table(kind)} WHERE id = ?", (record.id,))
        self._unroute(record.id)

    def _unroute(self, served_id: str) -> None:
        self.registry.aliases = [a for a in self.registry.aliases if a.pattern != served_id]

    async def recover(self) -> None:
        """At start-up: route every provisioned model and deployment again."""
        for record in await self.list_served():
            try:
                record = dataclasses.replace(record, serves=await self._target(record.model_arn, record.kind))
            except (NotFoundError, ValidationError):
                continue
            self._route(record)

    async def served_ids(self) -> Sequence[str]:
        return [p.id for p in await self.list_served()]


def _dump(record: Any) -> str:
    return json.dumps(dataclasses.asdict(record), ensure_ascii=False)


def _served(row: Mapping[str, Any]) -> Provisioned:
    return Provisioned(**json.loads(row["data"]))
