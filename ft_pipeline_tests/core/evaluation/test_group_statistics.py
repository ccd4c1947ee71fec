"""Per-group intervals and the best-to-worst group gap against statsmodels and worked examples."""
from __future__ import annotations

import numpy as np
import pytest

from ft_pipeline.core.evaluation.group_statistics import group_gap, group_intervals
from ft_pipeline.core.evaluation.statistics import wilson


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
