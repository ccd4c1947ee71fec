"""What the dataset converters share: a stable held-out slice, atomic writes, and the check that
every converted record is one the pipeline accepts.

The converters read files taken from public repositories' snapshots and write our raw record
schema (DESIGN.md) under /work/datasets/<name>/, outside the repository: the data is never
committed. Conversion needs only the standard library (and pandas for CSV); `--check` imports
`ft_pipeline` (run with PYTHONPATH=<worktree>) to validate what was written.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import os
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, TextIO

# C0/C1 controls other than tab/newline/CR: parse_record quarantines them, so count them here first.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by `key`: a held-out slice that never changes between runs."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def held_out(key: str, eval_fraction: float, test_fraction: float = 0.0) -> str:
    """train / eval / test by the stable hash of `key` (test first, then eval)."""
    u = stable_fraction(key)
    if u < test_fraction:
        return "test"
    if u < test_fraction + eval_fraction:
        return "eval"
    return "train"


def stratified_held_out(name: str, labels: list[str], eval_fraction: float) -> list[str]:
    """train / eval per row: within each label, the rows with the lowest stable hash go to eval
    (at least one per label), so that every label is in eval and the slice never changes."""
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    splits = ["train"] * len(labels)
    for rows in by_label.values():
        rows.sort(key=lambda i: stable_fraction(f"{name}:{i}"))
        for i in rows[:max(1, round(len(rows) * eval_fraction))]:
            splits[i] = "eval"
    return splits


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[TextIO]:
    """A temp file beside `path`, renamed over it only when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield fh
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a dataset is for others to read
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_jsonl(path: Path, records: Iterable[dict]) -> int:
    n = 0
    with atomic_write(path) as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


def parser(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--out", type=Path, required=True, help="converted source to write")
    ap.add_argument("--check", action="store_true",
                    help="after writing, validate every record with ft_pipeline's parse_record "
                         "(needs PYTHONPATH=<worktree>); exit 1 if any fails")
    return ap


def check_jsonl(path: Path) -> dict:
    """Runs every line through parse_record; counts formats, splits, failures by reason, id clashes."""
    from ft_pipeline.core.records import RecordError, parse_record

    counts: dict[str, Counter] = {"task": Counter(), "split": Counter(), "failed": Counter()}
    ids: set[str] = set()
    duplicate_ids = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                record = parse_record(json.loads(line))
            except RecordError as exc:
                counts["failed"][f"{exc.reason}:{exc.field}"] += 1
                continue
            duplicate_ids += record["id"] in ids
            ids.add(record["id"])
            counts["task"][record["task"]] += 1
            counts["split"][str(record["split"])] += 1
    return {**{k: dict(v) for k, v in counts.items()}, "duplicate_ids": duplicate_ids}


def check_csv(path: Path, columns: dict[str, str], id_prefix: str) -> dict:
    """A CSV as ingestion reads it (ft_pipeline's CSV reader decodes the cells), its columns renamed
    by the task's `columns` mapping and an id from the line number, then parse_record."""
    from ft_pipeline.core.data.sources import read_csv_rows
    from ft_pipeline.core.records import RecordError, parse_record

    counts: dict[str, Counter] = {"task": Counter(), "split": Counter(), "failed": Counter()}
    for row in read_csv_rows(str(path), max_record_bytes=1 << 20):
        if row.error:
            counts["failed"][f"{row.error[0]}:{row.error[1]}"] += 1
            continue
        obj = {columns.get(k, k): v for k, v in row.obj.items()}
        try:
            record = parse_record({"id": f"{id_prefix}-{row.line}", **obj})
        except RecordError as exc:
            counts["failed"][f"{exc.reason}:{exc.field}"] += 1
            continue
        if not isinstance(record["label_verified"], bool) or not record["label_verified"]:
            counts["failed"]["label_verified_not_true"] += 1
        counts["task"][record["task"]] += 1
        counts["split"][str(record["split"])] += 1
    return {k: dict(v) for k, v in counts.items()}


def read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def finish(summary: dict, check: dict | None) -> None:
    """Prints the summary (and the check) as one JSON object; exits 1 if the check found failures."""
    if check is not None:
        summary["check"] = check
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    if check is not None and (check.get("failed") or check.get("duplicate_ids")):
        sys.exit(1)
