"""The report's statistics on cases worked by hand."""

import math

import pytest

from rerankgraph.report.stats import against_baseline, holm, paired_test


def test_paired_t_test_matches_the_hand_computation():
    # diffs = (0.1, 0.2, 0.3, 0.0): mean 0.15, sd = sqrt(0.05 / 3) = 0.129099,
    # se = sd / 2 = 0.0645497, t = 0.15 / 0.0645497 = 2.32379 on 3 df,
    # two-sided p = 0.10273 (t table, 3 df), d = 0.15 / 0.129099 = 1.16190,
    # 95% CI = 0.15 -+ 3.18245 * 0.0645497 = (-0.05543, 0.35543).
    test = paired_test("run", [0.5, 0.7, 0.9, 0.6], [0.4, 0.5, 0.6, 0.6])
    assert test.n == 4 and test.mean_diff == pytest.approx(0.15)
    assert test.t == pytest.approx(2.32379, abs=1e-5)
    assert test.p_t == pytest.approx(0.10273, abs=1e-5)
    assert test.cohens_d == pytest.approx(1.16190, abs=1e-5)
    assert (test.ci_low, test.ci_high) == pytest.approx((-0.05543, 0.35543), abs=1e-5)
    # Exact permutation test (2**4 = 16 swaps <= 9999): the zero diff's sign changes
    # nothing; of the 8 sign patterns of (0.1, 0.2, 0.3), sums are 0.6, 0.0, 0.2, 0.4,
    # -0.4, -0.2, 0.0, -0.6, and only +++ and --- reach |sum| >= 0.6: p = 2/8.
    assert test.p_perm == pytest.approx(0.25)


def test_runs_that_never_differ_have_no_t_and_permutation_p_of_one():
    test = paired_test("same", [0.2, 0.4, 0.6], [0.2, 0.4, 0.6])
    assert math.isnan(test.t) and math.isnan(test.p_t) and math.isnan(test.cohens_d)
    assert test.p_perm == 1.0


def test_holm_step_down_on_a_hand_worked_example():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04,
    # raised to the running max 0.06); back in the input's order:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.6, float("nan")]) == pytest.approx([1.0, 1.0])  # capped; NaN counts as 1


def test_against_baseline_tests_every_other_run_and_adjusts_across_them():
    per_query = {"base": [0.1, 0.2, 0.3, 0.4], "up": [0.3, 0.5, 0.4, 0.8],
                 "same": [0.1, 0.2, 0.3, 0.4]}
    tests = against_baseline(per_query, "base")
    assert [t.run for t in tests] == ["up", "same"]
    up, same = tests
    assert up.p_t_holm == pytest.approx(min(1.0, 2 * up.p_t))
    assert same.p_t_holm == 1.0 and same.p_perm_holm == 1.0
