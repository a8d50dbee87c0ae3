"""Customization's vocabulary: hyperparameters and their ranges per base-model family, LoRA settings.

Ranges are the ones Bedrock's user guide documents for each customizable family ("Custom model
hyperparameters"); a value outside its range is a :class:`~haniwa.errors.ValidationError` that states it.

LoRA learning rates
-------------------
Bedrock's documented rates are for full fine-tuning of large models (Titan: 1e-5 by default). A LoRA
adapter starts at zero and has few parameters, so it needs a rate 10-100x higher to move as far in as
many steps; haniwa multiplies the requested ``learningRate`` by ``loraLearningRateMultiplier`` (default
20, a haniwa extension hyperparameter; set it to 1 to use the rate as given). Titan's default 1e-5 thus
trains the adapter at 2e-4, the usual LoRA rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from haniwa.errors import ValidationError

__all__ = [
    "CustomizationType",
    "Range",
    "FAMILIES",
    "family_of",
    "HyperParameters",
    "LoraSettings",
    "parse_hyperparameters",
    "DEFAULT_TARGETS",
    "JobRecord",
    "CustomModel",
    "Provisioned",
]

CustomizationType = Literal["FINE_TUNING", "CONTINUED_PRE_TRAINING", "DISTILLATION"]
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
_KNOWN_TARGETS = frozenset({*DEFAULT_TARGETS, "gate_proj", "up_proj", "down_proj"})


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    default: float
    integer: bool = True

    def check(self, name: str, raw: str, family: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValidationError(f"hyperParameters.{name} must be a number, not {raw!r}") from None
        if not math.isfinite(value) or (self.integer and value != int(value)):
            kind = "an integer" if self.integer else "a finite number"
            raise ValidationError(f"hyperParameters.{name} must be {kind}, not {raw!r}")
        if not self.low <= value <= self.high:
            raise ValidationError(
                f"hyperParameters.{name} must be between {_fmt(self.low)} and {_fmt(self.high)} for"
                f" {family} base models (Bedrock's documented range), not {raw}"
            )
        return value


def _fmt(x: float) -> str:
    return str(int(x)) if x == int(x) and abs(x) >= 1 else f"{x:g}"


# (family, id prefixes) → ranges. Families Bedrock documents; other ids use the Titan ranges.
_TITAN = {
    "epochCount": Range(1, 10, 5),
    "batchSize": Range(1, 64, 1),
    "learningRate": Range(0.0000001, 1, 0.00001, False),
    "learningRateWarmupSteps": Range(0, 250, 5),
}
FAMILIES: dict[str, tuple[tuple[str, ...], Mapping[str, Range]]] = {
    "Amazon Titan Text Premier": (
        ("amazon.titan-text-premier",),
        {
            "epochCount": Range(1, 5, 2),
            "batchSize": Range(1, 1, 1),
            "learningRate": Range(0.0000001, 0.00001, 0.000001, False),
            "learningRateWarmupSteps": Range(0, 20, 5),
        },
    ),
    "Amazon Titan Text": (("amazon.titan-text",), _TITAN),
    "Amazon Nova": (
        ("amazon.nova",),
        {
            "epochCount": Range(1, 5, 2),
            "batchSize": Range(1, 1, 1),
            "learningRate": Range(0.000001, 0.0001, 0.00001, False),
            "learningRateWarmupSteps": Range(0, 100, 10),
        },
    ),
    "Meta Llama": (
        ("meta.llama",),
        {
            "epochCount": Range(1, 10, 5),
            "batchSize": Range(1, 1, 1),
            "learningRate": Range(0.000005, 0.1, 0.0001, False),
            "learningRateWarmupSteps": Range(0, 250, 0),
        },
    ),
    "Anthropic Claude 3 Haiku": (
        ("anthropic.claude-3-haiku",),
        {
            "epochCount": Range(1, 10, 2),
            "batchSize": Range(4, 256, 32),
            "learningRate": Range(0.000001, 0.01, 0.00001, False),
            "learningRateWarmupSteps": Range(0, 250, 0),
        },
    ),
    "haniwa": ((), _TITAN),
}


def family_of(model_id: str) -> str:
    """The hyperparameter family of a base model id (an ARN's id part, a cross-region prefix dropped)."""
    mid = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id
    for name, (prefixes, _) in FAMILIES.items():
        if any(mid.startswith(p) or f".{p}" in mid for p in prefixes):
            return name
    return "haniwa"


@dataclass(frozen=True)
class LoraSettings:
    """haniwa's extension hyperparameters (``loraRank``, ``loraAlpha``, ``loraTargetModules``)."""

    rank: int = 8
    alpha: int = 16
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    learning_rate_multiplier: float = 20.0


@dataclass(frozen=True)
class HyperParameters:
    epochs: int
    batch_size: int
    learning_rate: float  # as requested (Bedrock's scale)
    warmup_steps: int
    lora: LoraSettings
    max_length: int = 256

    @property
    def lora_learning_rate(self) -> float:
        return self.learning_rate * self.lora.learning_rate_multiplier


_EXTENSIONS = (
    "loraRank",
    "loraAlpha",
    "loraTargetModules",
    "loraLearningRateMultiplier",
    "maxSequenceLength",
)


def parse_hyperparameters(family: str, raw: Mapping[str, str]) -> HyperParameters:
    """Bedrock's string map → checked values; unknown names and out-of-range values are refused."""
    ranges = FAMILIES[family][1]
    unknown = sorted(set(raw) - set(ranges) - set(_EXTENSIONS))
    if unknown:
        raise ValidationError(
            f"unknown hyperparameter(s) {', '.join(unknown)}; known: {', '.join([*ranges, *_EXTENSIONS])}"
        )
    v = {k: r.check(k, raw[k], family) if k in raw else r.default for k, r in ranges.items()}
    rank = Range(1, 256, 8).check("loraRank", raw.get("loraRank", "8"), family)
    alpha = Range(1, 1024, 16).check("loraAlpha", raw.get("loraAlpha", str(int(2 * rank))), family)
    mult = Range(0.01, 1000, 20, False).check(
        "loraLearningRateMultiplier", raw.get("loraLearningRateMultiplier", "20"), family
    )
    length = Range(16, 4096, 256).check("maxSequenceLength", raw.get("maxSequenceLength", "256"), family)
    targets = tuple(t.strip() for t in raw.get("loraTargetModules", ",".join(DEFAULT_TARGETS)).split(","))
    bad = [t for t in targets if t not in _KNOWN_TARGETS]
    if bad or not targets:
        raise ValidationError(
            f"loraTargetModules must name some of {', '.join(sorted(_KNOWN_TARGETS))}; got {bad or 'none'}"
        )
    return HyperParameters(
        epochs=int(v["epochCount"]),
        batch_size=int(v["batchSize"]),
        learning_rate=v["learningRate"],
        warmup_steps=int(v["learningRateWarmupSteps"]),
        lora=LoraSettings(int(rank), int(alpha), targets, mult),
        max_length=int(length),
    )


@dataclass(frozen=True)
class JobRecord:
    """A customization job as created; its state and progress live on the job engine (``engine_id``)."""

    id: str
    name: str
    engine_id: str
    customization_type: str
    base_model: str  # the id the caller named
    base_info: str  # the catalog model it resolved to (``llamacpp:qwen2.5-coder-0.5b``)
    bundle: str  # the bundled GGUF that trains and serves
    custom_model_id: str  # reserved at creation, listed once the job completes
    custom_model_name: str
    role_arn: str
    hyperparameters: Mapping[str, str]
    training_uri: str
    validation_uris: tuple[str, ...]
    output_uri: str
    created: float
    client_token: str | None = None
    teacher: str | None = None
    teacher_max_tokens: int = 512


@dataclass(frozen=True)
class CustomModel:
    id: str
    name: str
    job_id: str
    adapter: str  # the LoRA GGUF path
    created: float


@dataclass(frozen=True)
class Provisioned:
    """Provisioned throughput (or a custom-model deployment, ``kind="deployment"``): a served model."""

    id: str
    name: str
    kind: Literal["provisioned", "deployment"]
    model_arn: str  # what the caller named: a custom model's ARN or a foundation model
    serves: str  # the catalog model id it answers from
    created: float
    updated: float
    units: int = 1
    commitment: str | None = None
    description: str = ""
