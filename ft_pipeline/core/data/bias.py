"""Bias audit of a dataset before training, with fairlearn.

What a model learns to hand out is what the data hands out: if one region's tickets are marked
"urgent" half as often as another's, a tuned model will triage that region more slowly. The audit
measures, per attribute, each group's share of the data, its label distribution, and the
demographic parity of the consequential outcome the task declares (its `outcome`) across groups.

What could not be judged is said, never passed over: data without attributes, or a task without an
outcome, gives an audit whose verdict is "not judged" and names why.
"""
from __future__ import annotations


from dataclasses import dataclass, field
from typing import Callable, Iterable

Reader = Callable[[dict], "str | None"]


@dataclass
class BiasConfig:
    outcome_field: str | None = field(default=None, metadata={
        "help": "answer field whose value is the outcome (the task's outcome.field); None: no outcome audited"})
    positive_values: tuple[str, ...] = field(
        default=(), metadata={"help": "outcome values that count as the consequential outcome (selected)"}
    )
    min_group_size: int = field(default=20, metadata={"help": "groups smaller than this are flagged, not gated"})
    max_parity_difference: float = field(
        default=0.2, metadata={"help": "largest allowed gap in selection rate between groups"}
    )
    min_parity_ratio: float = field(
        default=0.5, metadata={"help": "smallest allowed ratio of lowest to highest selection rate"}
    )

    def __post_init__(self):
        if not 0.0 <= self.max_parity_difference <= 1.0:
            raise ValueError("max_parity_difference must be within [0, 1]")
        if not 0.0 <= self.min_parity_ratio <= 1.0:
            raise ValueError("min_parity_ratio must be within [0, 1]")
        if self.min_group_size < 1:
            raise ValueError("min_group_size must be at least 1")
        self.positive_values = tuple(self.positive_values)
        if self.outcome_field and not self.positive_values:
            raise ValueError("an outcome needs at least one positive value")

    @property
    def outcome_text(self) -> str:
        if not self.outcome_field:
            return "none declared by the task"
        return f"`{self.outcome_field}` in {list(self.positive_values)}"


@dataclass
class AttributeAudit:
    attribute: str
    groups: dict[str, dict]  # group -> {count, share, selection_rate, small, labels: {label: share}}
    parity_difference: float | None
    parity_ratio: float | None
    small_groups: list[str]
    passed: bool
    judged: bool = True  # False: no outcome declared, or fewer than two groups large enough


@dataclass
class BiasAudit:
    records: int
    attributes: list[AttributeAudit]
    judged: bool  # at least one attribute's parity was measured against the bounds
    not_judged_reason: str | None  # why nothing (or not everything) could be judged, in words

    @property
    def passed(self) -> bool:
        return all(a.passed for a in self.attributes)

    @property
    def verdict(self) -> str:
        if not self.passed:
            return "FAIL"
        return "PASS" if self.judged else "NOT JUDGED"


def collect_frame(records: Iterable[dict], label_of: Reader, outcome_of: Reader):
    """A compact frame: one row per record, categorical columns only (attributes, label, outcome)."""
    import pandas as pd

    rows = []
    for record in records:
        row = {f"attr:{k}": str(v) for k, v in (record.get("attributes") or {}).items()}
        row["label"] = label_of(record) or "none"
        row["outcome"] = outcome_of(record) or "none"
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else ["label", "outcome"])
    for column in frame.columns:
        frame[column] = frame[column].fillna("unknown").astype("category")
    return frame


def audit(records: Iterable[dict], config: BiasConfig, *, label_of: Reader = lambda r: None,
          outcome_of: Reader = lambda r: None) -> BiasAudit:
    """`label_of` and `outcome_of` read a record's label and outcome value from its answer (the
    task says how); the audit itself knows nothing of any task's answer format."""
    from fairlearn.metrics import MetricFrame, count, selection_rate

    frame = collect_frame(records, label_of, outcome_of)
    attributes = sorted(c for c in frame.columns if c.startswith("attr:"))
    if frame.empty or not attributes:
        why = "the data holds no records" if frame.empty else "the records carry no attributes to group by"
        return BiasAudit(len(frame), [], False, f"{why}: nothing was audited")
    selected = frame["outcome"].isin(config.positive_values).astype(int).to_numpy()
    results = []
    for column in attributes:
        attribute = column.removeprefix("attr:")
        metrics = MetricFrame(
            metrics={"count": count, "selection_rate": selection_rate},
            y_true=selected,
            y_pred=selected,
            sensitive_features=frame[column].astype(str),
        )
        by_group = metrics.by_group
        total = len(frame)
        label_shares = (
            frame.groupby(column, observed=True)["label"].value_counts(normalize=True).unstack(fill_value=0.0)
        )
        groups, small = {}, []
        for group, row in by_group.iterrows():
            n = int(row["count"])
            is_small = n < config.min_group_size
            if is_small:
                small.append(str(group))
            shares = label_shares.loc[group] if group in label_shares.index else {}
            groups[str(group)] = {
                "count": n,
                "share": round(n / total, 4),
                "selection_rate": round(float(row["selection_rate"]), 4),
                "small": is_small,
                "labels": {str(k): round(float(v), 4) for k, v in dict(shares).items() if v > 0},
            }
        # fairlearn's demographic parity difference and ratio, over the groups large enough to judge.
        rates = [g["selection_rate"] for g in groups.values() if not g["small"]]
        difference = ratio = None
        if len(rates) >= 2:
            big = frame[column].astype(str).isin([k for k, g in groups.items() if not g["small"]]).to_numpy()
            difference, ratio = _parity(selected[big], frame[column].astype(str).to_numpy()[big])
        judged = bool(config.outcome_field) and difference is not None
        passed = not judged or (
            difference <= config.max_parity_difference and (ratio or 0.0) >= config.min_parity_ratio
        )
        results.append(AttributeAudit(attribute, groups, difference if judged else None,
                                      ratio if judged else None, small, passed, judged))
    reasons = []
    if not config.outcome_field:
        reasons.append("the task declares no outcome, so parity was not measured (representation and "
                       "label shares are shown)")
    unjudged = [r.attribute for r in results if not r.judged]
    if config.outcome_field and unjudged:
        reasons.append(f"fewer than two groups of at least {config.min_group_size} records on: {', '.join(unjudged)}")
    return BiasAudit(len(frame), results, any(r.judged for r in results), "; ".join(reasons) or None)


def _parity(selected, groups) -> tuple[float, float]:
    from fairlearn.metrics import demographic_parity_difference, demographic_parity_ratio

    difference = demographic_parity_difference(selected, selected, sensitive_features=groups)
    ratio = demographic_parity_ratio(selected, selected, sensitive_features=groups)
    return round(float(difference), 4), round(float(ratio), 4)


def render_markdown(report: BiasAudit, config: BiasConfig) -> str:
    lines = [
        "# Bias audit",
        "",
        f"**Verdict: {report.verdict}** over {report.records} records.",
        "",
        f"Outcome: {config.outcome_text} (selection rate). "
        f"Bounds: parity difference ≤ {config.max_parity_difference}, ratio ≥ {config.min_parity_ratio}; "
        f"groups under {config.min_group_size} records are flagged and left out of the bounds.",
        "",
    ]
    if report.not_judged_reason:
        lines += [f"**Not judged:** {report.not_judged_reason}.", ""]
    for result in report.attributes:
        verdict = ("PASS" if result.passed else "FAIL") if result.judged else "NOT JUDGED"
        lines += [
            f"## {result.attribute} — {verdict}",
            "",
            f"Demographic parity difference: {result.parity_difference}, ratio: {result.parity_ratio}",
            "",
            "| group | records | share | selection rate | top labels | flag |",
            "|---|---:|---:|---:|---|---|",
        ]
        for group, g in sorted(result.groups.items()):
            top = ", ".join(f"{k} {v:.0%}" for k, v in sorted(g["labels"].items(), key=lambda kv: -kv[1])[:3])
            lines.append(
                f"| {group} | {g['count']} | {g['share']:.1%} | {g['selection_rate']:.3f} | {top} | "
                f"{'small group' if g['small'] else ''} |"
            )
        lines.append("")
    return "\n".join(lines)


def summary(report: BiasAudit) -> dict:
    return {
        "verdict": report.verdict,
        "judged": report.judged,
        "not_judged_reason": report.not_judged_reason,
        "records": report.records,
        "attributes": {
            r.attribute: {
                "parity_difference": r.parity_difference,
                "parity_ratio": r.parity_ratio,
                "small_groups": r.small_groups,
                "judged": r.judged,
                "passed": r.passed,
            }
            for r in report.attributes
        },
    }


def selection_rates(report: BiasAudit) -> dict[str, dict[str, float]]:
    """{attribute=group: {"selection rate": rate}} — the shape plots.grouped_bars takes."""
    return {
        f"{r.attribute}={group}": {"selection rate": g["selection_rate"]}
        for r in report.attributes
        for group, g in sorted(r.groups.items())
    }


def representation(report: BiasAudit) -> dict[str, dict[str, float]]:
    """{attribute=group: {"share of records": share}}: what the chart shows when no outcome is audited."""
    return {
        f"{r.attribute}={group}": {"share of records": g["share"]}
        for r in report.attributes
        for group, g in sorted(r.groups.items())
    }


