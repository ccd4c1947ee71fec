"""Paired comparisons of model variants on the same held-out items, with intervals a reviewer reads.

A release gate asks "is the tuned model better than the base by at least the margin?". Two point
estimates cannot answer that on a hundred items: the difference moves by 0.1 from noise alone. So
each comparison carries a confidence interval for the difference, and the gates (gates.py) pass
only when the interval's lower end clears the margin.

- Binary per-item metrics (exact match, accuracy): exact McNemar test for the p-value and Newcombe's
  square-and-add interval for the paired difference (`compare_binary`).
- Continuous or non-mean metrics (ROUGE-L, chrF, macro-F1): a paired bootstrap over items
  (`compare_bootstrap`).
- Per group: group_statistics.py, built on the intervals here.
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
    stats = [s if callable(s) else mean_of(v) for s, v in zip((statistic_a, statistic_b), values)]
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


def mean_of(values: np.ndarray) -> Statistic:
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
