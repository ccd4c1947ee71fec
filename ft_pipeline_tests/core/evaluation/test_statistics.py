"""Paired comparisons against scipy/statsmodels and published references."""
from __future__ import annotations

import numpy as np
import pytest

from ft_pipeline.core.evaluation.statistics import (
    compare_binary,
    compare_bootstrap,
    newcombe_paired,
    wilson,
)


def paired(both: int, only_a: int, only_b: int, neither: int) -> tuple[list[int], list[int]]:
    a = [1] * both + [1] * only_a + [0] * only_b + [0] * neither
    b = [1] * both + [0] * only_a + [1] * only_b + [0] * neither
    return a, b


@pytest.mark.parametrize("successes,n", [(0, 5), (7, 10), (30, 30), (51, 102)])
def test_wilson_is_statsmodels(successes, n):
    from statsmodels.stats.proportion import proportion_confint

    assert wilson(successes, n, 0.05) == pytest.approx(proportion_confint(successes, n, 0.05, method="wilson"))


def test_wilson_of_nothing_is_the_whole_range():
    assert wilson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("table", [(40, 12, 3, 45), (10, 1, 0, 19), (5, 9, 9, 7), (0, 4, 14, 2)])
def test_mcnemar_p_value_is_the_exact_binomial_test_on_discordant_pairs(table):
    from scipy.stats import binomtest

    both, only_a, only_b, neither = table
    result = compare_binary(*paired(*table))
    assert result.p_value == pytest.approx(binomtest(only_a, only_a + only_b, 0.5).pvalue)
    assert result.difference == pytest.approx((only_a - only_b) / sum(table))
    assert result.n == sum(table) and result.method == "exact McNemar"


def test_newcombe_paired_interval_matches_the_published_example():
    # Fagerland, Lydersen & Laake, "Statistical Analysis of Contingency Tables" (2017), ch. 8:
    # complete response before/after consolidation therapy (Cavo et al. 2012), table [[59, 6], [16, 80]];
    # Newcombe square-and-add 95% CI for the difference: -0.1186 to -0.0046.
    low, high = newcombe_paired(59, 6, 16, 80, 0.05)
    assert (round(low, 4), round(high, 4)) == (-0.1186, -0.0046)


def test_paired_interval_keeps_its_coverage_at_small_n():
    rng = np.random.default_rng(7)
    covered, trials = 0, 300
    for _ in range(trials):
        base = rng.random(40) < 0.6
        tuned = np.where(rng.random(40) < 0.8, base, rng.random(40) < 0.7)  # correlated, true diff 0.02
        result = compare_binary(tuned.astype(int), base.astype(int))
        covered += result.low <= 0.8 * 0.6 + 0.2 * 0.7 - 0.6 <= result.high
    assert covered / trials >= 0.92


def test_no_discordant_pairs_is_no_evidence():
    result = compare_binary(*paired(20, 0, 0, 10))
    assert result.difference == 0 and result.p_value == 1.0 and result.low < 0 < result.high


def test_binary_comparison_rejects_continuous_values():
    with pytest.raises(ValueError, match="0/1"):
        compare_binary([0.5, 1.0], [1.0, 0.0])


def test_bootstrap_interval_agrees_with_the_paired_t_interval_on_a_mean():
    from scipy.stats import ttest_rel

    rng = np.random.default_rng(3)
    a = rng.random(2000)
    b = a - 0.03 + rng.normal(0, 0.2, 2000)
    result = compare_bootstrap(a, b, 2000, n_boot=4000, seed=1)
    reference = ttest_rel(a, b).confidence_interval(0.95)
    assert result.difference == pytest.approx(float(np.mean(a - b)))
    assert result.low == pytest.approx(reference.low, abs=0.004)
    assert result.high == pytest.approx(reference.high, abs=0.004)
    assert result.p_value < 0.01


def test_bootstrap_fast_path_draws_the_same_resamples_as_statistics():
    rng = np.random.default_rng(4)
    a, b = rng.random(300), rng.random(300)
    fast = compare_bootstrap(a, b, 300, n_boot=500, seed=9)
    slow = compare_bootstrap(lambda i: a[i].mean(), lambda i: b[i].mean(), 300, n_boot=500, seed=9)
    assert (fast.low, fast.high, fast.p_value) == pytest.approx((slow.low, slow.high, slow.p_value))


def test_bootstrap_recomputes_a_non_mean_statistic_on_each_resample():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(5)
    truth = rng.integers(0, 3, 200)
    good = np.where(rng.random(200) < 0.8, truth, rng.integers(0, 3, 200))
    poor = np.where(rng.random(200) < 0.4, truth, rng.integers(0, 3, 200))

    def macro_f1(pred):
        return lambda i: f1_score(truth[i], pred[i], average="macro")

    result = compare_bootstrap(macro_f1(good), macro_f1(poor), 200, n_boot=300, seed=0)
    assert result.difference == pytest.approx(f1_score(truth, good, average="macro") - f1_score(truth, poor, average="macro"))
    assert 0 < result.low < result.difference < result.high


def test_bootstrap_p_value_is_large_without_a_difference_and_seeded():
    rng = np.random.default_rng(6)
    a = rng.random(500)
    b = a[rng.permutation(500)]
    first, again = (compare_bootstrap(a, b, 500, seed=2) for _ in range(2))
    assert first.p_value > 0.2 and first.low < 0 < first.high
    assert first == again


@pytest.mark.parametrize("table,words", [
    ((40, 30, 5, 25), "tuned is ahead of base by 0.25 (95% interval"),
    ((40, 5, 30, 25), "tuned is behind base by 0.25 (95% interval"),
    ((40, 5, 6, 49), "no credible difference between tuned and base: -0.01 (95% interval"),
])
def test_sentence_reads_as_a_reviewer_would_say_it(table, words):
    sentence = compare_binary(*paired(*table)).sentence()
    assert sentence.startswith(words) and sentence.endswith("n = 100; exact McNemar)")
