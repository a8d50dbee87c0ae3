"""Customization benchmark: LoRA fine-tuning of the bundled 0.5B through haniwa vs a bare PEFT loop.

One run, same data, same base weights (the dequantized copy haniwa caches), same LoRA settings (r=8,
alpha=16, q/k/v/o), batch 1, fp32, the same number of threads:

* haniwa: boto3 uploads the JSONL, CreateModelCustomizationJob, then the job's progress is polled;
  figures: time from create to the first loss point, seconds per step and tokens/s over the steps after
  the first, peak RSS of the trainer process, wall time to Completed (which includes the adapter
  conversion and the before/after comparison through llama.cpp);
* bare: the same steps in a child process with transformers + peft and nothing else.

    python bench/customization.py [--examples 8] [--epochs 1] [--threads 2]

Needs the bundled 0.5B (``pip install -e .``); the dequantized base is made once (about a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.testing.server import serve_in_thread

_BARE = r"""
import json, resource, sys, time, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
from haniwa.customization.trainer import _collate, _encode
spec = json.loads(sys.argv[1])
torch.set_num_threads(spec["threads"])
tok = AutoTokenizer.from_pretrained(spec["base"])
model = AutoModelForCausalLM.from_pretrained(spec["base"], dtype=torch.float32)
targets = ["q_proj", "k_proj", "v_proj", "o_proj"]
cfg = LoraConfig(r=8, lora_alpha=16, target_modules=targets, lora_dropout=0.0, task_type="CAUSAL_LM")
model = get_peft_model(model, cfg)
rows = [json.loads(l) for l in open(spec["train"], encoding="utf-8")]
data = _encode(rows, tok, 256) * spec["epochs"]
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
times, tokens = [], []
for item in data:
    t0 = time.perf_counter()
    ids, labels, mask = _collate([item], pad, "cpu")
    model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
    opt.step(); opt.zero_grad(set_to_none=True)
    times.append(time.perf_counter() - t0); tokens.append(int(mask.sum()))
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"times": times, "tokens": tokens, "rss_kb": rss}))
"""


def _rows(n: int) -> list[dict[str, str]]:
    topics = ["埴輪", "古墳", "土偶", "銅鐸", "勾玉", "須恵器", "縄文土器", "弥生土器"]
    return [
        {
            "prompt": f"{topics[i % len(topics)]}について一文で説明してください。({i})",
            "completion": f"{topics[i % len(topics)]}は日本の考古学で重要な遺物で、番号{i}の例です。",
        }
        for i in range(n)
    ]


def _haniwa(home: Path, train: bytes, epochs: int) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "region_name": "us-east-1",
        "aws_access_key_id": "x",
        "aws_secret_access_key": "x",
        "config": Config(retries={"max_attempts": 1}, read_timeout=300),
    }
    with serve_in_thread(create_app(Settings(home=home, profile="fast"))) as url:
        s3 = boto3.client("s3", endpoint_url=url, **kw)
        bedrock = boto3.client("bedrock", endpoint_url=url, **kw)
        s3.create_bucket(Bucket="bench")
        s3.put_object(Bucket="bench", Key="train.jsonl", Body=train)
        t0 = time.monotonic()
        arn = bedrock.create_model_customization_job(
            jobName="bench",
            customModelName="bench-model",
            roleArn="arn:aws:iam::123456789012:role/r",
            baseModelIdentifier="amazon.titan-text-express-v1:0:8k",
            trainingDataConfig={"s3Uri": "s3://bench/train.jsonl"},
            outputDataConfig={"s3Uri": "s3://bench/out/"},
            hyperParameters={"epochCount": str(epochs), "learningRateWarmupSteps": "0"},
        )["jobArn"]
        job_id = arn.rsplit("/", 1)[-1]
        first = None
        while True:
            d = httpx.get(f"{url}/haniwa/v1/customization/jobs/{job_id}", timeout=30).json()
            if first is None and d["lossCurve"]:
                first = time.monotonic() - t0
            if d["state"] in ("COMPLETE", "FAILED", "STOPPED"):
                break
            time.sleep(0.5)
        total = time.monotonic() - t0
        steps_file = home / "customization" / job_id / "steps.json"
        log = (home / "customization" / job_id / "trainer.log").read_text(errors="replace")[-2000:]
        if d["state"] != "COMPLETE":
            raise SystemExit(f"the job ended {d['state']}: {d['message']}\n{log}")
        return {
            "first_loss_s": first,
            "total_s": total,
            "steps": len(json.loads(steps_file.read_text())),
            "figures": d["figures"],
            "rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ["HANIWA_THREADS"] = str(args.threads)
    models = Path(os.environ.get("HANIWA_HOME", Path.home() / ".haniwa")) / "models"
    rows = _rows(args.examples)
    train = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        models.mkdir(parents=True, exist_ok=True)
        (home / "models").symlink_to(models)
        h = _haniwa(home, train, args.epochs)
        folder = Path(tmp) / "train.jsonl"
        from haniwa.customization.data import parse_lines

        parsed = parse_lines(train.decode().splitlines(), "FINE_TUNING", "bench")
        folder.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in parsed), encoding="utf-8")
        spec = {
            "base": str(models / "hf" / "qwen2.5-coder-0.5b"),
            "train": str(folder),
            "epochs": args.epochs,
            "threads": args.threads,
        }
        out = subprocess.run(
            [sys.executable, "-c", _BARE, json.dumps(spec)], check=True, capture_output=True, text=True
        )
        bare = json.loads(out.stdout.strip().splitlines()[-1])
    steady = bare["times"][1:] or bare["times"]
    bare_step = sum(steady) / len(steady)
    bare_tps = sum(bare["tokens"][1:] or bare["tokens"]) / sum(steady)
    f = h["figures"]
    n = h["steps"] - 1 or 1
    h_step = (f["trainSeconds"] - f["firstStepSeconds"]) / n
    h_tps = (f["tokens"] - f["firstStepTokens"]) / (f["trainSeconds"] - f["firstStepSeconds"])
    report = {
        "steps": h["steps"],
        "haniwa_s_per_step": round(h_step, 2),
        "bare_s_per_step": round(bare_step, 2),
        "ratio": round(h_step / bare_step, 2),
        "haniwa_tokens_per_s": round(h_tps, 1),
        "bare_tokens_per_s": round(bare_tps, 1),
        "create_to_first_loss_s": round(h["first_loss_s"], 1),
        "create_to_completed_s": round(h["total_s"], 1),
        "haniwa_trainer_peak_rss_mb": h["rss_kb"] // 1024,
        "bare_peak_rss_mb": bare["rss_kb"] // 1024,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
