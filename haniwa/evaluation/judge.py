"""LLM-as-judge: one served model rates one response on one criterion, through a JSON schema.

The request carries ``response_schema`` — ``{"reasoning": str (≤ 300 chars), "rating": one of the
scale's labels}`` — so a llama.cpp model decodes under the grammar made from it and cannot answer
anything else (the failure small models show in ragas and DeepEval: broken or chatty JSON). A backend
without constrained decoding (an OpenAI-compatible server that ignores the schema, the echo model) may
still answer off-schema: the rating is then looked for in the text, and failing that the score is None
with the reason, never an exception. The rating becomes a score in [0, 1] by its place on the scale
(worst 0, best 1); the reasoning is kept as the explanation.

Prompts are in ``prompts/en.toml`` and ``prompts/ja.toml``; Japanese is chosen when the task or the
response is Japanese. Custom metrics (Bedrock's ``customMetricDefinition``) bring their own
instructions, with ``{{prompt}}``, ``{{prediction}}``, ``{{ground_truth}}`` and ``{{contexts}}``
placeholders, and their own rating scale (numbers: normalised between their min and max; strings:
read worst to best in the order given); with no scale they get a five-level one.

Judge sampling (``HANIWA_EVAL_JUDGE_SAMPLES`` / ``haniwa eval create --judge-samples N``) shows the
judge's own noise: with N > 1 the judge is asked N times, the first at temperature 0 seed 0 (today's one
judgement), the others at temperature ``SAMPLE_TEMPERATURE`` with seeds 1..N-1; the score is the mean of
the valid samples and the Score keeps every sample and their standard deviation.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

from haniwa.evaluation.base import CustomMetric, Score
from haniwa.evaluation.text import is_japanese
from haniwa.runtime.base import ChatBackend, ChatRequest, InferenceParams, Message, TextBlock

__all__ = [
    "Criterion",
    "criterion",
    "custom_criterion",
    "judge",
    "judge_sampled",
    "schema_for",
    "JUDGE_MAX_TOKENS",
]

JUDGE_MAX_TOKENS = 200
REASONING_CHARS = 300
SAMPLE_TEMPERATURE = 0.7
MAX_JUDGE_SAMPLES = 10
_DEFAULT_SCALE = ("very poor", "poor", "fair", "good", "very good")


@cache
def _prompts(lang: str) -> dict[str, Any]:
    text = resources.files("haniwa.evaluation").joinpath("prompts", f"{lang}.toml").read_text("utf-8")
    return tomllib.loads(text)


@dataclass(frozen=True)
class Criterion:
    """What the judge is asked: the metric's name, its question and its labels (worst first) with the
    score each is worth."""

    metric: str
    text: str
    labels: tuple[str, ...]
    values: tuple[float, ...]
    custom: bool = False


def _spread(labels: Sequence[str]) -> tuple[float, ...]:
    n = len(labels)
    return tuple(i / (n - 1) if n > 1 else 1.0 for i in range(n))


def criterion(metric: str, lang: str = "en") -> Criterion:
    """The criterion of a built-in judge metric (``Builtin.Correctness`` ...)."""
    name = metric.removeprefix("Builtin.")
    entry = _prompts(lang)["metrics"][name]
    labels = tuple(entry["scale"])
    return Criterion(metric, entry["criterion"], labels, _spread(labels))


def custom_criterion(metric: CustomMetric) -> Criterion:
    """The criterion of a custom metric, its scale normalised to [0, 1]."""
    if not metric.scale:
        return Criterion(metric.name, metric.instructions, _DEFAULT_SCALE, _spread(_DEFAULT_SCALE), True)
    labels = tuple(str(level.value) for level in metric.scale)
    numbers = [level.value for level in metric.scale]
    if all(isinstance(v, float | int) for v in numbers):
        floats = [float(v) for v in numbers]
        lo, hi = min(floats), max(floats)
        values = tuple((v - lo) / (hi - lo) if hi > lo else 1.0 for v in floats)
    else:
        values = _spread(labels)
    return Criterion(metric.name, metric.instructions, labels, values, True)


def schema_for(crit: Criterion) -> dict[str, Any]:
    """The JSON schema the judge's answer must satisfy."""
    return {
        "type": "object",
        # the rating first: small models asked to reason first copy the criterion into the reasoning and
        # then rate anything "correct" (0/6 separated with the 0.5B); rating first they separate
        "properties": {
            "rating": {"type": "string", "enum": list(crit.labels)},
            "reasoning": {"type": "string", "maxLength": REASONING_CHARS},
        },
        "required": ["rating", "reasoning"],
        "additionalProperties": False,
    }


def _fill_custom(instructions: str, prompt: str, response: str, reference: str | None, contexts: str) -> str:
    values = {"prompt": prompt, "prediction": response, "ground_truth": reference or "", "contexts": contexts}
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: values.get(m.group(1), m.group(0)), instructions)


def build_request(
    crit: Criterion,
    prompt: str,
    response: str,
    reference: str | None,
    contexts: Sequence[str] = (),
    sample: int = 0,
) -> ChatRequest:
    """The judge's chat request (schema-constrained): sample 0 at temperature 0 seed 0, sample k > 0 at
    ``SAMPLE_TEMPERATURE`` seed k."""
    lang = "ja" if is_japanese(prompt) or is_japanese(response) else "en"
    p = _prompts(lang)
    ctx = "\n\n".join(f"[{i + 1}] {c}" for i, c in enumerate(contexts))
    scale_lines = "\n".join(f"- {label}" for label in crit.labels)
    if crit.custom and "{{" in crit.text:
        text = _fill_custom(crit.text, prompt, response, reference, ctx)
        user = f"{text}\n\n{p['custom_scale']}\n{scale_lines}"
    else:
        user = p["template"].format(
            criterion=crit.text,
            scale=scale_lines,
            prompt=prompt,
            response=response,
            reference=p["reference"].format(text=reference) if reference else "",
            contexts=p["contexts"].format(text=ctx) if ctx else "",
        )
    return ChatRequest(
        messages=(Message("user", (TextBlock(user),)),),
        system=p["system"],
        params=InferenceParams(
            max_tokens=JUDGE_MAX_TOKENS, temperature=SAMPLE_TEMPERATURE if sample else 0.0, seed=sample
        ),
        response_schema=schema_for(crit),
    )


def read_verdict(crit: Criterion, text: str, evaluator: str) -> Score:
    """The judge's answer as a score: the schema's JSON, else the first scale label found in the text."""
    reasoning: str | None = None
    rating: str | None = None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        if isinstance(data.get("rating"), str | int | float):
            rating = str(data["rating"])
        if isinstance(data.get("reasoning"), str):
            reasoning = data["reasoning"]
    if rating not in crit.labels:
        # off-schema answer: accept a label only when it is the one label the text names as a whole word
        # ("partly correct" counts once, not also as "correct"); an echo of the scale names them all
        spans: list[tuple[int, int, str]] = []
        for label in sorted(crit.labels, key=len, reverse=True):
            for m in re.finditer(rf"(?<!\w){re.escape(label)}(?!\w)", text, re.IGNORECASE):
                if not any(a <= m.start() < b for a, b, _ in spans):
                    spans.append((m.start(), m.end(), label))
        found = {label for _, _, label in spans}
        rating = found.pop() if len(found) == 1 else None
        reasoning = reasoning or text.strip()[:REASONING_CHARS] or None
    if rating is None:
        return Score(
            crit.metric, None, reasoning, evaluator, "the judge's answer holds no rating of the scale"
        )
    return Score(crit.metric, crit.values[crit.labels.index(rating)], reasoning, evaluator)


async def judge(
    chat: ChatBackend,
    evaluator: str,
    crit: Criterion,
    prompt: str,
    response: str,
    reference: str | None = None,
    contexts: Sequence[str] = (),
) -> Score:
    """One judgement: ``evaluator`` names the judge model in the result."""
    result = await chat.converse(build_request(crit, prompt, response, reference, contexts))
    return read_verdict(crit, result.message.text, evaluator)


async def judge_sampled(
    chat: ChatBackend,
    evaluator: str,
    crit: Criterion,
    prompt: str,
    response: str,
    reference: str | None = None,
    contexts: Sequence[str] = (),
    samples: int = 1,
) -> Score:
    """``samples`` judgements (see the module's docstring); one sample is :func:`judge` itself."""
    if samples <= 1:
        return await judge(chat, evaluator, crit, prompt, response, reference, contexts)
    scores = []
    for k in range(samples):
        result = await chat.converse(build_request(crit, prompt, response, reference, contexts, k))
        scores.append(read_verdict(crit, result.message.text, evaluator))
    values = [s.value for s in scores if s.value is not None]
    first = scores[0]
    if not values:
        return replace(first, samples=tuple(s.value for s in scores))
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    explanation = next((s.explanation for s in scores if s.value is not None), first.explanation)
    return Score(crit.metric, mean, explanation, evaluator, None, tuple(s.value for s in scores), std)
