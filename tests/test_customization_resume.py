"""A real ``haniwa serve`` killed with SIGKILL in the middle of a training job: the trainer child goes too,
and after a restart the job resumes from its last checkpoint (not from step 0); a second job waits for the
one training slot; Stop stops a running job and its trainer.

The training here is real (the trainer child, PEFT, checkpoints) on a tiny randomly initialised Qwen2 put
where the dequantized base is cached, so it runs in seconds; it needs the bundled 0.5B's GGUF and
tokenizer only (hence the ``model`` marker).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from haniwa.runtime import bundled
from haniwa.testing.server import serve_in_process
from tests.conftest import client_kwargs
from tests.needs import MODELS_DIR, bundled_weights_missing, need

pytestmark = pytest.mark.model
BUNDLE = "qwen2.5-coder-0.5b"


def _tiny_base(models: Path) -> None:
    """models/<gguf> (a link to the real one) and models/hf/<bundle>: a tiny Qwen2 with the real tokenizer."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    gguf = bundled.ensure(BUNDLE, MODELS_DIR)
    models.mkdir()
    (models / gguf.name).symlink_to(gguf)
    cached = MODELS_DIR / "hf" / BUNDLE
    tok = (
        AutoTokenizer.from_pretrained(str(cached))
        if (cached / "tokenizer.json").exists()
        else AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    )
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    folder = models / "hf" / BUNDLE
    Qwen2ForCausalLM(cfg).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))


def _start(home: Path, port: int) -> subprocess.Popen[bytes]:
    return serve_in_process(home, port, timeout=120, HANIWA_THREADS="1")


def _trainers(home: Path) -> list[int]:
    """Pids of trainer processes working in ``home``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"haniwa.customization.trainer" in cmd and str(home).encode() in cmd:
                pids.append(int(entry.name))
    return pids


def _details(url: str, job_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/haniwa/v1/customization/jobs/{job_id}", timeout=30).json())


def _until(check: Any, what: str, timeout: float = 600) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return value


def test_kill_9_resumes_from_the_checkpoint_and_stop_stops(home: Path) -> None:
    if bundled_weights_missing():
        need("bundled weights", str(bundled_weights_missing()))
    _tiny_base(home / "models")
    rows = [{"prompt": f"質問 {i}", "completion": f"答え {i}。"} for i in range(600)]
    (home / "s3" / "data").mkdir(parents=True)
    (home / "s3" / "data" / "train.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    job = {
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "baseModelIdentifier": "amazon.nova-micro-v1:0:128k",
        "trainingDataConfig": {"s3Uri": "s3://data/train.jsonl"},
        "outputDataConfig": {"s3Uri": "s3://data/out/"},
        "hyperParameters": {"epochCount": "5"},
    }
    proc = _start(home, port)
    try:
        bedrock = boto3.client("bedrock", **client_kwargs(url))
        arn = bedrock.create_model_customization_job(jobName="long", customModelName="long-m", **job)[
            "jobArn"
        ]
        job_id = arn.rsplit("/", 1)[-1]
        # a second job waits for the training slot, InProgress with a message
        second = bedrock.create_model_customization_job(jobName="next", customModelName="next-m", **job)
        waiting = _details(url, second["jobArn"].rsplit("/", 1)[-1])
        assert waiting["state"] == "QUEUED" and "training slot" in waiting["message"]
        assert bedrock.get_model_customization_job(jobIdentifier=second["jobArn"])["status"] == "InProgress"
        bedrock.stop_model_customization_job(jobIdentifier=second["jobArn"])
        assert bedrock.get_model_customization_job(jobIdentifier=second["jobArn"])["status"] == "Stopped"
        _until(lambda: _details(url, job_id)["step"] >= 25, "training past the second checkpoint")
        assert _trainers(home)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        _until(lambda: not _trainers(home), "the trainer ending with the server", 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    at_kill = json.loads((home / "customization" / job_id / "steps.json").read_text())[-1][0]
    proc = _start(home, port)
    try:
        bedrock = boto3.client("bedrock", **client_kwargs(url))
        resumed = _until(lambda: (d := _details(url, job_id))["figures"].get("resumedFrom") and d, "resume")
        assert 20 <= resumed["figures"]["resumedFrom"] <= at_kill  # a checkpoint every 10 steps
        assert bedrock.get_model_customization_job(jobIdentifier=arn)["status"] == "InProgress"
        _until(lambda: _details(url, job_id)["step"] > at_kill, "steps after the kill")
        curve = _details(url, job_id)["lossCurve"]
        assert [r[0] for r in curve] == list(range(1, len(curve) + 1))  # no step lost or repeated
        bedrock.stop_model_customization_job(jobIdentifier=arn)
        _until(
            lambda: bedrock.get_model_customization_job(jobIdentifier=arn)["status"] == "Stopped",
            "stopped",
            60,
        )
        _until(
            lambda: bedrock.get_model_customization_job(jobIdentifier=arn)["status"] == "Stopped",
            "stopped",
            60,
        )
        _until(lambda: not _trainers(home), "the trainer ending with Stop", 30)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_distillation_trains_the_student_on_the_teachers_answers(home: Path, settings: Any) -> None:
    from haniwa.api.app import create_app
    from haniwa.testing.server import serve_in_thread

    if bundled_weights_missing():
        need("bundled weights", str(bundled_weights_missing()))
    _tiny_base(home / "models")
    (home / "s3" / "data").mkdir(parents=True)
    prompts = [{"prompt": "埴輪とは何ですか？"}, {"prompt": "What is a haniwa?"}]
    (home / "s3" / "data" / "prompts.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in prompts), encoding="utf-8"
    )
    teacher = "anthropic.claude-3-haiku-20240307-v1:0"  # the test catalog's echo model
    with serve_in_thread(create_app(settings)) as url:
        kw = client_kwargs(url)
        bedrock, runtime = boto3.client("bedrock", **kw), boto3.client("bedrock-runtime", **kw)
        arn = bedrock.create_model_customization_job(
            jobName="distil",
            customModelName="student",
            roleArn="arn:aws:iam::123456789012:role/r",
            baseModelIdentifier="amazon.nova-micro-v1:0:128k",
            customizationType="DISTILLATION",
            customizationConfig={
                "distillationConfig": {
                    "teacherModelConfig": {
                        "teacherModelIdentifier": teacher,
                        "maxResponseLengthForInference": 64,
                    }
                }
            },
            trainingDataConfig={"s3Uri": "s3://data/prompts.jsonl"},
            outputDataConfig={"s3Uri": "s3://data/out/"},
            hyperParameters={"epochCount": "5"},
        )["jobArn"]
        job_id = arn.rsplit("/", 1)[-1]
        _until(lambda: _details(url, job_id)["step"] >= 1, "the student training", 300)
        got = bedrock.get_model_customization_job(jobIdentifier=arn)
        assert got["customizationConfig"]["distillationConfig"]["teacherModelConfig"][
            "teacherModelIdentifier"
        ] == (teacher)
        rows = [
            json.loads(x) for x in (home / "customization" / job_id / "train.jsonl").read_text().splitlines()
        ]
        for row, p in zip(rows, prompts, strict=True):
            answer = runtime.converse(
                modelId=teacher,
                messages=[{"role": "user", "content": [{"text": p["prompt"]}]}],
                inferenceConfig={"maxTokens": 64, "temperature": 0},
            )["output"]["message"]["content"][0]["text"]
            assert row["completion"] == answer
        bedrock.stop_model_customization_job(jobIdentifier=arn)
        _until(
            lambda: bedrock.get_model_customization_job(jobIdentifier=arn)["status"] == "Stopped",
            "stopped",
            60,
        )
