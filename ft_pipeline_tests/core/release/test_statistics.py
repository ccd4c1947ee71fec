"""Paired comparisons and group intervals against scipy/statsmodels and published references."""
from __future__ import annotations

import numpy as np
import pytest

from ft_pipeline.core.release.statistics import (
    compare_binary,
    compare_bootstrap,
    group_gap,
    group_intervals,
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


# --- groups -------------------------------------------------------------------------------------


def test_group_intervals_are_wilson_per_group_and_flag_small_groups():
    values = [1] * 18 + [0] * 2 + [1] * 3 + [0] * 3
    groups = {"region": ["north"] * 20 + ["south"] * 6}
    table = group_intervals(values, groups, binary=True, min_group_size=10)
    north, south = table["region"]["north"], table["region"]["south"]
    assert (north["n"], north["metric"], north["small"]) == (20, 0.9, False)
    assert (north["low"], north["high"]) == pytest.approx(wilson(18, 20), abs=1e-4)
    assert south["small"] and (south["low"], south["high"]) == pytest.approx(wilson(3, 6), abs=1e-4)


def test_continuous_group_intervals_hold_the_group_mean():
    rng = np.random.default_rng(8)
    values = np.r_[rng.normal(0.7, 0.1, 40), rng.normal(0.4, 0.1, 40)]
    table = group_intervals(values, {"segment": ["a"] * 40 + ["b"] * 40}, binary=False, n_boot=500)
    for group, row in table["segment"].items():
        assert row["low"] < row["metric"] < row["high"] and row["high"] - row["low"] < 0.1


def test_a_noise_gap_between_small_groups_does_not_exceed_the_bound():
    # Same true rate in every group, groups of 16-25 like the demo's held-out split: the observed
    # gap between the extremes reaches the bound, the interval says it may be noise.
    sizes = [16, 19, 22, 25]
    labels = [f"g{i}" for i, size in enumerate(sizes) for _ in range(size)]
    results = [group_gap((np.random.default_rng(seed).random(len(labels)) < 0.6).astype(int), {"age_band": labels},
                         binary=True, bound=0.35, min_group_size=10) for seed in range(40)]
    assert all(result["outcome"] == "within" for result in results)
    # ...while the point gap alone would have failed the old gate on some of these draws.
    assert max(result["attributes"]["age_band"]["gap"] for result in results) >= 0.35


def test_a_real_gap_exceeds_the_bound():
    values = [1] * 57 + [0] * 3 + [1] * 15 + [0] * 45  # 0.95 vs 0.25 on 60 items each
    result = group_gap(values, {"region": ["north"] * 60 + ["south"] * 60}, binary=True, bound=0.35)
    row = result["attributes"]["region"]
    assert result["outcome"] == "exceeds" and row["gap"] == pytest.approx(0.7) and row["low"] > 0.35
    assert (row["best"]["group"], row["worst"]["group"]) == ("north", "south")


def test_the_gap_interval_is_statsmodels_newcombe_at_a_bonferroni_level():
    from statsmodels.stats.proportion import confint_proportions_2indep

    values = [1] * 30 + [0] * 10 + [1] * 20 + [0] * 20 + [1] * 25 + [0] * 15
    groups = {"a": ["x"] * 40 + ["y"] * 40 + ["z"] * 40}
    row = group_gap(values, groups, binary=True, bound=0.35, alpha=0.06)["attributes"]["a"]
    low, high = confint_proportions_2indep(30, 40, 20, 40, method="newcomb", compare="diff", alpha=0.02)
    assert (row["low"], row["high"], row["level"]) == pytest.approx((low, high, 0.98), abs=1e-4)


def test_no_judgeable_attribute_is_its_own_outcome_with_what_each_group_could_show():
    values = [1, 1, 0, 1, 0, 0, 1, 1]
    result = group_gap(values, {"region": ["n"] * 4 + ["s"] * 4}, binary=True, bound=0.35, min_group_size=10)
    assert result["outcome"] == "not_judged"
    small = result["attributes"]["region"]["too_small"]
    assert set(small) == {"n", "s"} and all(row["n"] == 4 for row in small.values())
    # Four records against the other four: even 0/4 vs 3/4 does not clear 0.35 credibly.
    assert all(row["detectable_gap"] is None for row in small.values())


def test_detectable_gap_shrinks_with_group_size():
    # Two judged groups at 0.9; a tiny group can only be caught by failing (nearly) everything.
    gaps = {}
    for n in (3, 5, 9):
        values = ([1] * 180 + [0] * 20) * 2 + [1] * n
        groups = {"g": ["a"] * 200 + ["b"] * 200 + ["tiny"] * n}
        row = group_gap(values, groups, binary=True, bound=0.35, min_group_size=10)["attributes"]["g"]
        gaps[n] = row["too_small"]["tiny"]["detectable_gap"]
    assert gaps[3] is None  # 0 of 3 against 0.9 is not credibly more than 0.35 apart
    assert gaps[5] == pytest.approx(0.9)  # only 0 of 5 would show
    assert 0.35 < gaps[9] < gaps[5]


def test_continuous_gap_uses_a_bootstrap_of_each_group():
    rng = np.random.default_rng(12)
    values = np.r_[rng.normal(0.9, 0.05, 50), rng.normal(0.3, 0.05, 50)]
    result = group_gap(values, {"seg": ["a"] * 50 + ["b"] * 50}, binary=False, bound=0.35, n_boot=500)
    row = result["attributes"]["seg"]
    assert result["outcome"] == "exceeds" and row["low"] < row["gap"] < row["high"]
