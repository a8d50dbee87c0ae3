"""Uncertainty: a bootstrap 95% interval for each metric's mean, and a paired comparison of two jobs.

Both resample records with a seeded generator (numpy PCG64), so the same scores give the same interval
on every run. The comparison is a paired bootstrap: it resamples the *differences* between the two jobs'
scores on the same records, so the records' own difficulty cancels out, and says "better" or "worse"
only when the 95% interval of the mean difference excludes zero, else "indistinguishable".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["Interval", "Comparison", "bootstrap", "compare", "LOWER_IS_BETTER"]

RESAMPLES = 2000
SEED = 20240917

# metrics where a smaller score is the better one (Bedrock's robustness is a drop, toxicity a rate)
LOWER_IS_BETTER = frozenset(
    {
        "Builtin.Robustness",
        "Builtin.Toxicity",
        "Builtin.Harmfulness",
        "Builtin.Stereotyping",
        "Builtin.Refusal",
    }
)


@dataclass(frozen=True)
class Interval:
    """A metric's mean over ``n`` records and its bootstrap 95% interval (``low``..``high``)."""

    mean: float
    low: float
    high: float
    n: int

    def wire(self) -> dict[str, float | int | None]:
        """As JSON: no NaN (a metric no record could score has None for its figures)."""

        def num(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {"mean": num(self.mean), "ci95Low": num(self.low), "ci95High": num(self.high), "count": self.n}


Verdict = Literal["better", "worse", "indistinguishable"]


@dataclass(frozen=True)
class Comparison:
    """Job B against job A on one metric: the mean difference B − A over the shared records, its
    interval, and the verdict (which already accounts for metrics where lower is better)."""

    metric: str
    difference: float
    low: float
    high: float
    n: int
    verdict: Verdict


def _clean(values: Sequence[float | None]) -> np.ndarray:
    a = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    return a


def bootstrap(values: Sequence[float | None], *, resamples: int = RESAMPLES, seed: int = SEED) -> Interval:
    """The mean of ``values`` (None and NaN skipped) and its percentile bootstrap 95% interval."""
    a = _clean(values)
    if a.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    rng = np.random.default_rng(seed)
    # resample in blocks so a large dataset never allocates resamples × n at once
    means = np.empty(resamples)
    block = max(1, 2_000_000 // a.size)
    for start in range(0, resamples, block):
        k = min(block, resamples - start)
        means[start : start + k] = a[rng.integers(0, a.size, size=(k, a.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Interval(float(a.mean()), float(low), float(high), int(a.size))


def compare(
    metric: str,
    a: Mapping[str, float | None],
    b: Mapping[str, float | None],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Comparison:
    """Paired bootstrap of B − A on the records both jobs scored (keys: record ids, e.g. the prompt)."""
    keys = [k for k in a if k in b and a[k] is not None and b[k] is not None]
    diffs = [float(b[k]) - float(a[k]) for k in keys]  # type: ignore[arg-type]
    iv = bootstrap(diffs, resamples=resamples, seed=seed)
    verdict: Verdict = "indistinguishable"
    if iv.n >= 2 and (iv.low > 0 or iv.high < 0):
        up = iv.low > 0
        if metric in LOWER_IS_BETTER:
            up = not up
        verdict = "better" if up else "worse"
    return Comparison(metric, iv.mean, iv.low, iv.high, iv.n, verdict)
