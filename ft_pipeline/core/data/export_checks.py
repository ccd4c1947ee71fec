"""What the blocking checks on the data judge, computed here so each check is a predicate over one
call (defs/data/checks.py): the records the screening flags, and the held-out rows that near-copy
train. Results name files, ids and reasons, never the text that tripped them.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from ft_pipeline.core.data import contamination
from ft_pipeline.core.data.export import NOT_CHAT, row_text
from ft_pipeline.core.data.residual_pii import record_turns, task_texts
from ft_pipeline.core.data.screening import ScreeningConfig, screen_record
from ft_pipeline.core.jsonl import iter_jsonl


def screen_file(path: Path | str, screening: ScreeningConfig) -> tuple[Counter, list[str]]:
    """(reasons by detector, ids) of the records in a JSONL file that the screening flags."""
    reasons: Counter = Counter()
    ids: list[str] = []
    for record in iter_jsonl(path):
        reason = screen_record(record, screening)
        if reason:
            reasons[reason.split(":")[0]] += 1
            ids.append(record["id"])
    return reasons, ids


def screen_export(export_dir: Path | str, screening: ScreeningConfig) -> list[str]:
    """`file:id` of every export row whose text from records trips the screening. The task's own
    system prompt is left out: it was checked when the task loaded, and it is in every row."""
    flagged = []
    for name, ident, turns in record_turns(export_dir, task_texts(export_dir)):
        record = {"id": ident, "messages": [{"role": "user", "content": text} for _, text in turns]}
        if screen_record(record, screening):
            flagged.append(f"{name}:{ident}")
    return flagged


def cross_split_overlap(export_dir: Path | str, sidecar_dir: Path | str, threshold: float) -> tuple[list, dict]:
    """(held-out rows that near-copy a train row, groups that straddle splits) of an export, by the
    split each row went to (the sidecar's splits.jsonl)."""
    splits = {row["id"]: row for row in iter_jsonl(Path(sidecar_dir) / "splits.jsonl")}
    rows = ((row["id"], splits[row["id"]]["split"], row_text(row))
            for path in sorted(Path(export_dir).glob("*.jsonl")) if path.stem not in NOT_CHAT
            for row in iter_jsonl(path) if row["id"] in splits)
    overlap = contamination.find_cross_split(rows, threshold=threshold)
    straddling = contamination.straddling_groups((r["group"], r["split"]) for r in splits.values())
    return overlap, straddling
