"""Custom model import: a GGUF in S3 becomes a model served by its ARN (``…:imported-model/<id>``).

An import job (job-engine kind ``"import"``) copies the GGUF out of S3 into
``$HANIWA_HOME/imports/<model id>.gguf`` (checking its ``GGUF`` magic), then lists the model and adds it
to the catalog with an alias from its id, so InvokeModel and Converse reach it by ARN. The source is an
``.gguf`` object or a prefix holding one. A Hugging Face folder (``config.json`` + safetensors) is refused
with what to do: llama.cpp's ``convert_hf_to_gguf.py`` makes the GGUF to import.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from haniwa.config import Settings
from haniwa.customization.s3io import split_uri
from haniwa.errors import ConflictError, NotFoundError, ValidationError
from haniwa.jobs.base import Job, JobContext
from haniwa.jobs.engine import JobEngine
from haniwa.runtime.base import ModelInfo
from haniwa.runtime.registry import Alias, ModelRegistry
from haniwa.s3.base import NoSuchBucketError, NoSuchKeyError, ObjectStore
from haniwa.store.db import Database

__all__ = ["ImportRecord", "ImportedModel", "ImportService", "IMPORT"]

IMPORT = "import"
_REPORT_EVERY = 32 * 1024 * 1024  # bytes copied between two progress reports


@dataclasses.dataclass(frozen=True)
class ImportRecord:
    id: str
    name: str
    model_name: str
    model_id: str
    source_uri: str
    role_arn: str
    created: float
    engine_id: str = ""
    client_token: str | None = None


@dataclasses.dataclass(frozen=True)
class ImportedModel:
    id: str
    name: str
    job_id: str
    path: str
    architecture: str
    created: float


def _dump(record: Any) -> str:
    return json.dumps(dataclasses.asdict(record), ensure_ascii=False)


class ImportService:
    def __init__(
        self, settings: Settings, registry: ModelRegistry, db: Database, jobs: JobEngine, store: ObjectStore
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.db = db
        self.jobs = jobs
        self.store = store
        jobs.register(IMPORT, self._work)

    async def create(self, draft: ImportRecord, new_id: str, model_id: str) -> ImportRecord:
        if draft.client_token:
            rows = await self.db.query(
                "SELECT * FROM model_import_jobs WHERE client_token = ?", (draft.client_token,)
            )
            if rows:
                return ImportRecord(**json.loads(rows[0]["data"]))
        for table, name in (("model_import_jobs", draft.name), ("imported_models", draft.model_name)):
            if await self.db.query(f"SELECT id FROM {table} WHERE name = ?", (name,)):
                raise ConflictError(f"{name!r} already exists")
        split_uri(draft.source_uri, "modelDataSource.s3DataSource.s3Uri")
        record = dataclasses.replace(draft, id=new_id, model_id=model_id, created=time.time())
        await self.db.execute(
            "INSERT INTO model_import_jobs (id, name, client_token, data, created) VALUES (?,?,?,?,?)",
            (record.id, record.name, record.client_token, _dump(record), record.created),
        )
        job = await self.jobs.submit(IMPORT, name=record.name, spec={"importJobId": record.id})
        record = dataclasses.replace(record, engine_id=job.id)
        await self.db.execute(
            "UPDATE model_import_jobs SET data = ? WHERE id = ?", (_dump(record), record.id)
        )
        return record

    async def get_job(self, identifier: str) -> tuple[ImportRecord, Job]:
        key = identifier.rsplit("/", 1)[-1]
        rows = await self.db.query(
            "SELECT * FROM model_import_jobs WHERE id = ? OR name = ?", (key, identifier)
        )
        if not rows:
            raise NotFoundError(f"model import job {identifier!r} does not exist")
        record = ImportRecord(**json.loads(rows[0]["data"]))
        return record, await self.jobs.get(record.engine_id)

    async def list_jobs(self) -> list[tuple[ImportRecord, Job]]:
        engine = {j.id: j for j in await self.jobs.find(IMPORT)}
        out = []
        for row in await self.db.query("SELECT * FROM model_import_jobs ORDER BY created, id"):
            record = ImportRecord(**json.loads(row["data"]))
            if record.engine_id in engine:
                out.append((record, engine[record.engine_id]))
        return out

    async def get_model(self, identifier: str) -> ImportedModel:
        key = identifier.rsplit("/", 1)[-1]
        rows = await self.db.query(
            "SELECT * FROM imported_models WHERE id = ? OR name = ?", (key, identifier)
        )
        if not rows:
            raise NotFoundError(f"imported model {identifier!r} does not exist")
        return ImportedModel(**json.loads(rows[0]["data"]))

    async def list_models(self) -> list[ImportedModel]:
        rows = await self.db.query("SELECT * FROM imported_models ORDER BY created, id")
        return [ImportedModel(**json.loads(r["data"])) for r in rows]

    async def delete_model(self, identifier: str) -> None:
        model = await self.get_model(identifier)
        await self.db.execute("DELETE FROM imported_models WHERE id = ?", (model.id,))
        self.registry.remove_model(_info_id(model.id))
        Path(model.path).unlink(missing_ok=True)

    async def recover(self) -> None:
        for model in await self.list_models():
            self._serve(model)

    def _serve(self, model: ImportedModel) -> None:
        info = ModelInfo(
            id=_info_id(model.id),
            backend="llamacpp",
            kind="chat",
            options={"path": model.path},
            name=f"{model.name} (imported)",
            provider="haniwa",
            description=f"imported {model.architecture} GGUF",
        )
        self.registry.add_model(info)
        self.registry.add_alias(Alias(model.id, info.id, description=model.name))

    # -- the job ---------------------------------------------------------------------------------------
    async def _work(self, job: Job, ctx: JobContext) -> None:
        rows = await self.db.query(
            "SELECT data FROM model_import_jobs WHERE id = ?", (job.spec["importJobId"],)
        )
        record = ImportRecord(**json.loads(rows[0]["data"]))
        bucket, key = await self._locate(record.source_uri)
        dest = self.settings.home / "imports" / f"{record.model_id}.gguf"
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".part")
        info, body = await self.store.open(bucket, key)
        await ctx.report(done=0, total=info.size, message=f"copying s3://{bucket}/{key}")
        copied = 0
        with tmp.open("wb") as f:
            async for chunk in body:
                if copied == 0 and not chunk.startswith(b"GGUF"):
                    raise ValidationError(f"s3://{bucket}/{key} is not a GGUF file (no GGUF magic)")
                await asyncio.to_thread(f.write, chunk)
                before, copied = copied, copied + len(chunk)
                ctx.check()
                if copied // _REPORT_EVERY != before // _REPORT_EVERY:
                    await ctx.report(done=copied)
        os.replace(tmp, dest)
        model = ImportedModel(
            record.model_id, record.model_name, record.id, str(dest), _architecture(dest), time.time()
        )
        await self.db.execute(
            "INSERT INTO imported_models (id, name, client_token, data, created) VALUES (?,?,?,?,?)",
            (model.id, model.name, None, _dump(model), model.created),
        )
        self._serve(model)

    async def _locate(self, uri: str) -> tuple[str, str]:
        """The GGUF object ``uri`` names: itself, or the one GGUF under it as a prefix."""
        bucket, key = split_uri(uri, "modelDataSource.s3DataSource.s3Uri")
        try:
            if key and not key.endswith("/"):
                await self.store.head(bucket, key)
                return bucket, key
        except NoSuchKeyError:
            pass
        prefix = key if not key or key.endswith("/") else key + "/"
        try:
            listing = await self.store.list(bucket, prefix, limit=1000)
        except NoSuchBucketError:
            raise ValidationError(f"{uri}: the bucket does not exist") from None
        keys = [o.key for o in listing.objects]
        ggufs = [k for k in keys if k.endswith(".gguf")]
        if len(ggufs) == 1:
            return bucket, ggufs[0]
        if ggufs:
            raise ValidationError(f"{uri} holds {len(ggufs)} GGUF files; name one")
        if any(k.endswith("config.json") for k in keys):
            raise ValidationError(
                f"{uri} is a Hugging Face folder; haniwa serves GGUF: convert it with llama.cpp's"
                " convert_hf_to_gguf.py and import the .gguf"
            )
        raise ValidationError(f"{uri} holds no .gguf file")


def _info_id(model_id: str) -> str:
    return f"llamacpp:imported-{model_id}"


def _architecture(path: Path) -> str:
    """``general.architecture`` of a GGUF (``llama``, ``qwen2``, …), or ``unknown``."""
    try:
        import gguf

        reader = gguf.GGUFReader(str(path))
        field = reader.fields.get("general.architecture")
        if field is None:
            return "unknown"
        return bytes(field.parts[field.data[0]]).decode("utf-8", "replace")
    except Exception:  # a GGUF llama.cpp may still load; the architecture is only reported
        return "unknown"
