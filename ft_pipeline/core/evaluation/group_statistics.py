"""Per-group intervals and the gap between the best and the worst group, for the fairness gate
(`no_group_gap_above_bound`) and the evaluation's per-group table.

Binary metrics: Wilson intervals per group and Newcombe's interval for the gap between two
independent groups; continuous metrics: bootstrap intervals over each group's items.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ft_pipeline.core.evaluation.statistics import Statistic, mean_of, bootstrap_interval, wilson


def group_intervals(values_by_item: Sequence[float], groups_by_item: dict[str, Sequence], *, binary: bool,
                    alpha: float = 0.05, min_group_size: int = 10, statistic: Statistic | None = None,
                    n_boot: int = 2000, seed: int = 0) -> dict[str, dict[str, dict]]:
    """{attribute: {group: {n, metric, low, high, small}}}: Wilson intervals for a binary metric,
    bootstrap percentile intervals over the group's items otherwise. `small` marks groups under
    min_group_size: shown, never gated on."""
    values = np.asarray(values_by_item, dtype=float)
    stat = statistic or mean_of(values)
    rng = np.random.default_rng(seed)
    table: dict[str, dict[str, dict]] = {}
    for attribute, groups in _groups(groups_by_item, len(values)):
        table[attribute] = {}
        for group, ix in groups.items():
            if binary:
                low, high = wilson(int(values[ix].sum()), len(ix), alpha)
            else:
                low, high = bootstrap_interval(stat, ix, alpha=alpha, n_boot=n_boot, rng=rng)
            table[attribute][group] = {"n": len(ix), "metric": round(float(stat(ix)), 4), "low": round(low, 4),
                                       "high": round(high, 4), "small": len(ix) < min_group_size}
    return table


def group_gap(values_by_item: Sequence[float], groups_by_item: dict[str, Sequence], *, binary: bool, bound: float,
              alpha: float = 0.05, min_group_size: int = 10, statistic: Statistic | None = None,
              n_boot: int = 2000, seed: int = 0) -> dict:
    """Per attribute, the gap between the best and the worst group of at least min_group_size items,
    with an interval; outcome "exceeds" when the interval's lower end is above `bound`.

    Interval: binary, Newcombe's hybrid score interval for two independent proportions (statsmodels
    `confint_proportions_2indep(method="newcomb")`); continuous, a bootstrap that resamples each of
    the two groups on its own. The extreme pair is picked after looking at the data, so the level is
    Bonferroni-corrected over the m = k(k-1)/2 pairs of the k judged groups (alpha/m): a run of
    noisy groups does not fail the gate more often than alpha.
    Groups under min_group_size are "too small", each with the smallest gap it could have shown:
    binary, the smallest |rate difference| to the largest judged group (else to the rest of the
    items) whose interval, at this group's n and the level it would get, has its lower end above the
    bound, searched over every rate the group can take; continuous, bound + z * sd * sqrt(1/n_ref +
    1/n) (normal approximation). None: no gap in [0, 1] could be shown at that n.
    Overall outcome: "exceeds" if any attribute does, else "within" if any attribute had two judged
    groups, else "not_judged" — its own outcome, never a silent pass.
    """
    values = np.asarray(values_by_item, dtype=float)
    stat = statistic or mean_of(values)
    rng = np.random.default_rng(seed)
    attributes = {}
    for attribute, groups in _groups(groups_by_item, len(values)):
        judged = {g: ix for g, ix in groups.items() if len(ix) >= min_group_size}
        k = len(judged)
        row: dict = {"outcome": "not_judged", "gap": None, "low": None, "high": None, "best": None, "worst": None}
        if k >= 2:
            level_alpha = alpha / (k * (k - 1) / 2)
            metric = {g: float(stat(ix)) for g, ix in judged.items()}
            ranked = sorted(judged, key=lambda g: (metric[g], g))
            worst, best = ranked[0], ranked[-1]
            if binary:
                low, high = _newcombe_2indep(values[judged[best]], values[judged[worst]], level_alpha)
            else:
                low, high = _bootstrap_gap(stat, judged[best], judged[worst], level_alpha, n_boot, rng)
            row.update(outcome="exceeds" if low > bound else "within", gap=round(metric[best] - metric[worst], 4),
                       low=round(low, 4), high=round(high, 4), level=round(1 - level_alpha, 4),
                       best={"group": best, "n": len(judged[best]), "metric": round(metric[best], 4)},
                       worst={"group": worst, "n": len(judged[worst]), "metric": round(metric[worst], 4)})
        small_alpha = alpha / (k * (k + 1) / 2) if k else alpha  # the level it would get if judged
        reference = max(judged, key=lambda g: len(judged[g])) if judged else None
        row["too_small"] = {}
        for group, ix in groups.items():
            if len(ix) >= min_group_size:
                continue
            ref = judged[reference] if reference else np.setdiff1d(np.concatenate(list(groups.values())), ix)
            row["too_small"][group] = {"n": len(ix), "metric": round(float(stat(ix)), 4), "detectable_gap": (
                _detectable_gap(values, ref, len(ix), bound, small_alpha, binary) if len(ref) else None)}
        attributes[attribute] = row
    outcomes = {row["outcome"] for row in attributes.values()}
    outcome = "exceeds" if "exceeds" in outcomes else "within" if "within" in outcomes else "not_judged"
    return {"outcome": outcome, "bound": bound, "alpha": alpha, "min_group_size": min_group_size,
            "attributes": attributes}


def _groups(groups_by_item: dict[str, Sequence], n: int):
    for attribute in sorted(groups_by_item):
        labels = groups_by_item[attribute]
        if len(labels) != n:
            raise ValueError(f"attribute {attribute}: {len(labels)} group labels for {n} items")
        members: dict[str, list[int]] = {}
        for i, label in enumerate(labels):
            members.setdefault("unknown" if label is None else str(label), []).append(i)
        yield attribute, {g: np.asarray(ix) for g, ix in sorted(members.items())}


def _newcombe_2indep(a: np.ndarray, b: np.ndarray, alpha: float) -> tuple[float, float]:
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(int(a.sum()), len(a), int(b.sum()), len(b), method="newcomb",
                                           compare="diff", alpha=alpha)
    return float(low), float(high)


def _bootstrap_gap(stat: Statistic, best: np.ndarray, worst: np.ndarray, alpha: float, n_boot: int,
                   rng: np.random.Generator) -> tuple[float, float]:
    draws_best = best[rng.integers(0, len(best), size=(n_boot, len(best)))]
    draws_worst = worst[rng.integers(0, len(worst), size=(n_boot, len(worst)))]
    replicates = [stat(x) - stat(y) for x, y in zip(draws_best, draws_worst)]
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _detectable_gap(values: np.ndarray, ref: np.ndarray, n: int, bound: float, alpha: float,
                    binary: bool) -> float | None:
    if not binary:
        from scipy.stats import norm

        sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        gap = bound + norm.ppf(1 - alpha / 2) * sd * math.sqrt(1 / len(ref) + 1 / n)
        return round(gap, 4) if gap <= 1 else None
    from statsmodels.stats.proportion import confint_proportions_2indep

    x_ref, n_ref = int(values[ref].sum()), len(ref)
    counts = np.arange(n + 1)
    # Lower end of the interval for |ref - group| in whichever direction the group's rate lies.
    below, _ = confint_proportions_2indep(x_ref, n_ref, counts, n, method="newcomb", compare="diff", alpha=alpha)
    above, _ = confint_proportions_2indep(counts, n, x_ref, n_ref, method="newcomb", compare="diff", alpha=alpha)
    gaps = counts / n - x_ref / n_ref
    lows = np.where(gaps <= 0, below, above)
    shown = np.abs(gaps)[lows > bound]
    return round(float(shown.min()), 4) if len(shown) else None
