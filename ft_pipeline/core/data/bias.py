"""Bias audit of a dataset before training, with fairlearn.

What a model learns to hand out is what the data hands out: if one region's tickets are marked
"urgent" half as often as another's, a tuned model will triage that region more slowly. The audit
measures, per attribute, each group's share of the data, its label distribution, and the
demographic parity of the consequential outcome the task declares (`outcome`: e.g. priority high
or urgent) across groups. A record's label is what the task says it is (answers.answer_label).
"""
from __future__ import annotations


from dataclasses import dataclass, field
from typing import Iterable

from ft_pipeline.core.answers import answer_field, answer_label, last_assistant


@dataclass
class BiasConfig:
    outcome_field: str | None = field(default=None, metadata={
        "help": "answer field whose value is the outcome (default: the task's outcome.field)"})
    positive_values: tuple[str, ...] = field(default=(), metadata={
        "help": "outcome values that count as favourable (selected) (default: the task's outcome.positive)"})
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


@dataclass
class AttributeAudit:
    attribute: str
    groups: dict[str, dict]  # group -> {count, share, selection_rate, small, labels: {label: share}}
    parity_difference: float | None
    parity_ratio: float | None
    small_groups: list[str]
    passed: bool


def outcome_of(task, config: BiasConfig) -> tuple[str | None, tuple[str, ...]]:
    """(answer field, positive values) the audit judges: the config's, else the task's outcome."""
    declared = task.outcome
    field_name = config.outcome_field or (declared.field if declared else None)
    positive = tuple(config.positive_values) or (tuple(declared.positive) if declared else ())
    return field_name, positive


def collect_frame(records: Iterable[dict], task, config: BiasConfig):
    """A compact frame: one row per record, categorical columns only (attributes, label, outcome)."""
    import pandas as pd

    outcome_field, _ = outcome_of(task, config)
    rows = []
    for record in records:
        row = {f"attr:{k}": str(v) for k, v in (record.get("attributes") or {}).items()}
        answer = last_assistant(record)
        row["label"] = answer_label(task, answer) or "none"
        row["outcome"] = (answer_field(task, answer, outcome_field) if outcome_field else None) or "none"
        rows.append(row)
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        frame[column] = frame[column].fillna("unknown").astype("category")
    return frame


def audit(records: Iterable[dict], task, config: BiasConfig | None = None) -> list[AttributeAudit]:
    """Per attribute: group shares, label distributions and, when the task declares an outcome,
    its demographic parity across groups (no outcome: shares only, nothing to gate)."""
    from fairlearn.metrics import MetricFrame, count, selection_rate

    config = config or BiasConfig()
    frame = collect_frame(records, task, config)
    if frame.empty:
        return []
    outcome_field, positive = outcome_of(task, config)
    selected = frame["outcome"].isin(positive).astype(int).to_numpy()
    results = []
    for column in sorted(c for c in frame.columns if c.startswith("attr:")):
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
        if len(rates) >= 2 and outcome_field:
            big = frame[column].astype(str).isin([k for k, g in groups.items() if not g["small"]]).to_numpy()
            difference, ratio = _parity(selected[big], frame[column].astype(str).to_numpy()[big])
        passed = difference is None or (
            difference <= config.max_parity_difference and (ratio or 0.0) >= config.min_parity_ratio
        )
        results.append(AttributeAudit(attribute, groups, difference, ratio, small, passed))
    return results


def _parity(selected, groups) -> tuple[float, float]:
    from fairlearn.metrics import demographic_parity_difference, demographic_parity_ratio

    difference = demographic_parity_difference(selected, selected, sensitive_features=groups)
    ratio = demographic_parity_ratio(selected, selected, sensitive_features=groups)
    return round(float(difference), 4), round(float(ratio), 4)


def render_markdown(results: list[AttributeAudit], task, config: BiasConfig) -> str:
    outcome_field, positive = outcome_of(task, config)
    outcome = (f"Outcome: `{outcome_field}` in {list(positive)} (selection rate). " if outcome_field else
               "The task declares no outcome: group shares and labels only, parity not judged. ")
    lines = [
        "# Bias audit",
        "",
        f"{outcome}Bounds: parity difference ≤ {config.max_parity_difference}, ratio ≥ {config.min_parity_ratio}; "
        f"groups under {config.min_group_size} records are flagged and left out of the bounds.",
        "",
    ]
    for result in results:
        verdict = "PASS" if result.passed else "FAIL"
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


def summary(results: list[AttributeAudit]) -> dict:
    return {
        r.attribute: {
            "parity_difference": r.parity_difference,
            "parity_ratio": r.parity_ratio,
            "small_groups": r.small_groups,
            "passed": r.passed,
        }
        for r in results
    }


def selection_rates(results: list[AttributeAudit]) -> dict[str, dict[str, float]]:
    """{attribute=group: {"selection rate": rate}} — the shape plots.grouped_bars takes."""
    return {
        f"{r.attribute}={group}": {"selection rate": g["selection_rate"]}
        for r in results
        for group, g in sorted(r.groups.items())
    }


