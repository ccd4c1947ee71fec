"""Label verification: coverage of human verification, inter-annotator agreement, review samples.

All three stream over redacted records once; memory holds counters, label pairs and a bounded
reservoir per stratum, never the dataset.
"""
from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable

from ft_pipeline.core.answers import answer_label, last_assistant


@dataclass
class LabelReport:
    total: int = 0
    verified: int = 0
    by_annotator: Counter = field(default_factory=Counter)
    unverified_ids: list[str] = field(default_factory=list)  # first few only: ids, never text
    pairs: list[tuple[str, str]] = field(default_factory=list)
    disagreements: int = 0

    @property
    def coverage(self) -> float:
        return self.verified / self.total if self.total else 0.0

    @property
    def kappa(self) -> float | None:
        return cohens_kappa(self.pairs)

    def as_metadata(self) -> dict:
        return {
            "records": self.total,
            "verified": self.verified,
            "coverage": round(self.coverage, 4),
            "multi_annotated": len(self.pairs),
            "disagreements": self.disagreements,
            "cohens_kappa": None if self.kappa is None else round(self.kappa, 4),
            "by_annotator": dict(sorted(self.by_annotator.items())),
        }


def verify_labels(records: Iterable[dict], max_ids: int = 20) -> LabelReport:
    report = LabelReport()
    for record in records:
        report.total += 1
        if record.get("label_verified") is True and record.get("verified_at"):
            report.verified += 1
            report.by_annotator[record.get("annotator") or "unknown"] += 1
        elif len(report.unverified_ids) < max_ids:
            report.unverified_ids.append(record["id"])
        labels = [entry.get("label") for entry in record.get("labels") or [] if entry.get("label")]
        if len(labels) >= 2:
            report.pairs.append((labels[0], labels[1]))
            report.disagreements += labels[0] != labels[1]
    return report


def cohens_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two annotators: (p_o - p_e) / (1 - p_e); None without pairs.

    Agreement corrected for chance: two annotators who both say "billing" 90% of the time agree
    81% of the time by luck alone, which raw agreement would count as skill.
    """
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(first[label] * second[label] for label in first) / (n * n)
    if expected == 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - expected) / (1.0 - expected)


REVIEW_COLUMNS = ["id", "stratum", "split", "task", "label_verified", "annotator", "label", "prompt", "answer"]


def review_sample(records: Iterable[dict], task, per_stratum: int = 5, seed: int = 0) -> list[dict]:
    """A stratified sample for human reviewers: up to `per_stratum` records of each
    (label, verified) stratum, chosen by reservoir sampling so one pass suffices. The label is
    what the task reads as one (answers.answer_label); tasks without labels stratify by verification.

    Unverified records form their own strata, so reviewers always see them.
    """
    rng = random.Random(seed)
    reservoirs: dict[str, list[dict]] = defaultdict(list)
    seen: Counter = Counter()
    for record in records:
        verified = record.get("label_verified") is True
        label = answer_label(task, last_assistant(record)) or "unlabelled"
        stratum = f"{label}|{'verified' if verified else 'unverified'}"
        seen[stratum] += 1
        reservoir = reservoirs[stratum]
        if len(reservoir) < per_stratum:
            reservoir.append(record)
        else:
            slot = rng.randrange(seen[stratum])
            if slot < per_stratum:
                reservoir[slot] = record
    rows = []
    for stratum in sorted(reservoirs):
        for record in sorted(reservoirs[stratum], key=lambda r: r["id"]):
            prompt = next((m["content"] for m in record.get("messages", []) if m["role"] == "user"), "")
            rows.append({
                "id": record["id"],
                "stratum": stratum,
                "split": record.get("split") or "",
                "task": record.get("task", ""),
                "label_verified": record.get("label_verified") is True,
                "annotator": record.get("annotator") or "",
                "label": answer_label(task, last_assistant(record)) or "",
                "prompt": prompt,
                "answer": last_assistant(record) or "",
            })
    return rows
