"""Train/test contamination: held-out items that near-copy a training item, and groups split apart.

A test item whose near-copy the model trained on measures memory, not skill, so a memorizing model
looks good. Before anything trains, every eval/test item is compared with every train item (MinHash
LSH on normalized text, near_duplicates.py); each one that near-duplicates a train item is moved to
train or dropped from its split (`plan_fixes`), and the counts go into the export's metadata.
Records that belong together (one conversation, one customer: the task's `group_key`) get their
split from the group's key instead of their id (`split_key`), so they never straddle splits.
"""
from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ft_pipeline.core.data.near_duplicates import NearDuplicateIndex, from_hashvalues, normalize, signature

TRAIN, HELD_OUT = "train", ("eval", "test")
SPILL_ROWS = 4096  # train signatures read back per chunk


@dataclass(frozen=True)
class Match:
    """Held-out item `id` (in `split`) near-duplicates train item `neighbour_id`; `similarity` is
    the MinHash estimate of the Jaccard similarity of their shingle sets, best neighbour kept."""

    id: str
    split: str
    neighbour_id: str
    neighbour_split: str
    similarity: float


def find_cross_split(rows: Iterable[tuple[str, str, str]], *, threshold: float = 0.6, num_perm: int = 128,
                     shingle_size: int = 3) -> list[Match]:
    """Eval/test items near-duplicating a train item, from one pass over (id, split, text) rows.

    threshold: Jaccard similarity of 3-word shingle sets. One changed word breaks 3 shingles and adds
    3, so an n-word message with one word changed keeps (n - 5) / (n + 1): 0.63 at 15 words, 0.81 at
    30; two words changed in 30 words keep 0.65. Unrelated messages share almost no 3-word shingles.

    Memory holds the held-out items' index only: train signatures (num_perm x 4 bytes each) are
    spilled to a temporary file during the pass and looked up against that index afterwards, so a
    large train split streams. Pairs within train, or between eval and test, are not reported.
    """
    index = NearDuplicateIndex(threshold, num_perm)
    held: dict[str, str] = {}
    best: dict[str, tuple[float, str]] = {}
    with tempfile.TemporaryFile() as signatures, tempfile.TemporaryFile("w+", encoding="utf-8") as ids:
        for row_id, split, text in rows:
            row_id = str(row_id)
            if split != TRAIN and split not in HELD_OUT:
                raise ValueError(f"record {row_id}: split {split!r} is not one of train, eval, test")
            sig = signature(normalize(text or ""), k=shingle_size, num_perm=num_perm)
            if split == TRAIN and sig is not None:
                signatures.write(np.asarray(sig.hashvalues, dtype=np.uint32).tobytes())
                ids.write(json.dumps(row_id) + "\n")
            elif split != TRAIN:
                if row_id in held:
                    raise ValueError(f"record {row_id}: id appears twice in the held-out splits")
                held[row_id] = split
                index.add(row_id, sig)
        signatures.seek(0)
        ids.seek(0)
        while chunk := signatures.read(SPILL_ROWS * num_perm * 4):
            for hashvalues in np.frombuffer(chunk, dtype=np.uint32).reshape(-1, num_perm):
                train_id = json.loads(ids.readline())
                for held_id, similarity in index.matches(from_hashvalues(hashvalues)):
                    seen = best.get(held_id)
                    # Deterministic whatever the row order: the most similar, then the smallest id.
                    if seen is None or similarity > seen[0] or (similarity == seen[0] and train_id < seen[1]):
                        best[held_id] = (similarity, train_id)
    return [Match(held_id, held[held_id], train_id, TRAIN, round(similarity, 4))
            for held_id, (similarity, train_id) in sorted(best.items())]


def plan_fixes(matches: Iterable[Match], *, grouped: Iterable[str] = ()) -> dict[str, str | None]:
    """{held-out id: "train" (move it to its neighbour's split) or None (drop it)}.

    Moved by default: a near-copy is still a distinct example, and as training data it adds the
    variation that made it differ. Dropped instead when
    - it is an exact copy after normalization (similarity 1.0: every MinHash minimum agrees): a
      second copy in train would only double that example's weight;
    - it belongs to a group (`grouped`: ids whose record has a group_key value): moving it alone
      would put its group on both sides of the split, which dropping does not.
    """
    grouped = set(grouped)
    return {m.id: None if m.similarity >= 1.0 or m.id in grouped else m.neighbour_split for m in matches}


def fix_counts(matches: list[Match], plan: dict[str, str | None]) -> dict:
    """Counts for the export's metadata: found, moved, dropped, per held-out split."""
    by_split: dict[str, Counter] = {split: Counter() for split in HELD_OUT}
    for m in matches:
        by_split[m.split]["moved_to_train" if plan.get(m.id) else "dropped"] += 1
    return {"near_duplicates": len(matches),
            "moved_to_train": sum(c["moved_to_train"] for c in by_split.values()),
            "dropped": sum(c["dropped"] for c in by_split.values()),
            "by_split": {split: {"moved_to_train": c["moved_to_train"], "dropped": c["dropped"]}
                         for split, c in by_split.items()}}


# --- groups -------------------------------------------------------------------------------------


def group_value(record: dict, group_key: str | None) -> str | None:
    """The record's value of the task's group_key (a record field or attributes.<name>), or None."""
    if not group_key:
        return None
    if group_key.startswith("attributes."):
        value = (record.get("attributes") or {}).get(group_key.split(".", 1)[1])
    else:
        value = record.get(group_key)
    return None if value is None or value == "" else str(value)


def split_key(record: dict, group_key: str | None) -> str:
    """What the export hashes to assign a split: the group's key when the record has one, else its
    id (unchanged from before, so records without a group do not move)."""
    value = group_value(record, group_key)
    return f"{group_key}={value}" if value is not None else str(record["id"])


def straddling_groups(rows: Iterable[tuple[str | None, str]]) -> dict[str, list[str]]:
    """{group: splits} for every group found in more than one split, from (group, split) rows
    (a record's own `split` field can still pull one record of a group away)."""
    splits: dict[str, set[str]] = {}
    for group, split in rows:
        if group is not None:
            splits.setdefault(group, set()).add(split)
    return {group: sorted(s) for group, s in sorted(splits.items()) if len(s) > 1}

