"""Custom model import: a GGUF in S3 becomes a model served by its ARN (``…:imported-model/<id>``).

An import job (job-engine kind ``"import"``) copies the GGUF out of S3 into
``$HANIWA_HOME/imports/<model id>.gguf`` (checking its ``GGUF`` magic), then lists the model and adds it
to the catalog with an alias from its id, so InvokeModel and Converse reach it by ARN. The source is an
``.gguf`` object or a prefix holding one, or a prefix holding a Hugging Face folder (``config.json``,
``*.safetensors``, ``tokenizer.json``, ``tokenizer_config.json``): the job copies it beside the import and
writes it as a GGUF (:mod:`haniwa.customization.hfconvert`, tensor by tensor off the event loop, progress
in bytes written), for the architectures that module lists; any other fails naming the supported ones.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
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
# what is copied out of a Hugging Face folder besides its *.safetensors
_HF_FILES = {
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",  # where transformers 5 saves the chat template
    "chat_template.json",
}


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
        bucket, key, folder = await self._locate(record.source_uri)
        dest = self.settings.home / "imports" / f"{record.model_id}.gguf"
        dest.parent.mkdir(parents=True, exist_ok=True)
        if folder:
            await self._convert(bucket, key, folder, dest, ctx)
        else:
            await self._copy(bucket, key, dest, ctx)
        model = ImportedModel(
            record.model_id, record.model_name, record.id, str(dest), _architecture(dest), time.time()
        )
        await self.db.execute(
            "INSERT INTO imported_models (id, name, client_token, data, created) VALUES (?,?,?,?,?)",
            (model.id, model.name, None, _dump(model), model.created),
        )
        self._serve(model)

    async def _copy(self, bucket: str, key: str, dest: Path, ctx: JobContext, magic: bool = True) -> None:
        """The object's bytes into ``dest`` (atomically), checking the GGUF magic unless told not to."""
        tmp = dest.with_name(dest.name + ".part")
        info, body = await self.store.open(bucket, key)
        await ctx.report(done=0, total=info.size, message=f"copying s3://{bucket}/{key}")
        copied = 0
        with tmp.open("wb") as f:
            async for chunk in body:
                if magic and copied == 0 and not chunk.startswith(b"GGUF"):
                    raise ValidationError(f"s3://{bucket}/{key} is not a GGUF file (no GGUF magic)")
                await asyncio.to_thread(f.write, chunk)
                before, copied = copied, copied + len(chunk)
                ctx.check()
                if copied // _REPORT_EVERY != before // _REPORT_EVERY:
                    await ctx.report(done=copied)
        os.replace(tmp, dest)

    async def _convert(self, bucket: str, prefix: str, keys: list[str], dest: Path, ctx: JobContext) -> None:
        """A Hugging Face folder under ``prefix``: its files copied locally, then written as a GGUF."""
        from haniwa.customization.hfconvert import Conversion, check_architecture

        local = dest.with_name(dest.stem + ".hf")
        await asyncio.to_thread(shutil.rmtree, local, True)
        local.mkdir()
        try:
            await self._copy(bucket, prefix + "config.json", local / "config.json", ctx, magic=False)
            check_architecture(local / "config.json")  # fail before copying gigabytes of weights
            for key in keys:
                name = key[len(prefix) :]
                if name != "config.json":
                    await self._copy(bucket, key, local / name, ctx, magic=False)
            conversion = await asyncio.to_thread(Conversion, local, dest)
            await ctx.report(
                done=0,
                total=conversion.total_bytes,
                message=f"converting {conversion.architecture} to GGUF ({len(conversion.tensors)} tensors)",
            )
            try:
                await asyncio.to_thread(conversion.start)
                written = 0
                for i in range(len(conversion.tensors)):
                    ctx.check()
                    before = written
                    written += await asyncio.to_thread(conversion.write, i)
                    if written // _REPORT_EVERY != before // _REPORT_EVERY:
                        await ctx.report(done=written)
                await asyncio.to_thread(conversion.finish)
            except BaseException:
                await asyncio.to_thread(conversion.abandon)
                raise
            await ctx.report(done=written)
        finally:
            await asyncio.to_thread(shutil.rmtree, local, True)

    async def _locate(self, uri: str) -> tuple[str, str, list[str]]:
        """The GGUF object ``uri`` names (itself, or the one GGUF under it as a prefix) as
        ``(bucket, key, [])``, or a Hugging Face folder as ``(bucket, prefix, [the keys to copy])``."""
        bucket, key = split_uri(uri, "modelDataSource.s3DataSource.s3Uri")
        try:
            if key and not key.endswith("/"):
                await self.store.head(bucket, key)
                return bucket, key, []
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
            return bucket, ggufs[0], []
        if ggufs:
            raise ValidationError(f"{uri} holds {len(ggufs)} GGUF files; name one")
        if prefix + "config.json" in keys:
            top = [k for k in keys if "/" not in k[len(prefix) :]]
            wanted = [k for k in top if k[len(prefix) :] in _HF_FILES or k.endswith(".safetensors")]
            if not any(k.endswith(".safetensors") for k in wanted):
                raise ValidationError(f"{uri} is a Hugging Face folder without .safetensors weights")
            return bucket, prefix, wanted
        raise ValidationError(f"{uri} holds no .gguf file and no Hugging Face folder (config.json)")


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
