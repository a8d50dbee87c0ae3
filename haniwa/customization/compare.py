"""Before and after: the base model and the custom model answer the same prompts on the serving path.

At the end of every job, the first validation prompts and a fixed Japanese check set run through the
base GGUF and through the base GGUF + the adapter GGUF that will serve (llama.cpp, greedy), so what the
comparison shows is what callers will get. Each row carries flags:

* ``simplified_chinese``: Han characters of the answer that are not Japanese kanji (see
  :func:`haniwa.runtime.script.foreign_han`), which a Japanese answer must not hold;
* ``worse``: with a reference answer, the custom answer's chrF against it fell 5 points or more below the
  base answer's; for a Japanese check, the base answer held the word a right answer holds and the custom
  one does not;
* ``not_japanese``: a Japanese prompt the base answered in Japanese (with kana) and the custom model did not
  (a small model fine-tuned on English data forgets to answer in Japanese);
* ``format_broken``: the reference is JSON and the custom answer is not (while the base's was).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sacrebleu.metrics.chrf import CHRF

from haniwa.customization.base import JobRecord
from haniwa.runtime.base import ChatRequest, InferenceParams, Message, ModelInfo, TextBlock
from haniwa.runtime.registry import ModelRegistry
from haniwa.runtime.script import foreign_han, has_kana

__all__ = ["compare", "JAPANESE_CHECKS", "served_model", "MAX_VALIDATION_PROMPTS"]

# (prompt, a word a right answer holds)
JAPANESE_CHECKS = (
    ("日本の首都はどこですか。一文で答えてください。", "東京"),
    ("「ありがとう」を英語に訳してください。", "Thank"),
    ("次の文を丁寧語に直してください：明日は雨が降るだろう。", "でしょう"),
)
MAX_VALIDATION_PROMPTS = 5
MAX_TOKENS = 48
_CHRF = CHRF()


def served_model(registry: ModelRegistry, record: JobRecord, adapter: Path) -> ModelInfo:
    """The catalog entry that serves a job's custom model (the base's options plus ``lora_path``)."""
    base = registry.models[record.base_info]
    info = ModelInfo(
        id=f"llamacpp:custom-{record.custom_model_id}",
        backend=base.backend,
        kind="chat",
        options={**dict(base.options), "lora_path": str(adapter)},
        name=f"{record.custom_model_name} (custom, on {base.name or base.id})",
        provider="haniwa",
        context_length=base.context_length,
        description=f"custom model of job {record.name}",
    )
    if info.id not in registry.models:
        registry.add_model(info)
    return registry.models[info.id]


def _json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _score(answer: str, ref: str) -> float:
    return float(_CHRF.sentence_score(answer, [ref]).score)


async def _answer(chat: Any, row: dict[str, Any]) -> str:
    req = ChatRequest(
        messages=tuple(Message(t["role"], (TextBlock(t["content"]),)) for t in row["turns"]),
        system=row.get("system") or None,
        params=InferenceParams(max_tokens=MAX_TOKENS, temperature=0.0, seed=0),
    )
    text: str = (await chat.converse(req)).message.text
    return text


async def compare(
    registry: ModelRegistry, record: JobRecord, adapter: Path, validation: Path
) -> dict[str, Any]:
    """Rows of (prompt, reference, base answer, custom answer, flags) and a summary."""
    rows: list[dict[str, Any]] = []
    if validation.exists():
        for line in validation.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if "turns" in row and len(rows) < MAX_VALIDATION_PROMPTS:
                rows.append({"set": "validation", "row": row})
    for prompt, word in JAPANESE_CHECKS:
        turns = [{"role": "user", "content": prompt}]
        rows.append({"set": "japanese", "row": {"turns": turns}, "word": word})
    _, base = await registry.chat(record.base_info)
    _, custom = await registry.chat(served_model(registry, record, adapter).id)
    out = []
    for item in rows:
        row = item["row"]
        before, after = await _answer(base, row), await _answer(custom, row)
        ref = row.get("completion")
        flags = []
        if foreign_han(after):
            flags.append("simplified_chinese")
        must = item.get("word")
        if must and must in before and must not in after:
            flags.append("worse")
        if has_kana(row["turns"][-1]["content"]) and has_kana(before) and not has_kana(after):
            flags.append("not_japanese")
        if ref:
            if _score(after, ref) <= _score(before, ref) - 5:
                flags.append("worse")
            if _json(ref) and _json(before) and not _json(after):
                flags.append("format_broken")
        out.append(
            {
                "set": item["set"],
                "prompt": row["turns"][-1]["content"],
                "reference": ref,
                "base": before,
                "custom": after,
                "flags": flags,
            }
        )
    return {
        "baseModel": record.base_info,
        "rows": out,
        "regressions": sum(1 for r in out if r["flags"]),
    }
