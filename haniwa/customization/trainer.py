"""The training child process: LoRA with PEFT + transformers on a dequantized copy of a bundled GGUF.

Run as ``python -m haniwa.customization.trainer SPEC.json`` by :mod:`haniwa.customization.service`
(on the job engine), never in the server process: torch takes every core and gigabytes, and the API must
stay responsive. It speaks one JSON object per line on stdout::

    {"event": "loading"} {"event": "start", "step": 0, "total": 40}
    {"event": "step", "step": 3, "total": 40, "epoch": 1, "loss": 2.31, "tokens": 212}
    {"event": "checkpoint", "step": 10} {"event": "validation", "loss": 1.9} {"event": "done"}

Checkpoints (adapter weights, optimizer and scheduler state, the step) go to ``<workdir>/checkpoint``
every ``checkpoint_every`` steps, written to a temporary folder and renamed, so a kill leaves the previous
one whole; a new run of the same spec resumes from it. Each epoch's order comes from a seed of its own,
so a resumed run sees the examples a straight run would have. The child exits when its stdin closes:
the server holds the other end, so a ``kill -9`` of the server ends the training too.

The dequantized base (``transformers`` reads GGUF and dequantizes it to float32) is saved once as a plain
Hugging Face folder next to the models (``<models_dir>/hf/<bundle>``); later jobs load it in seconds.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

__all__ = ["main", "ensure_base"]


def _emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _watch_parent() -> None:
    """Exit as soon as stdin reaches its end: the server that started us is gone (or asks us to stop)."""

    def watch() -> None:
        # os.read, not sys.stdin: a daemon thread inside the buffered reader at exit aborts the interpreter
        try:
            while os.read(0, 1):
                pass
        finally:
            os._exit(3)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def ensure_base(gguf: str, folder: str) -> Path:
    """The dequantized base as a Hugging Face folder, made once from ``gguf`` (atomic rename)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest = Path(folder)
    if (dest / "config.json").exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{os.getpid()}.tmp"
    src = Path(gguf)
    model = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        os.replace(tmp, dest)
    except OSError:  # another job made it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _encode(rows: list[dict[str, Any]], tok: Any, max_len: int) -> list[tuple[list[int], list[int]]]:
    """Rows (``prompt``/``completion``, ``messages``+``system`` or ``input``) → (ids, labels); prompt
    tokens are masked (-100) so the loss is the completion's alone, as in Bedrock's fine-tuning."""
    out = []
    eos = tok.eos_token_id
    for row in rows:
        if "text" in row:
            ids = tok(row["text"], add_special_tokens=False)["input_ids"][: max_len - 1] + [eos]
            out.append((ids, list(ids)))
            continue
        msgs = ([{"role": "system", "content": row["system"]}] if row.get("system") else []) + row["turns"]
        prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        c_ids = tok(row["completion"] + "<|im_end|>", add_special_tokens=False)["input_ids"]
        ids = (p_ids + c_ids)[:max_len]
        labels = ([-100] * len(p_ids) + c_ids)[:max_len]
        out.append((ids, labels))
    return out


def _batches(n: int, size: int, epoch: int, seed: int) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed * 1000 + epoch).shuffle(order)
    return [order[i : i + size] for i in range(0, n, size)]


def _collate(items: list[tuple[list[int], list[int]]], pad: int, device: str) -> tuple[Any, Any, Any]:
    import torch

    width = max(len(i) for i, _ in items)
    ids = torch.full((len(items), width), pad, dtype=torch.long)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, (i, lab) in enumerate(items):
        ids[row, : len(i)] = torch.tensor(i)
        labels[row, : len(lab)] = torch.tensor(lab)
        mask[row, : len(i)] = 1
    return ids.to(device), labels.to(device), mask.to(device)


def _load_rows(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _loss(model: Any, data: list[tuple[list[int], list[int]]], pad: int, device: str) -> float:
    import torch

    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for item in data:
            ids, labels, mask = _collate([item], pad, device)
            out = model(input_ids=ids, attention_mask=mask, labels=labels)
            n = int((labels[:, 1:] != -100).sum())
            total += float(out.loss) * n
            count += n
    model.train()
    return total / max(count, 1)


def _save(model: Any, opt: Any, sched: Any, step: int, workdir: Path) -> None:
    import torch

    tmp = workdir / "checkpoint.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict(), "step": step}, tmp / "state.pt")
    old = workdir / "checkpoint.old"
    shutil.rmtree(old, ignore_errors=True)
    if (workdir / "checkpoint").exists():
        os.replace(workdir / "checkpoint", old)
    os.replace(tmp, workdir / "checkpoint")
    shutil.rmtree(old, ignore_errors=True)


def run(spec: dict[str, Any]) -> None:
    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from peft.utils import load_peft_weights

    workdir = Path(spec["workdir"])
    threads = int(spec.get("threads") or 0)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(int(spec.get("seed", 0)))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    _emit(event="loading", device=device)
    base = ensure_base(spec["gguf"], spec["base_dir"])
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(base))
    model: Any = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    model = model.to(device)
    cfg = LoraConfig(
        r=int(spec["rank"]),
        lora_alpha=spec["alpha"],
        target_modules=list(spec["target_modules"]),
        lora_dropout=0.0,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, cfg)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    train = _encode(_load_rows(spec["train"]), tok, int(spec["max_length"]))
    valid = _encode(_load_rows(spec["valid"]), tok, int(spec["max_length"])) if spec.get("valid") else []
    batch, epochs = int(spec["batch_size"]), int(spec["epochs"])
    per_epoch = math.ceil(len(train) / batch)
    total = per_epoch * epochs
    warmup = int(spec["warmup_steps"])
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=float(spec["learning_rate"]), weight_decay=0.0)

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    step = 0
    ckpt = workdir / "checkpoint"
    if (ckpt / "state.pt").exists():
        set_peft_model_state_dict(model, load_peft_weights(str(ckpt), device=device))
        state = torch.load(ckpt / "state.pt", weights_only=False)
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        step = int(state["step"])
    _emit(event="start", step=step, total=total, examples=len(train))
    every = max(1, int(spec["checkpoint_every"]))
    seed = int(spec.get("seed", 0))
    model.train()
    for epoch in range(step // per_epoch, epochs):
        for b, idx in enumerate(_batches(len(train), batch, epoch, seed)):
            if epoch * per_epoch + b < step:
                continue  # done before the checkpoint we resumed from
            t0 = time.perf_counter()
            ids, labels, mask = _collate([train[i] for i in idx], pad, device)
            out = model(input_ids=ids, attention_mask=mask, labels=labels)
            out.loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            _emit(
                event="step",
                step=step,
                total=total,
                epoch=epoch + 1,
                loss=float(out.loss),
                tokens=int(mask.sum()),
                seconds=time.perf_counter() - t0,
            )
            if step % every == 0 and step < total:
                _save(model, opt, sched, step, workdir)
                _emit(event="checkpoint", step=step)
    if valid:
        _emit(event="validation", step=step, loss=_loss(model, valid, pad, device))
    final = workdir / "adapter"
    shutil.rmtree(final, ignore_errors=True)
    model.save_pretrained(str(final))
    _emit(event="done", step=step)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    _watch_parent()
    try:
        run(spec)
    except Exception as exc:  # the parent reads the reason from this line
        _emit(event="error", message=f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    os._exit(0)  # no interpreter teardown: torch's thread pools and the watcher have nothing to flush


if __name__ == "__main__":
    main()
