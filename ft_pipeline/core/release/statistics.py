"""Paired comparisons of model variants on the same held-out items, with intervals a reviewer reads.

A release gate asks "is the tuned model better than the base by at least the margin?". Two point
estimates cannot answer that on a hundred items: the difference moves by 0.1 from noise alone. So
each comparison carries a confidence interval for the difference, and the gates (gates.py) pass
only when the interval's lower end clears the margin.

- Binary per-item metrics (exact match, accuracy): exact McNemar test for the p-value and Newcombe's
  square-and-add interval for the paired difference (`compare_binary`).
- Continuous or non-mean metrics (ROUGE-L, chrF, macro-F1): a paired bootstrap over items
  (`compare_bootstrap`).
- Per group: Wilson (binary) or bootstrap intervals, and the gap between the best and the worst
  group with an interval (`group_intervals`, `group_gap`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

Statistic = Callable[[np.ndarray], float]  # item indices -> metric on those items
BOOTSTRAP_CHUNK = 256  # replicates drawn at once: 256 x 10k indices = 20 MB, however large B is


def wilson(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a proportion (statsmodels); (0, 1) when there is nothing to judge."""
    from statsmodels.stats.proportion import proportion_confint

    if n <= 0:
        return 0.0, 1.0
    low, high = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return float(low), float(high)


@dataclass
class Comparison:
    """Variant `a` minus variant `b` on the same items: difference, its interval and a p-value."""

    a: str
    b: str
    metric: str
    difference: float
    low: float
    high: float
    p_value: float
    n: int
    method: str
    alpha: float = 0.05

    def as_dict(self) -> dict:
        """The JSON that `eval_report.comparisons` carries (read by tools outside the project)."""
        return {"difference": round(self.difference, 4), "low": round(self.low, 4), "high": round(self.high, 4),
                "p_value": float(f"{self.p_value:.4g}"), "n": self.n, "method": self.method}

    def sentence(self) -> str:
        """'tuned is ahead of base by 0.21 (95% interval 0.12–0.30, p < 0.001, n = 102; exact McNemar)'."""
        level = f"{100 * (1 - self.alpha):g}%"
        p = "p < 0.001" if self.p_value < 0.001 else f"p = {self.p_value:.3f}"
        what = f" on {self.metric}" if self.metric else ""
        if self.low > 0:
            head = f"{self.a} is ahead of {self.b}{what} by {self.difference:.2f}"
            interval = f"{self.low:.2f}–{self.high:.2f}"
        elif self.high < 0:
            head = f"{self.a} is behind {self.b}{what} by {-self.difference:.2f}"
            interval = f"{-self.high:.2f}–{-self.low:.2f}"
        else:
            head = f"no credible difference between {self.a} and {self.b}{what}: {self.difference:+.2f}"
            interval = f"{self.low:+.2f} to {self.high:+.2f}"
        return f"{head} ({level} interval {interval}, {p}, n = {self.n}; {self.method})"


def compare_binary(a_items: Sequence[float], b_items: Sequence[float], *, alpha: float = 0.05,
                   names: tuple[str, str] = ("tuned", "base"), metric: str = "") -> Comparison:
    """Paired 0/1 outcomes of two variants on the same items.

    p-value: exact (conditional binomial) McNemar test on the discordant pairs, statsmodels
    `mcnemar(exact=True)`: only items where the variants disagree carry evidence.
    Interval: Newcombe's square-and-add interval for paired proportions (method 10 of Newcombe 1998,
    Stat Med 17:2635), built from the Wilson intervals of both marginal rates and their estimated
    correlation. Chosen because it is closed-form (no root-finding, exactly reproducible), keeps
    near-nominal coverage down to small n and rates near 0 or 1 where the Wald interval collapses
    (Fagerland, Lydersen & Laake 2014, Stat Methods Med Res, rank it among the recommended
    intervals), and rests on the same Wilson intervals as the per-group figures.
    """
    a, b = _paired(a_items, b_items)
    if not np.isin(a, (0.0, 1.0)).all() or not np.isin(b, (0.0, 1.0)).all():
        raise ValueError("compare_binary needs 0/1 outcomes; use compare_bootstrap for continuous metrics")
    from statsmodels.stats.contingency_tables import mcnemar

    n = len(a)
    both, only_a = int(((a == 1) & (b == 1)).sum()), int(((a == 1) & (b == 0)).sum())
    only_b, neither = int(((a == 0) & (b == 1)).sum()), int(((a == 0) & (b == 0)).sum())
    p_value = float(mcnemar([[both, only_a], [only_b, neither]], exact=True).pvalue) if only_a + only_b else 1.0
    low, high = newcombe_paired(both, only_a, only_b, neither, alpha)
    return Comparison(names[0], names[1], metric, (only_a - only_b) / n, low, high, p_value, n,
                      "exact McNemar", alpha)


def newcombe_paired(both: int, only_a: int, only_b: int, neither: int, alpha: float = 0.05) -> tuple[float, float]:
    """Newcombe's (1998) method 10 for p_a - p_b from a paired 2x2 table.

    L = d - sqrt(dl_a^2 - 2 phi dl_a du_b + du_b^2), U = d + sqrt(du_a^2 - 2 phi du_a dl_b + dl_b^2),
    with (l, u) the Wilson limits of each marginal rate, dl = p - l, du = u - p, and phi the
    continuity-corrected phi coefficient of the table (0 when a margin is empty).
    """
    n = both + only_a + only_b + neither
    p_a, p_b = (both + only_a) / n, (both + only_b) / n
    l_a, u_a = wilson(both + only_a, n, alpha)
    l_b, u_b = wilson(both + only_b, n, alpha)
    margins = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = 0.0
    if margins:
        cross = both * neither - only_a * only_b
        # Newcombe's continuity correction shrinks a positive association towards 0 by n/2.
        phi = (cross - n / 2) / math.sqrt(margins) if cross > n / 2 else min(cross, 0) / math.sqrt(margins)
    d = p_a - p_b
    low = d - math.sqrt(max((p_a - l_a) ** 2 - 2 * phi * (p_a - l_a) * (u_b - p_b) + (u_b - p_b) ** 2, 0.0))
    high = d + math.sqrt(max((u_a - p_a) ** 2 - 2 * phi * (u_a - p_a) * (p_b - l_b) + (p_b - l_b) ** 2, 0.0))
    return max(low, -1.0), min(high, 1.0)


def compare_bootstrap(statistic_a: Statistic | Sequence[float], statistic_b: Statistic | Sequence[float], n: int,
                      *, alpha: float = 0.05, n_boot: int = 2000, seed: int = 0,
                      names: tuple[str, str] = ("tuned", "base"), metric: str = "") -> Comparison:
    """Paired bootstrap of statistic_a - statistic_b over `n` items.

    Each replicate draws n item indices with replacement once and applies both statistics to the
    same indices, so the pairing (the same hard items for both variants) is kept, and a statistic
    that is not a mean (macro-F1) is recomputed on the resample. A statistic is a callable
    `f(indices) -> float`, or a sequence of per-item values meaning their mean (the fast path:
    vectorized, 2,000 replicates on 10k items in well under a second).

    Interval: percentile interval of the replicated differences at alpha/2 and 1 - alpha/2.
    p-value: two-sided, from the same distribution: 2 x the smaller share of replicates on either
    side of 0, each share (1 + count) / (B + 1) so it is never 0 (Davison & Hinkley 1997, ch. 4).
    It is the smallest alpha whose percentile interval excludes 0, so interval and p-value agree.
    """
    if n < 1 or n_boot < 1:
        raise ValueError("n and n_boot must be at least 1")
    values = [None if callable(s) else np.asarray(s, dtype=float) for s in (statistic_a, statistic_b)]
    for v in values:
        if v is not None and len(v) != n:
            raise ValueError(f"{len(v)} per-item values for n = {n} items")
    everything = np.arange(n)
    stats = [s if callable(s) else _mean_of(v) for s, v in zip((statistic_a, statistic_b), values)]
    observed = float(stats[0](everything) - stats[1](everything))
    rng = np.random.default_rng(seed)
    replicates = np.empty(n_boot)
    diff = values[0] - values[1] if values[0] is not None and values[1] is not None else None
    for start in range(0, n_boot, BOOTSTRAP_CHUNK):
        indices = rng.integers(0, n, size=(min(BOOTSTRAP_CHUNK, n_boot - start), n))
        if diff is not None:
            replicates[start:start + len(indices)] = diff[indices].mean(axis=1)
        else:
            replicates[start:start + len(indices)] = [stats[0](i) - stats[1](i) for i in indices]
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    below, above = (1 + np.sum(replicates <= 0)) / (n_boot + 1), (1 + np.sum(replicates >= 0)) / (n_boot + 1)
    p_value = float(min(1.0, 2 * min(below, above)))
    return Comparison(names[0], names[1], metric, observed, float(low), float(high), p_value, n,
                      f"paired bootstrap, {n_boot} resamples", alpha)


def bootstrap_interval(statistic: Statistic, indices: np.ndarray, *, alpha: float, n_boot: int,
                       rng: np.random.Generator) -> tuple[float, float]:
    """Percentile interval of `statistic` over resamples of `indices` (one group's items)."""
    replicates = np.empty(n_boot)
    for start in range(0, n_boot, BOOTSTRAP_CHUNK):
        draws = indices[rng.integers(0, len(indices), size=(min(BOOTSTRAP_CHUNK, n_boot - start), len(indices)))]
        replicates[start:start + len(draws)] = [statistic(d) for d in draws]
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _mean_of(values: np.ndarray) -> Statistic:
    return lambda indices: float(values[indices].mean())


def _paired(a_items: Sequence[float], b_items: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a_items, dtype=float), np.asarray(b_items, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired comparison needs two aligned lists, got {a.shape} and {b.shape}")
    if not len(a):
        raise ValueError("paired comparison of no items")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("per-item values must be finite numbers")
    return a, b


# --- groups ----------------------------------------------------------------------------------


def group_intervals(values_by_item: Sequence[float], groups_by_item: dict[str, Sequence], *, binary: bool,
                    alpha: float = 0.05, min_group_size: int = 10, statistic: Statistic | None = None,
                    n_boot: int = 2000, seed: int = 0) -> dict[str, dict[str, dict]]:
    """{attribute: {group: {n, metric, low, high, small}}}: Wilson intervals for a binary metric,
    bootstrap percentile intervals over the group's items otherwise. `small` marks groups under
    min_group_size: shown, never gated on."""
    values = np.asarray(values_by_item, dtype=float)
    stat = statistic or _mean_of(values)
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
    stat = statistic or _mean_of(values)
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
