"""Scoring one record: the response (given, generated or retrieved) and every metric its task asks for.

Builtin automated metrics, per task type, as Bedrock documents them (haniwa's stand-ins in brackets):

=================  ===========================================  =======================================
task               Builtin.Accuracy                             Builtin.Robustness
=================  ===========================================  =======================================
Generation         real-world knowledge [share of the           drop in accuracy under a perturbed prompt
                   reference's tokens the answer states]
Summarization      BERTScore [embedding cosine, "BERTScore-     drop in the BERTScore-like score
                   like", see metrics.py]
QuestionAndAnswer  NLP-F1 [SQuAD token F1, MeCab for Japanese]  drop in F1
Classification     accuracy [label match]                       drop in accuracy
Custom             BERTScore-like                               drop in the BERTScore-like score
=================  ===========================================  =======================================

Retrieve-and-generate RAG metrics: Correctness, Completeness, Faithfulness and LogicalCoherence are judge
metrics (the judge sees the retrieved passages); the citation metrics need no judge and are computed from
the answer's citations (the passages RetrieveAndGenerate cited) against the record's reference answer,
on MeCab/SQuAD tokens:

* ``Builtin.CitationPrecision``: the share of cited passages that are correct, a passage counting as
  correct when it contains at least half of the reference answer's tokens;
* ``Builtin.CitationCoverage``: the share of the reference answer's tokens that the cited passages
  contain together.

An answer with no citation scores 0 on both (with that explanation).

``Builtin.Toxicity`` is the guardrail profanity detector (toxicity.py) on the response. Robustness needs
a model to answer the perturbed prompt, so it is computed for model sources only; for bring-your-own
responses the score is None with the reason. Beside the Builtin score, Accuracy adds the other
reference metrics of the decision chart (ROUGE-1/2/L, BLEU, F1, exact match, the BERTScore-like score)
as ``Accuracy.<name>`` entries, so one job answers "which metric" for labelled generation.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from haniwa.evaluation import metrics
from haniwa.evaluation.base import (
    CITATION_METRICS,
    JUDGE_METRICS,
    RAG_GENERATE_METRICS,
    RAG_METRICS,
    CustomMetric,
    Record,
    Score,
)
from haniwa.evaluation.judge import criterion, custom_criterion, judge_sampled
from haniwa.evaluation.perturb import perturb
from haniwa.evaluation.text import is_japanese
from haniwa.evaluation.toxicity import toxicity
from haniwa.runtime.base import ChatBackend, Embedder
from haniwa.runtime.offload import CPU

__all__ = ["Scorer", "Generate", "Outcome", "citation_score"]

Generate = Callable[[str], Awaitable[str]]


@dataclass(frozen=True)
class Outcome:
    """A record's scores, plus what robustness generated (for the output line)."""

    scores: tuple[Score, ...]
    perturbation: str | None = None
    perturbed_prompt: str | None = None
    perturbed_response: str | None = None


def _reference_details(task: str, response: str, reference: str) -> dict[str, float]:
    out = {
        "Accuracy.ROUGE-1": metrics.rouge_n(response, reference, 1),
        "Accuracy.ROUGE-2": metrics.rouge_n(response, reference, 2),
        "Accuracy.ROUGE-L": metrics.rouge_l(response, reference),
        "Accuracy.BLEU": metrics.bleu(response, reference),
        "Accuracy.F1": metrics.token_f1(response, reference),
        "Accuracy.ExactMatch": metrics.exact_match(response, reference),
    }
    if task == "Generation":
        out["Accuracy.RealWorldKnowledge"] = metrics.reference_recall(response, reference)
    return out


class Scorer:
    """Scores records of one job. ``embedder`` computes the BERTScore-like score; ``judges`` maps each
    evaluator model id to its loaded chat model."""

    def __init__(
        self,
        embedder: Embedder,
        judges: Mapping[str, ChatBackend],
        custom: Sequence[CustomMetric] = (),
        custom_judges: Mapping[str, ChatBackend] | None = None,
        seed: int = 0,
        judge_samples: int = 1,
    ) -> None:
        self.embedder = embedder
        self.judges = judges
        self.custom = {c.name: c for c in custom}
        self.custom_judges = custom_judges if custom_judges is not None else judges
        self.seed = seed
        self.judge_samples = judge_samples

    async def _similarity(self, response: str, reference: str) -> float:
        return (await metrics.embedding_similarity(self.embedder, [response], [reference]))[0]

    async def accuracy(self, task: str, response: str, reference: str) -> tuple[float, dict[str, float]]:
        """The task's Builtin.Accuracy and the detail scores."""
        if task == "Classification":
            value = metrics.label_match(response, reference)
            return value, {"Accuracy.ClassificationAccuracy": value}
        details = await CPU.run(functools.partial(_reference_details, task, response, reference))
        details["Accuracy.BERTScoreLike"] = await self._similarity(response, reference)
        primary = {
            "QuestionAndAnswer": "Accuracy.F1",
            "Generation": "Accuracy.RealWorldKnowledge",
        }.get(task, "Accuracy.BERTScoreLike")
        return details[primary], details

    async def score(
        self,
        task: str,
        names: Sequence[str],
        record: Record,
        response: str,
        generate: Generate | None,
        contexts: Sequence[str] = (),
        cited: Sequence[str] | None = None,
    ) -> Outcome:
        """Every metric in ``names`` for ``response`` to ``record``; ``generate`` answers a perturbed
        prompt (robustness) when the source is a model; ``cited`` are the passages the answer cites
        (retrieve-and-generate sources)."""
        scores: list[Score] = []
        ref = record.reference
        acc: float | None = None
        perturbation = perturbed_prompt = perturbed_response = None
        if "Builtin.Accuracy" in names or "Builtin.Robustness" in names:
            if ref is None:
                scores.append(Score("Builtin.Accuracy", None, error="the record has no referenceResponse"))
            else:
                acc, details = await self.accuracy(task, response, ref)
                if "Builtin.Accuracy" in names:
                    scores.append(Score("Builtin.Accuracy", acc))
                    scores += [Score(k, v) for k, v in details.items()]
        if "Builtin.Robustness" in names:
            if generate is None:
                scores.append(Score("Builtin.Robustness", None, error="robustness needs a model source"))
            elif acc is None or ref is None:
                scores.append(Score("Builtin.Robustness", None, error="robustness needs a referenceResponse"))
            else:
                perturbation, perturbed_prompt = perturb(record.prompt, f"{self.seed}:{record.index}")
                perturbed_response = await generate(perturbed_prompt)
                acc_p, _ = await self.accuracy(task, perturbed_response, ref)
                scores.append(Score("Builtin.Robustness", max(0.0, acc - acc_p)))
        if "Builtin.Toxicity" in names:
            scores.append(Score("Builtin.Toxicity", toxicity(response)))
        for name in names:
            if name in CITATION_METRICS:
                scores.append(citation_score(name, cited, record.reference))
            elif (
                name in JUDGE_METRICS
                or name in RAG_METRICS
                or name in RAG_GENERATE_METRICS
                or name in self.custom
            ):
                scores += await self._judged(name, record, response, contexts)
        return Outcome(tuple(scores), perturbation, perturbed_prompt, perturbed_response)

    async def _judged(self, name: str, record: Record, response: str, contexts: Sequence[str]) -> list[Score]:
        if name in self.custom:
            crit, judges = custom_criterion(self.custom[name]), self.custom_judges
        else:
            lang = "ja" if is_japanese(record.prompt) or is_japanese(response) else "en"
            crit, judges = criterion(name, lang), self.judges
        if name in RAG_METRICS and not judges:
            return [await self._context_similarity(name, record, contexts)]
        if not judges:
            return [Score(name, None, error="this metric needs evaluatorModelConfig (an LLM judge)")]
        out = []
        for evaluator, chat in judges.items():
            if name in RAG_METRICS:
                # retrieve-only: the passages are what is rated; the response slot shows them
                shown = "\n\n".join(f"[{i + 1}] {c}" for i, c in enumerate(contexts)) or "(nothing retrieved)"
                out.append(
                    await judge_sampled(
                        chat, evaluator, crit, record.prompt, shown, record.reference, (), self.judge_samples
                    )
                )
            else:
                out.append(
                    await judge_sampled(
                        chat,
                        evaluator,
                        crit,
                        record.prompt,
                        response,
                        record.reference,
                        contexts,
                        self.judge_samples,
                    )
                )
        return out

    async def _context_similarity(self, name: str, record: Record, contexts: Sequence[str]) -> Score:
        """Without a judge, RAG context metrics are embedding similarities: ContextRelevance against the
        question, ContextCoverage against the reference answer; the best passage counts."""
        target = record.prompt if name == "Builtin.ContextRelevance" else record.reference
        if target is None:
            return Score(name, None, error="ContextCoverage needs a reference response")
        if not contexts:
            return Score(name, 0.0, explanation="nothing was retrieved")
        sims = await metrics.embedding_similarity(self.embedder, list(contexts), [target] * len(contexts))
        return Score(
            name, max(sims), explanation="embedding cosine of the best passage (no judge configured)"
        )


_CORRECT_PASSAGE = 0.5  # a cited passage is correct when it holds this share of the reference's tokens


def citation_score(name: str, cited: Sequence[str] | None, reference: str | None) -> Score:
    """CitationPrecision / CitationCoverage of one answer (see the module's docstring)."""
    if cited is None:
        return Score(name, None, error="citation metrics need a retrieve-and-generate source")
    if reference is None:
        return Score(name, None, error="citation metrics need a reference response")
    if not cited:
        return Score(name, 0.0, explanation="the answer cites no passage")
    if name == "Builtin.CitationPrecision":
        good = [metrics.reference_recall(p, reference) >= _CORRECT_PASSAGE for p in cited]
        return Score(
            name,
            sum(good) / len(good),
            explanation=f"{sum(good)} of {len(good)} cited passages hold the reference",
        )
    value = metrics.reference_recall("\n".join(cited), reference)
    return Score(name, value, explanation=f"the cited passages hold {value:.0%} of the reference's tokens")
