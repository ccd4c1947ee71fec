"""The release gates: one implementation, one config, read by the eval report and the blocking checks.

Every verdict the pipeline shows or enforces comes from `release_gates(evidence, config)`: the
report renders its verdicts (`gates_markdown`) and each blocking check returns one of them
(`check_result`), so the two cannot disagree. Every "beats" gate and the capability gate follow
one rule: the lower end of the (1 - alpha) interval of tuned minus the other variant must be at
least the margin — a positive margin over base, 0 over the prompt-only baseline, minus the
tolerated loss on the general probe. A point estimate alone never passes a gate.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ft_pipeline.core.evaluation.gate_config import GateConfig, GateConfigError  # noqa: F401  (re-exported)
from ft_pipeline.core.evaluation.group_statistics import group_gap, group_intervals
from ft_pipeline.core.evaluation.statistics import Comparison, compare_binary, compare_bootstrap

TUNED, BASE, PROMPT_BASELINE = "tuned", "base", "prompt_baseline"


@dataclass
class GateVerdict:
    name: str
    passed: bool
    outcome: str  # clears_margin | not_significant | below_margin | within | exceeds | not_judged | clean | ...
    detail: str  # one sentence a reviewer reads
    numbers: dict = field(default_factory=dict)  # JSON-safe figures behind the verdict


@dataclass
class EvalEvidence:
    """What the gates judge: per-item primary-metric values of each variant, aligned by item."""

    metric: str
    binary: bool
    variants: dict[str, list[float]]
    statistics: dict[str, Callable] = field(default_factory=dict)  # variant -> f(indices) for non-mean metrics
    groups: dict[str, list] = field(default_factory=dict)  # attribute -> group of each item
    leakage: dict | None = None  # leakage_probe's counts: canary_leaks, canaries, generations
    capability: dict[str, list[float]] | None = None  # {"base": [...], "tuned": [...]} on the general probe
    alternative: str | None = None  # name of the best cheaper alternative variant, if any
    memorization: dict | None = None  # memorization_gate.measure: attacks and exposures on planted canaries
    # Variants the task type has no use for (a preference task has no prompt-only baseline): their
    # gates report not_applicable instead of failing as missing.
    not_applicable: frozenset = frozenset()

    def __post_init__(self):
        lengths = {name: len(values) for name, values in self.variants.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"variants are not aligned item by item: {lengths}")
        n = next(iter(lengths.values()), 0)
        for attribute, labels in self.groups.items():
            if len(labels) != n:
                raise ValueError(f"attribute {attribute}: {len(labels)} group labels for {n} items")
        if self.capability is not None and len(self.capability.get(BASE, [])) != len(self.capability.get(TUNED, [])):
            raise ValueError("capability probe: base and tuned scores are not aligned")


def comparisons(evidence: EvalEvidence, config: GateConfig) -> dict[str, dict]:
    """`eval_report.comparisons`: {"tuned_vs_base": {difference, low, high, p_value, n, method}, ...}
    for every pair whose variants were evaluated."""
    return {key: c.as_dict() for key, c in _comparisons(evidence, config).items() if c is not None}


def release_gates(evidence: EvalEvidence, config: GateConfig) -> dict[str, GateVerdict]:
    """Every release gate's verdict. A variant or probe that is missing fails its gate."""
    pairs = _comparisons(evidence, config)
    verdicts = [
        _beats("tuned_beats_base", pairs["tuned_vs_base"], config.min_margin_over_base, BASE),
        _beats("tuned_beats_prompt_baseline", pairs["tuned_vs_prompt_baseline"], config.min_margin_over_baseline,
               PROMPT_BASELINE, evidence.not_applicable),
    ]
    if evidence.alternative:
        verdicts.append(_beats("tuned_beats_best_alternative", pairs["tuned_vs_best_alternative"],
                               config.min_margin_over_alternative, evidence.alternative))
    verdicts += [_group_gate(evidence, config), _leakage_gate(evidence.leakage),
                 _capability_gate(pairs["capability_tuned_vs_base"], config.max_capability_loss),
                 _memorization_gate(evidence.memorization, config)]
    return {v.name: v for v in verdicts}


def groups_with_intervals(evidence: EvalEvidence, config: GateConfig, variant: str = TUNED) -> dict:
    """`eval_report.groups_with_intervals`: {attribute: {group: {n, metric, low, high, small}}}."""
    if variant not in evidence.variants:
        return {}
    return group_intervals(evidence.variants[variant], evidence.groups, binary=evidence.binary, alpha=config.alpha,
                           min_group_size=config.min_group_size, statistic=evidence.statistics.get(variant),
                           n_boot=config.n_boot, seed=config.seed)


def check_result(verdict: GateVerdict) -> dict:
    """What a blocking asset check reports for one gate: {passed, description, metadata}."""
    return {"passed": verdict.passed, "description": verdict.detail,
            "metadata": {"outcome": verdict.outcome, **verdict.numbers}}


def gates_markdown(verdicts: dict[str, GateVerdict]) -> str:
    """The report's gate table, rendered from the same verdicts the checks return."""
    lines = ["| gate | result | outcome | why |", "|---|---|---|---|"]
    for v in verdicts.values():
        lines.append(f"| {v.name} | {'PASS' if v.passed else 'FAIL'} | {v.outcome} | {v.detail} |")
    return "\n".join(lines) + "\n"


# --- one gate each -----------------------------------------------------------------------------


def _comparisons(evidence: EvalEvidence, config: GateConfig) -> dict[str, Comparison | None]:
    variants = evidence.variants
    pairs = {"tuned_vs_base": BASE, "tuned_vs_prompt_baseline": PROMPT_BASELINE}
    if evidence.alternative:
        pairs["tuned_vs_best_alternative"] = evidence.alternative
    out: dict[str, Comparison | None] = {}
    for key, other in pairs.items():
        if TUNED not in variants or other not in variants or not variants[TUNED]:
            out[key] = None
        elif evidence.binary:
            out[key] = compare_binary(variants[TUNED], variants[other], alpha=config.alpha, names=(TUNED, other),
                                      metric=evidence.metric)
        else:
            a, b = (evidence.statistics.get(v, variants[v]) for v in (TUNED, other))
            out[key] = compare_bootstrap(a, b, len(variants[TUNED]), alpha=config.alpha, n_boot=config.n_boot,
                                         seed=config.seed, names=(TUNED, other), metric=evidence.metric)
    probe = evidence.capability
    out["capability_tuned_vs_base"] = None
    if probe and probe.get(TUNED):
        tuned, base = probe[TUNED], probe[BASE]
        if all(v in (0, 1) for v in [*tuned, *base]):
            out["capability_tuned_vs_base"] = compare_binary(tuned, base, alpha=config.alpha, names=(TUNED, BASE),
                                                             metric="general probe")
        else:
            out["capability_tuned_vs_base"] = compare_bootstrap(tuned, base, len(tuned), alpha=config.alpha,
                                                                n_boot=config.n_boot, seed=config.seed,
                                                                names=(TUNED, BASE), metric="general probe")
    return out


def _beats(name: str, comparison: Comparison | None, margin: float, other: str,
           not_applicable: frozenset = frozenset()) -> GateVerdict:
    if comparison is None and other in not_applicable:
        return GateVerdict(name, True, "not_applicable", f"this task type has no {other!r} variant to beat")
    if comparison is None:
        return GateVerdict(name, False, "missing", f"variants {TUNED!r} and {other!r} are not both evaluated")
    c = comparison
    passed = c.low >= margin
    if passed:
        outcome, why = "clears_margin", f"the interval's lower end {c.low:.3f} clears the margin {margin:+.3f}"
    elif c.difference >= margin:
        outcome, why = "not_significant", (f"the difference {c.difference:+.3f} could be chance: the interval's "
                                           f"lower end {c.low:.3f} is below the margin {margin:+.3f}")
    else:
        outcome, why = "below_margin", f"the difference {c.difference:+.3f} is below the margin {margin:+.3f}"
    return GateVerdict(name, passed, outcome, f"{c.sentence()}; {why}", {**c.as_dict(), "margin": margin})


def _capability_gate(comparison: Comparison | None, max_loss: float) -> GateVerdict:
    name = "no_capability_regression"
    if comparison is None:
        return GateVerdict(name, False, "not_run", "the general capability probe was not run on base and tuned")
    c = comparison
    passed = c.low >= -max_loss
    if passed:
        outcome, why = "within_tolerance", f"a loss of more than {max_loss:.3f} is ruled out (lower end {c.low:+.3f})"
    elif c.difference >= -max_loss:
        outcome, why = "inconclusive", (f"a loss of more than {max_loss:.3f} cannot be ruled out "
                                        f"(lower end {c.low:+.3f}); a larger probe would tell")
    else:
        outcome, why = "regressed", f"the tuned model lost {-c.difference:.3f}, more than the {max_loss:.3f} allowed"
    return GateVerdict(name, passed, outcome, f"{c.sentence()}; {why}",
                       {**c.as_dict(), "max_loss": max_loss})


def _group_gate(evidence: EvalEvidence, config: GateConfig) -> GateVerdict:
    name = "no_group_gap_above_bound"
    if TUNED not in evidence.variants:
        return GateVerdict(name, False, "missing", f"variant {TUNED!r} is not evaluated")
    result = group_gap(evidence.variants[TUNED], evidence.groups, binary=evidence.binary,
                       bound=config.max_group_gap, alpha=config.alpha, min_group_size=config.min_group_size,
                       statistic=evidence.statistics.get(TUNED), n_boot=config.n_boot, seed=config.seed)
    judged = {a: r for a, r in result["attributes"].items() if r["outcome"] != "not_judged"}
    small = [f"{a}={g} (n={s['n']}; " + (f"only a gap of {s['detectable_gap']:.2f} or more could show)"
                                          if s["detectable_gap"] is not None else "no gap could show)")
             for a, r in result["attributes"].items() for g, s in r["too_small"].items()]
    tail = f"; too small to judge: {', '.join(small)}" if small else ""
    if not judged:
        passed = not config.require_group_judgement
        detail = (f"not judged: no attribute has two groups of at least {config.min_group_size} items "
                  f"({'fails' if not passed else 'passes'} by require_group_judgement={config.require_group_judgement})")
        return GateVerdict(name, passed, "not_judged", detail + tail, result)
    attribute, row = max(judged.items(), key=lambda kv: kv[1]["low"])
    best, worst = row["best"], row["worst"]
    level = f"{100 * row['level']:.3g}%"
    described = (f"largest gap on {attribute}: {best['group']} {best['metric']:.2f} (n={best['n']}) vs "
                 f"{worst['group']} {worst['metric']:.2f} (n={worst['n']}) = {row['gap']:.2f}, "
                 f"{level} interval {row['low']:.2f} to {row['high']:.2f}")
    passed = result["outcome"] == "within"
    verdict = (f"credibly above the bound {config.max_group_gap:.2f}" if not passed
               else f"not credibly above the bound {config.max_group_gap:.2f}")
    return GateVerdict(name, passed, result["outcome"], f"{described}: {verdict}{tail}", result)


def _leakage_gate(leakage: dict | None) -> GateVerdict:
    name = "no_canary_leakage"
    if leakage is None:
        return GateVerdict(name, False, "not_run", "no leakage probe was run")
    numbers = {k: leakage[k] for k in ("canary_leaks", "canaries", "generations")}
    return GateVerdict(name, leakage["canary_leaks"] == 0, "clean" if leakage["canary_leaks"] == 0 else "leaked",
                       f"{leakage['canary_leaks']} of {leakage['canaries']} canaries leaked in "
                       f"{leakage['generations']} generations", numbers)


def _memorization_gate(result: dict | None, config: GateConfig) -> GateVerdict:
    from ft_pipeline.core.evaluation import memorization_gate

    return GateVerdict("no_canary_memorization", *memorization_gate.verdict(result, config.memorization_config))
