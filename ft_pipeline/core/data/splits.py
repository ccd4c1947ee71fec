"""Which split each record goes to: stable hashing, groups kept whole, contamination fixed.

Three passes over the redacted records, each streaming (memory holds per-group splits and the
held-out items' MinHash index, never the records):
1. Groups (the task's `group_key`: a conversation, a customer). A group's split is the hash of its
   key, or, when some of its records name a split themselves, the split most of them name (ties go
   to train: a group is never evaluated on while any of it could be trained on). Every record of
   the group follows it, so none straddles splits.
2. Contamination. Every eval/test record whose text near-duplicates a train record (MinHash LSH,
   contamination.py) is moved to train or dropped (contamination.plan_fixes).
3. The export writes each record where the plan says (export.write_export).
"""
from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ft_pipeline.core.data import contamination

SPLITS = ("train", "eval", "test")
Records = Callable[[], Iterable[dict]]
MAX_PASSES = 20  # contamination passes; each moves held-out items to train, so few are ever needed


@dataclass
class SplitPlan:
    fractions: tuple[float, float]  # (eval, test) shares of records without a split of their own
    seed: str
    group_key: str | None
    group_split: dict[str, str] = field(default_factory=dict)  # group value -> split
    fixes: dict[str, str | None] = field(default_factory=dict)  # id -> "train" (moved) or None (dropped)
    matches: list = field(default_factory=list)  # contamination.Match, ids only
    report: dict = field(default_factory=dict)

    def split_of(self, record: dict) -> str | None:
        """The record's split, or None when contamination dropped it from the held-out data."""
        if record["id"] in self.fixes:
            return self.fixes[record["id"]]
        group = contamination.group_value(record, self.group_key)
        if group is not None:
            return self.group_split[group]
        return record["split"] if record.get("split") in SPLITS else hashed_split(str(record["id"]), self.fractions, self.seed)


def hashed_split(key: str, fractions: tuple[float, float], seed: str) -> str:
    """A stable hash of `key` into train/eval/test: a record never moves between train and test
    when the dataset grows."""
    eval_fraction, test_fraction = fractions
    u = int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big") / 2**64
    if u < test_fraction:
        return "test"
    return "eval" if u < test_fraction + eval_fraction else "train"


def plan_splits(records: Records, *, fractions: tuple[float, float], seed: str, group_key: str | None,
                threshold: float, text_of: Callable[[dict], str]) -> SplitPlan:
    plan = SplitPlan(fractions, seed, group_key)
    named: dict[str, Counter] = defaultdict(Counter)
    for record in records():
        group = contamination.group_value(record, group_key)
        if group is not None:
            named[group][record.get("split") if record.get("split") in SPLITS else None] += 1
    moved_by_group = 0
    for group, splits in named.items():
        explicit = Counter({s: n for s, n in splits.items() if s is not None})
        if explicit:
            top = max(explicit.values())
            plan.group_split[group] = "train" if explicit["train"] == top else max(
                explicit, key=lambda s: (explicit[s], s == "test"))
            moved_by_group += sum(n for s, n in explicit.items() if s != plan.group_split[group])
        else:
            plan.group_split[group] = hashed_split(f"{group_key}={group}", fractions, seed)
    # A held-out item moved to train can itself be near-copied by another held-out item (a chain
    # test A ~ test B ~ train C): check again with the moves applied, until nothing is left.
    for _ in range(MAX_PASSES):
        rows = ((record["id"], split, text_of(record)) for record in records()
                if (split := plan.split_of(record)) is not None)
        found = contamination.find_cross_split(rows, threshold=threshold)
        if not found:
            break
        plan.matches += found
        plan.fixes.update(contamination.plan_fixes(found, grouped=_grouped_ids(records, group_key, found)))
    plan.report = {"threshold": threshold, "group_key": group_key, "groups": len(named),
                   "records_moved_to_keep_groups_whole": moved_by_group,
                   **contamination.fix_counts(plan.matches, plan.fixes)}
    return plan


def _grouped_ids(records: Records, group_key: str | None, matches: list) -> set[str]:
    """The matched ids whose record belongs to a group (one more pass, only when there are any)."""
    ids = {m.id for m in matches}
    if not group_key or not ids:
        return set()
    return {r["id"] for r in records() if r["id"] in ids and contamination.group_value(r, group_key) is not None}
