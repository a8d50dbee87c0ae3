"""The evaluation domain: what a job evaluates (its :class:`Plan`), the records it reads and the scores it
writes. The api layer converts CreateEvaluationJob's wire request into a :class:`Plan`; nothing here
knows the wire names except the dataset and output record formats, which *are* Bedrock's file formats
(``prompt``, ``referenceResponse``, ``category``, ``modelResponses``; ``automatedEvaluationResult``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "TaskType",
    "TASK_TYPES",
    "BUILTIN_AUTOMATED",
    "JUDGE_METRICS",
    "RAG_METRICS",
    "RAG_GENERATE_METRICS",
    "CITATION_METRICS",
    "DatasetTask",
    "Source",
    "RatingLevel",
    "CustomMetric",
    "HumanMetric",
    "HUMAN_RATING_METHODS",
    "Plan",
    "Record",
    "Score",
    "plan_from_json",
    "plan_to_json",
]

TaskType = Literal["Summarization", "Classification", "QuestionAndAnswer", "Generation", "Custom"]
TASK_TYPES: tuple[str, ...] = ("Summarization", "Classification", "QuestionAndAnswer", "Generation", "Custom")
# computed from the reference (or the response alone), no judge needed
BUILTIN_AUTOMATED = frozenset({"Builtin.Accuracy", "Builtin.Robustness", "Builtin.Toxicity"})
# LLM-as-judge metrics for model evaluation
JUDGE_METRICS = frozenset(
    {
        "Builtin.Correctness",
        "Builtin.Completeness",
        "Builtin.Faithfulness",
        "Builtin.Helpfulness",
        "Builtin.Coherence",
        "Builtin.Relevance",
        "Builtin.FollowingInstructions",
        "Builtin.ProfessionalStyleAndTone",
        "Builtin.Harmfulness",
        "Builtin.Stereotyping",
        "Builtin.Refusal",
    }
)
# retrieve-only RAG evaluation
RAG_METRICS = frozenset({"Builtin.ContextRelevance", "Builtin.ContextCoverage"})
# retrieve-and-generate RAG evaluation: judge metrics (also LogicalCoherence) and citation metrics, which
# are computed from the answer's citations without a judge (scoring.py)
CITATION_METRICS = frozenset({"Builtin.CitationPrecision", "Builtin.CitationCoverage"})
RAG_GENERATE_METRICS = frozenset({"Builtin.LogicalCoherence"}) | CITATION_METRICS


@dataclass(frozen=True)
class DatasetTask:
    """One dataset, the task it is read as and the metrics computed on it."""

    task_type: str
    name: str
    s3_uri: str
    metrics: tuple[str, ...]


@dataclass(frozen=True)
class Source:
    """What produced the responses: a served model (``kind="model"``, generated now), responses in the
    dataset (``"precomputed"``, matched by ``modelIdentifier``), a knowledge base (``"retrieve"``), or a
    knowledge base answered by ``model`` through RetrieveAndGenerate's own code path (``"rag"``)."""

    kind: Literal["model", "precomputed", "retrieve", "rag"]
    identifier: str
    model: str | None = None
    template: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    number_of_results: int = 5


@dataclass(frozen=True)
class RatingLevel:
    definition: str
    value: float | str


@dataclass(frozen=True)
class CustomMetric:
    """A judge metric the job defines: instructions (with ``{{prompt}}``, ``{{prediction}}``,
    ``{{ground_truth}}`` placeholders, as Bedrock's) and an optional rating scale."""

    name: str
    instructions: str
    scale: tuple[RatingLevel, ...] = ()


# the rating methods people are asked for here (botocore's EvaluationRatingMethod also has
# ComparisonLikertScale, ComparisonChoice and ComparisonRank, which compare two sources: not served)
HUMAN_RATING_METHODS = ("ThumbsUpDown", "IndividualLikertScale")


@dataclass(frozen=True)
class HumanMetric:
    """A metric people rate (``HumanEvaluationCustomMetric``): ThumbsUpDown (up 1, down 0) or
    IndividualLikertScale (1…5, normalised to (v − 1) / 4)."""

    name: str
    rating_method: str
    description: str = ""


@dataclass(frozen=True)
class Plan:
    """Everything a job needs to run, stored as its spec (JSON, see :func:`plan_to_json`)."""

    name: str
    output_uri: str
    datasets: tuple[DatasetTask, ...]
    sources: tuple[Source, ...]
    evaluators: tuple[str, ...] = ()
    custom_metrics: tuple[CustomMetric, ...] = ()
    custom_evaluators: tuple[str, ...] = ()
    seed: int = 0
    human_metrics: tuple[HumanMetric, ...] = ()  # set: a human evaluation job (people rate the records)
    judge_samples: int = 1  # times each judge metric is asked (HANIWA_EVAL_JUDGE_SAMPLES, judge.py)


@dataclass(frozen=True)
class Record:
    """One dataset line as read: ``index`` is its line number (1-based); ``data`` the parsed object."""

    index: int
    prompt: str
    reference: str | None
    category: str | None
    responses: Mapping[str, str]
    contexts: tuple[str, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Score:
    """One metric's result for one record; ``value`` None when it could not be computed (``error`` says
    why); ``explanation`` is a judge's reasoning."""

    metric: str
    value: float | None
    explanation: str | None = None
    evaluator: str | None = None
    error: str | None = None
    # judge sampling (more than one sample): every sample's score and their population standard deviation
    samples: tuple[float | None, ...] = ()
    std: float | None = None


def plan_to_json(plan: Plan) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(plan)


def plan_from_json(data: Mapping[str, Any]) -> Plan:
    return Plan(
        name=data["name"],
        output_uri=data["output_uri"],
        datasets=tuple(
            DatasetTask(d["task_type"], d["name"], d["s3_uri"], tuple(d["metrics"])) for d in data["datasets"]
        ),
        sources=tuple(Source(**s) for s in data["sources"]),
        evaluators=tuple(data.get("evaluators", ())),
        custom_metrics=tuple(
            CustomMetric(c["name"], c["instructions"], tuple(RatingLevel(**r) for r in c.get("scale", ())))
            for c in data.get("custom_metrics", ())
        ),
        custom_evaluators=tuple(data.get("custom_evaluators", ())),
        seed=int(data.get("seed", 0)),
        human_metrics=tuple(HumanMetric(**m) for m in data.get("human_metrics", ())),
        judge_samples=int(data.get("judge_samples", 1)),
    )
