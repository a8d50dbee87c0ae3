"""A customization job's work on the job engine (kind ``"training"``, one at a time by default).

Phases, each resumable: the data (read from S3, checked line by line, and for DISTILLATION answered by
the teacher) is written to the job's folder ``$HANIWA_HOME/customization/<job id>/``; the training runs in
a child process (:mod:`haniwa.customization.trainer`) whose progress lines become the job's progress
(step/total, loss, an ETA) and whose checkpoints become the job's checkpoint; then the adapter becomes a
LoRA GGUF, the before/after comparison runs on it through llama.cpp, and the metrics CSVs are written to
``<output s3Uri>/model-customization-job-<job id>/``.

A kill of the server kills the child (it watches its stdin); the engine queues the job again at the next
start, and the child resumes from the checkpoint it last wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import math
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from haniwa.config import Settings
from haniwa.customization.adapters import convert
from haniwa.customization.base import JobRecord, parse_hyperparameters
from haniwa.customization.compare import compare
from haniwa.customization.data import DataError, parse_lines
from haniwa.customization.s3io import read_text, write_bytes
from haniwa.errors import ModelError, PlatformError
from haniwa.jobs.base import Job, JobContext, JobStopped
from haniwa.runtime import bundled
from haniwa.runtime.base import ChatRequest, InferenceParams, Message, TextBlock
from haniwa.runtime.registry import ModelRegistry
from haniwa.s3.base import ObjectStore

__all__ = ["TrainingWork", "TRAINING", "job_folder", "output_prefix"]

TRAINING = "training"
CHECKPOINT_EVERY = 10


def job_folder(settings: Settings, job_id: str) -> Path:
    return settings.home / "customization" / job_id


def output_prefix(record: JobRecord) -> str:
    return f"{record.output_uri.rstrip('/')}/model-customization-job-{record.id}"


def _csv(header: list[str], rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


class TrainingWork:
    """The ``training`` kind's work; ``record_of`` reads a job's record, ``on_complete`` lists its model."""

    def __init__(
        self,
        settings: Settings,
        registry: ModelRegistry,
        store: ObjectStore,
        record_of: Callable[[str], Awaitable[JobRecord]],
        on_complete: Callable[[JobRecord, Path], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.store = store
        self._record_of = record_of
        self._on_complete = on_complete

    async def __call__(self, job: Job, ctx: JobContext) -> None:
        record = await self._record_of(job.spec["customizationJobId"])
        folder = job_folder(self.settings, record.id)
        folder.mkdir(parents=True, exist_ok=True)
        await ctx.report(message="reading the training data")
        await self._prepare(record, folder, ctx)
        ctx.check()
        if not (folder / "adapter" / "adapter_model.safetensors").exists():
            await self._train(record, folder, ctx)
        ctx.check()
        await ctx.report(message="converting the adapter for llama.cpp")
        gguf = folder / "adapter.gguf"
        if not gguf.exists():
            await asyncio.to_thread(convert, folder / "adapter", gguf)
        await ctx.report(message="comparing the base model with the custom model")
        comparison = folder / "comparison.json"
        if not comparison.exists():
            result = await compare(self.registry, record, gguf, folder / "valid.jsonl")
            comparison.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
        await self._write_outputs(record, folder)
        await self._on_complete(record, gguf)
        await ctx.report(message="completed")

    # -- data ---------------------------------------------------------------------------------------
    async def _prepare(self, record: JobRecord, folder: Path, ctx: JobContext) -> None:
        train = folder / "train.jsonl"
        if not train.exists():
            text = await read_text(self.store, record.training_uri, "trainingDataConfig.s3Uri")
            rows = parse_lines(text.splitlines(), record.customization_type, record.training_uri)
            if record.customization_type == "DISTILLATION":
                rows = await self._distil(record, rows, ctx)
            _write_jsonl(train, rows)
        valid = folder / "valid.jsonl"
        if not valid.exists():
            rows = []
            for uri in record.validation_uris:
                text = await read_text(self.store, uri, "validationDataConfig.validators[].s3Uri")
                kind = "FINE_TUNING" if record.customization_type == "DISTILLATION" else None
                rows += parse_lines(text.splitlines(), kind or record.customization_type, uri)
            _write_jsonl(valid, rows)

    async def _distil(
        self, record: JobRecord, rows: list[dict[str, Any]], ctx: JobContext
    ) -> list[dict[str, Any]]:
        """The teacher answers every prompt; the student learns the teacher's answers."""
        assert record.teacher is not None
        _, teacher = await self.registry.chat(record.teacher)
        out = []
        for n, row in enumerate(rows, 1):
            ctx.check()
            if "text" in row:
                raise DataError(f"{record.training_uri}: distillation needs prompts, not {{'input'}} lines")
            req = ChatRequest(
                messages=tuple(Message(t["role"], (TextBlock(t["content"]),)) for t in row["turns"]),
                system=row["system"] or None,
                params=InferenceParams(max_tokens=record.teacher_max_tokens, temperature=0.0),
            )
            try:
                answer = (await teacher.converse(req)).message.text
            except PlatformError as exc:
                raise ModelError(f"the teacher {record.teacher} failed on prompt {n}: {exc.message}") from exc
            out.append({**row, "completion": answer})
            await ctx.report(message=f"the teacher answered {n} of {len(rows)} prompts")
        return out

    # -- training -----------------------------------------------------------------------------------
    def _spec(self, record: JobRecord, folder: Path) -> dict[str, Any]:
        hp = parse_hyperparameters_of(record)
        return {
            "workdir": str(folder),
            "gguf": str(bundled.ensure(record.bundle, self.settings.models_dir)),
            "base_dir": str(self.settings.models_dir / "hf" / record.bundle),
            "train": str(folder / "train.jsonl"),
            "valid": str(folder / "valid.jsonl") if (folder / "valid.jsonl").stat().st_size else None,
            "rank": hp.lora.rank,
            "alpha": hp.lora.alpha,
            "target_modules": list(hp.lora.target_modules),
            "learning_rate": hp.lora_learning_rate,
            "epochs": hp.epochs,
            "batch_size": hp.batch_size,
            "warmup_steps": hp.warmup_steps,
            "max_length": hp.max_length,
            "checkpoint_every": CHECKPOINT_EVERY,
            "threads": self.settings.threads or 0,
        }

    async def _train(self, record: JobRecord, folder: Path, ctx: JobContext) -> None:
        ctx.check()
        spec_path = folder / "spec.json"
        spec = await asyncio.to_thread(self._spec, record, folder)
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        ctx.check()
        steps = _read_steps(folder)
        figures: dict[str, float] = {}
        await ctx.report(message="loading the base model (dequantized once, then cached)")
        with (folder / "trainer.log").open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "haniwa.customization.trainer",
                str(spec_path),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
                limit=1 << 20,
            )
        assert proc.stdout is not None
        error = ""
        try:
            while True:
                try:
                    line = await asyncio.wait_for(proc.stdout.readline(), 0.5)
                except TimeoutError:
                    if ctx.stopping:
                        raise JobStopped from None
                    continue
                if not line:
                    break
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                kind = event.get("event")
                if kind == "start":
                    steps = [s for s in steps if s[0] <= event["step"]]
                    figures.update(step=event["step"], totalSteps=event["total"])
                    if event["step"]:
                        figures["resumedFrom"] = event["step"]
                    await ctx.report(done=event["step"], total=event["total"], message="training")
                elif kind == "step":
                    steps.append(
                        [event["step"], event["epoch"], event["loss"], math.exp(min(event["loss"], 50))]
                    )
                    if "firstStepSeconds" not in figures:
                        figures.update(firstStepSeconds=event["seconds"], firstStepTokens=event["tokens"])
                    figures.update(
                        step=event["step"],
                        totalSteps=event["total"],
                        epoch=event["epoch"],
                        loss=event["loss"],
                        tokens=figures.get("tokens", 0) + event["tokens"],
                        trainSeconds=figures.get("trainSeconds", 0) + event["seconds"],
                        secondsPerStep=event["seconds"],
                    )
                    _write_steps(folder, steps)
                    await ctx.report(done=event["step"], total=event["total"], figures=figures)
                elif kind == "checkpoint":
                    await ctx.report(checkpoint=json.dumps({"step": event["step"]}).encode())
                elif kind == "validation":
                    figures["validationLoss"] = event["loss"]
                    (folder / "validation_loss.json").write_text(json.dumps(event["loss"]), encoding="utf-8")
                    await ctx.report(figures=figures)
                elif kind == "error":
                    error = event["message"]
                if ctx.stopping:
                    raise JobStopped
            code = await proc.wait()
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if code != 0:
            raise ModelError(f"training failed: {error or f'the trainer exited with status {code}'}")

    # -- outputs ------------------------------------------------------------------------------------
    async def _write_outputs(self, record: JobRecord, folder: Path) -> None:
        prefix = output_prefix(record)
        steps = _read_steps(folder)
        header = ["step_number", "epoch_number", "training_loss", "perplexity"]
        await write_bytes(
            self.store,
            f"{prefix}/training_artifacts/step_wise_training_metrics.csv",
            _csv(header, steps),
            "text/csv",
        )
        comparison = json.loads((folder / "comparison.json").read_text(encoding="utf-8"))
        loss_file = folder / "validation_loss.json"
        loss = json.loads(loss_file.read_text(encoding="utf-8")) if loss_file.exists() else None
        if loss is not None:
            last = steps[-1] if steps else [0, 0]
            body = _csv(
                ["step_number", "epoch_number", "validation_loss", "perplexity"],
                [[last[0], last[1], loss, math.exp(min(loss, 50))]],
            )
            for key in ("validation_artifacts/post_fine_tuning_validation", "validation_artifacts"):
                await write_bytes(self.store, f"{prefix}/{key}/validation_metrics.csv", body, "text/csv")
        await write_bytes(
            self.store,
            f"{prefix}/validation_artifacts/before_after.json",
            json.dumps(comparison, ensure_ascii=False, indent=1).encode("utf-8"),
            "application/json",
        )


def parse_hyperparameters_of(record: JobRecord) -> Any:
    from haniwa.customization.base import family_of

    return parse_hyperparameters(family_of(record.base_model), record.hyperparameters)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)


def _read_steps(folder: Path) -> list[list[Any]]:
    path = folder / "steps.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []


def _write_steps(folder: Path, steps: list[list[Any]]) -> None:
    tmp = folder / "steps.json.tmp"
    tmp.write_text(json.dumps(steps), encoding="utf-8")
    tmp.replace(folder / "steps.json")


def read_steps(settings: Settings, job_id: str) -> list[list[Any]]:
    """The (step, epoch, loss, perplexity) rows written so far (for the loss curve)."""
    return _read_steps(job_folder(settings, job_id))
