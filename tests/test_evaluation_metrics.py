"""The evaluation metrics: agreement with the reference implementations on English, good-vs-bad
separation on Japanese, seeded perturbations and intervals."""

from __future__ import annotations

import asyncio

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from haniwa.evaluation import judge, metrics, perturb, stats
from haniwa.evaluation.base import CustomMetric, RatingLevel
from haniwa.evaluation.toxicity import toxic_words, toxicity
from haniwa.runtime.echo import HashEmbedder

EN = [
    ("The quick brown fox jumped over the lazy dog.", "A quick brown dog jumps over the lazy fox!"),
    ("Paris is the capital of France", "The capital of France is Paris."),
    ("It was 42, I think.", "forty-two"),
]
JA_REF = "富士山の高さは3776メートルです。"
JA_GOOD = "富士山は標高3776メートルです。"
JA_BAD = "東京タワーは赤い色をしています。"


@pytest.mark.parametrize(("cand", "ref"), EN)
def test_rouge_equals_rouge_score_on_english(cand: str, ref: str) -> None:
    want = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"]).score(ref, cand)
    assert metrics.rouge_n(cand, ref, 1) == pytest.approx(want["rouge1"].fmeasure)
    assert metrics.rouge_n(cand, ref, 2) == pytest.approx(want["rouge2"].fmeasure)
    assert metrics.rouge_l(cand, ref) == pytest.approx(want["rougeL"].fmeasure)


@pytest.mark.parametrize(("cand", "ref"), EN)
def test_bleu_is_sacrebleu_on_english(cand: str, ref: str) -> None:
    assert metrics.bleu(cand, ref) == pytest.approx(sacrebleu.sentence_bleu(cand, [ref]).score / 100)


def test_f1_and_exact_match_follow_squad() -> None:
    # SQuAD drops articles and punctuation before comparing
    assert metrics.exact_match("The Eiffel Tower!", "eiffel tower") == 1.0
    assert metrics.token_f1("Paris is the capital of France", "The capital of France is Paris.") == 1.0
    assert metrics.token_f1("in Paris", "Paris") == pytest.approx(2 * 0.5 * 1 / 1.5)


def test_japanese_good_answers_score_above_bad_ones() -> None:
    for fn in (metrics.token_f1, metrics.rouge_l, metrics.bleu, metrics.reference_recall):
        good, bad = fn(JA_GOOD, JA_REF), fn(JA_BAD, JA_REF)
        assert good > 0.5 > bad, fn.__name__
    assert metrics.rouge_n(JA_GOOD, JA_REF, 2) > metrics.rouge_n(JA_BAD, JA_REF, 2)
    assert metrics.bleu(JA_GOOD, JA_REF, "mecab") > metrics.bleu(JA_BAD, JA_REF, "mecab")
    # full-width digits and half-width katakana are the same answer
    assert metrics.exact_match("３７７６ﾒｰﾄﾙ", "3776メートル") == 1.0


def test_embedding_similarity_ranks_the_closer_text_higher() -> None:
    embedder = HashEmbedder("hash:hash-384", 384)
    good, bad = asyncio.run(metrics.embedding_similarity(embedder, [JA_GOOD, JA_BAD], [JA_REF, JA_REF]))
    assert 0 <= bad < good <= 1


def test_classification_scores() -> None:
    got = metrics.classification_scores(
        ["positive", "Negative.", "positive"], ["positive", "negative", "negative"]
    )
    assert got == pytest.approx({"accuracy": 2 / 3, "precision": 0.75, "recall": 0.75, "f1": 2 / 3})
    assert metrics.label_match("ポジティブです", "ポジティブ") == 1.0


def test_perturbations_are_seeded_and_japanese_aware() -> None:
    assert perturb.to_full_width("ABC 123") == "ＡＢＣ\u3000１２３"
    assert perturb.to_half_width("ＡＢＣカタカナガ") == "ABCｶﾀｶﾅｶﾞ"
    assert perturb.swap_kana("ひらがなカタカナ") == "ヒラガナかたかな"
    seen = {perturb.perturb(JA_REF, i)[0] for i in range(40)}
    assert {"full_width", "half_width", "kana", "punctuation", "typo"} <= seen
    assert perturb.perturb(JA_REF, 7) == perturb.perturb(JA_REF, 7)
    assert all(p != JA_REF for _, p in (perturb.perturb(JA_REF, i) for i in range(20)))


def test_toxicity_uses_the_guardrail_profanity_list() -> None:
    assert toxicity("このクソ野郎、死ね") == 1.0
    assert toxic_words("ｸｿ") == ["ｸｿ"]
    assert toxicity("classic Scunthorpe") == 0.0
    assert toxicity("ありがとうございます") == 0.0


def test_bootstrap_interval_and_paired_comparison() -> None:
    iv = stats.bootstrap([0.1, 0.9, 0.5, 0.4, 0.6] * 4)
    assert iv.low < iv.mean < iv.high and iv.n == 20
    assert stats.bootstrap([0.1, 0.9, 0.5, 0.4, 0.6] * 4) == iv  # seeded
    a = {str(i): 0.5 + 0.01 * (i % 3) for i in range(30)}
    better = {k: v + 0.2 for k, v in a.items()}
    noisy = {k: v + (0.05 if int(k) % 2 else -0.05) for k, v in a.items()}
    assert stats.compare("Builtin.Accuracy", a, better).verdict == "better"
    assert stats.compare("Builtin.Accuracy", better, a).verdict == "worse"
    assert stats.compare("Builtin.Accuracy", a, noisy).verdict == "indistinguishable"
    # lower toxicity is better
    assert stats.compare("Builtin.Toxicity", better, a).verdict == "better"


def test_judge_request_carries_the_schema_and_reads_the_verdict() -> None:
    crit = judge.criterion("Builtin.Correctness", "ja")
    req = judge.build_request(crit, "富士山の高さは？", "3776メートルです。", "3776メートル")
    assert req.response_schema == judge.schema_for(crit)
    assert req.response_schema["properties"]["rating"]["enum"] == ["no", "partly", "yes"]
    assert "参照回答" in req.messages[0].text and req.params.temperature == 0.0
    ok = judge.read_verdict(crit, '{"rating": "partly", "reasoning": "数値は合う"}', "j")
    assert (ok.value, ok.explanation, ok.evaluator) == (0.5, "数値は合う", "j")
    # off-schema answers: one named label is accepted; an echo of the whole scale is not
    assert judge.read_verdict(crit, "The answer is yes.", "j").value == 1.0
    echoed = judge.read_verdict(crit, "- no\n- partly\n- yes", "j")
    assert echoed.value is None and echoed.error


def test_custom_metric_scales_normalise_to_unit_range() -> None:
    numeric = CustomMetric("m", "rate {{prediction}}", (RatingLevel("bad", 1.0), RatingLevel("good", 5.0)))
    crit = judge.custom_criterion(numeric)
    assert crit.labels == ("1.0", "5.0") and crit.values == (0.0, 1.0)
    words = judge.custom_criterion(
        CustomMetric("w", "x", (RatingLevel("a", "low"), RatingLevel("b", "mid"), RatingLevel("c", "high")))
    )
    assert words.values == (0.0, 0.5, 1.0)
    req = judge.build_request(crit, "Q?", "an answer", None)
    assert "rate an answer" in req.messages[0].text
