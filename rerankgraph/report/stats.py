"""Paired significance of runs against a baseline, on per-query scores: scipy's paired
t-test and paired permutation test, Holm's correction across runs, Cohen's d and a 95%
confidence interval of the mean difference."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from rerankgraph.errors import InputError

PERMUTATIONS = 9999  # scipy runs the exact test instead when 2**n is no more than this
SEED = 0  # the permutation test is reproducible


def _scipy_stats() -> Any:
    try:
        import scipy.stats
    except ImportError:
        raise InputError("the report needs scipy: pip install 'rerankgraph[report]'") from None
    return scipy.stats


@dataclass(frozen=True)
class PairedTest:
    """A run against the baseline over n queries. p-values are NaN where the test is
    undefined (every difference the same); Holm treats those as 1."""

    run: str
    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    t: float
    p_t: float
    p_perm: float
    cohens_d: float
    p_t_holm: float = math.nan
    p_perm_holm: float = math.nan


def paired_test(run: str, scores: Sequence[float], baseline: Sequence[float]) -> PairedTest:
    """The t-test (scipy.stats.ttest_rel) and the permutation test
    (scipy.stats.permutation_test, permutation_type='samples': each query's two scores
    are swapped or not) of the mean of scores - baseline, two-sided. The interval is the
    t-test's 95% interval of the mean difference; Cohen's d for paired samples is the
    mean difference over the standard deviation of the differences (ddof=1)."""
    import numpy as np

    stats = _scipy_stats()
    x, y = np.asarray(scores, dtype=float), np.asarray(baseline, dtype=float)
    if x.shape != y.shape or x.size < 2:
        raise InputError(f"a paired test needs two scores per query on at least 2 queries, "
                         f"got {x.size} and {y.size}")
    diffs = x - y
    sd = float(np.std(diffs, ddof=1))
    if sd == 0.0:  # the t statistic is undefined; scipy would warn and return NaN
        t = p_t = low = high = math.nan
    else:
        result = stats.ttest_rel(x, y)
        interval = result.confidence_interval(0.95)
        t, p_t = float(result.statistic), float(result.pvalue)
        low, high = float(interval.low), float(interval.high)

    def mean_difference(a: Any, b: Any, axis: int) -> Any:
        return np.mean(a - b, axis=axis)

    if not diffs.any():
        p_perm = 1.0  # every swap gives the same statistic
    else:
        perm = stats.permutation_test((x, y), mean_difference, permutation_type="samples",
                                      vectorized=True, n_resamples=PERMUTATIONS,
                                      alternative="two-sided", rng=np.random.default_rng(SEED))
        p_perm = float(perm.pvalue)
    mean = float(np.mean(diffs))
    return PairedTest(run=run, n=int(x.size), mean_diff=mean, ci_low=low, ci_high=high,
                      t=t, p_t=p_t, p_perm=p_perm, cohens_d=mean / sd if sd else math.nan)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input's order (NaN counts as 1).
    Written here because neither scipy (false_discovery_control does BH and BY only)
    nor any other installed library has it: the k-th smallest of m p-values becomes
    max over j <= k of min(1, (m - j + 1) * p_(j))."""
    m = len(pvalues)
    clean = [1.0 if math.isnan(p) else p for p in pvalues]
    adjusted = [0.0] * m
    running = 0.0
    for k, i in enumerate(sorted(range(m), key=lambda i: clean[i])):
        running = max(running, min(1.0, (m - k) * clean[i]))
        adjusted[i] = running
    return adjusted


def against_baseline(per_query: dict[str, Sequence[float]], baseline: str) -> list[PairedTest]:
    """A paired test of every run but the baseline against it, with Holm-adjusted
    p-values across those runs (each test family on its own). `per_query` maps a run
    label to its scores over the same queries in the same order."""
    tests = [paired_test(label, scores, per_query[baseline])
             for label, scores in per_query.items() if label != baseline]
    t_holm = holm([t.p_t for t in tests])
    perm_holm = holm([t.p_perm for t in tests])
    return [replace(test, p_t_holm=a, p_perm_holm=b)
            for test, a, b in zip(tests, t_holm, perm_holm, strict=True)]
