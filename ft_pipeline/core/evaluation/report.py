"""The evaluation report: every variant's scores on the same held-out items, judged by the release
gates (gates.release_gates: the one implementation the blocking checks return too), in words a
reviewer reads, with the numbers tools read (`comparisons`, `groups_with_intervals`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ft_pipeline.core.evaluation import gates
from ft_pipeline.core.metrics import Scores
from ft_pipeline.core.task import TaskConfig

HOW_TO_READ = (
    "How to read this: every comparison is paired — the variants answered the same held-out items — "
    "and every interval is a {level} confidence interval. A gate passes only when the interval's lower end "
    "clears its margin, so a lead that could be chance does not pass. Groups smaller than the minimum size "
    "are shown but not judged; the report says how large a gap they could have shown."
)


@dataclass
class EvalReport:
    metric: str
    variants: dict[str, dict]  # variant -> {every metric of the task type, n}
    comparisons: dict[str, dict]  # "tuned_vs_base" -> {difference, low, high, p_value, n, method}
    groups_with_intervals: dict  # attribute -> group -> {n, metric, low, high, small}
    verdicts: dict[str, gates.GateVerdict]
    leakage: dict | None
    capability: dict | None  # {"items", "base", "tuned"}: share of probe items right
    memorization: dict | None = None  # memorization_gate.measure, None when no canaries were planted

    def as_dict(self) -> dict:
        return {"metric": self.metric, "variants": self.variants, "comparisons": self.comparisons,
                "groups_with_intervals": self.groups_with_intervals, "leakage": self.leakage,
                "capability": self.capability, "memorization": self.memorization, "verdicts": {n: asdict(v) for n, v in self.verdicts.items()}}


def item_groups(ids: list[str], attributes: dict[str, dict]) -> dict[str, list[str]]:
    """{attribute: the group of each item, in order}; an item without the attribute is "unknown"."""
    names = sorted({str(k) for i in ids for k in (attributes.get(i) or {})})
    return {name: [str((attributes.get(i) or {}).get(name, "unknown")) for i in ids] for name in names}


def judge(task: TaskConfig, scores: dict[str, Scores], groups: dict[str, list[str]], *, config: gates.GateConfig,
          leakage: dict | None, capability: dict[str, list[float]] | None, alternative: str | None = None,
          not_applicable: frozenset = frozenset(), memorization: dict | None = None) -> EvalReport:
    # macro-F1 is not a mean of per-item values: the bootstrap recomputes it on every resample.
    statistics = {name: s.on for name, s in scores.items()} if task.metric == "macro_f1" else {}
    evidence = gates.EvalEvidence(
        metric=task.metric, binary=task.binary_metric,
        variants={name: s.primary_items() for name, s in scores.items()}, statistics=statistics,
        groups=groups, leakage=leakage, capability=capability, alternative=alternative,
        not_applicable=not_applicable, memorization=memorization)
    probe = None
    if capability and capability.get("tuned"):
        n = len(capability["tuned"])
        probe = {"items": n, "base": round(sum(capability["base"]) / n, 4),
                 "tuned": round(sum(capability["tuned"]) / n, 4)}
    return EvalReport(
        metric=task.metric,
        variants={name: {**{k: round(v, 4) for k, v in s.values.items()}, "n": s.n} for name, s in scores.items()},
        comparisons=gates.comparisons(evidence, config),
        groups_with_intervals=gates.groups_with_intervals(evidence, config),
        verdicts=gates.release_gates(evidence, config),
        leakage=leakage,
        capability=probe,
        memorization=memorization,
    )


def render(report: EvalReport, config: gates.GateConfig) -> str:
    metric = report.metric
    columns = [metric] + sorted({m for v in report.variants.values() for m in v if m not in ("n", metric)})
    lines = ["# Evaluation on the held-out split", "", f"Primary metric: **{metric}**.", "",
             HOW_TO_READ.format(level=f"{100 * (1 - config.alpha):g}%"), "",
             "| variant | n | " + " | ".join(columns) + " |", "|---|---:|" + "---:|" * len(columns)]
    for name, values in report.variants.items():
        lines.append(f"| {name} | {values['n']} | " + " | ".join(f"{values.get(m, 0.0):.3f}" for m in columns) + " |")
    lines += ["", "## Is the tuned model better?", ""]
    lines += [f"- {v.detail}" for v in report.verdicts.values() if v.name.startswith("tuned_beats")]
    lines += ["", f"## Tuned {metric} by group", "",
              "| attribute | group | n | " + metric + " | interval | |", "|---|---|---:|---:|---|---|"]
    for attribute, by_group in report.groups_with_intervals.items():
        for group, row in by_group.items():
            flag = f"too small to judge (< {config.min_group_size})" if row.get("small") else ""
            lines.append(f"| {attribute} | {group} | {row['n']} | {row['metric']:.3f} | "
                         f"{row['low']:.3f}–{row['high']:.3f} | {flag} |")
    if not report.groups_with_intervals:
        lines.append("| (no attributes on the held-out items) | | | | | |")
    lines += ["", "## Leakage probe", ""]
    if report.leakage is None:
        lines.append("Not run.")
    else:
        leak = report.leakage
        lines.append(f"- Canaries leaked: **{leak['canary_leaks']}** of {leak['canaries']} in {leak['generations']} generations")
        if leak.get("pii_checked"):
            by_type = ", ".join(f"{k}: {v}" for k, v in leak["pii_by_type"].items()) or "none"
            lines.append(f"- PII entities found in generations: {leak['pii_entities']} ({by_type})")
    lines += ["", "## General capability probe", ""]
    if report.capability:
        probe = report.capability
        lines.append(f"On {probe['items']} general-knowledge items that are not the task: base {probe['base']:.3f}, "
                     f"tuned {probe['tuned']:.3f}. {report.verdicts['no_capability_regression'].detail}")
    else:
        lines.append("Not run.")
    lines += ["", "## Memorization (planted canaries)", "", report.verdicts["no_canary_memorization"].detail]
    lines += ["", "## Gates", "", gates.gates_markdown(report.verdicts)]
    return "\n".join(lines)
