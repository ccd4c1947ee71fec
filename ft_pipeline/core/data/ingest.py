"""Ingestion: JSONL / CSV / Parquet from a file, a glob or s3://, normalized or quarantined.

Every non-blank input line (or CSV/Parquet row) ends up exactly once either in the normalized
output or in the quarantine, and `ingest` asserts that before it renames its outputs into place.
The quarantine lives in the raw zone, so it keeps the original line for a human to fix.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ft_pipeline.core.data.sources import (  # InputError and Row are ingestion's interface too
    DUPLICATE_ID, READERS, InputError, Row, _s3_client, format_of, map_columns, resolve_source, source_columns,
)
from ft_pipeline.core.jsonl import atomic_jsonl, sha256_file
from ft_pipeline.core.records import RecordError, parse_record
from ft_pipeline.core.task_file import check_columns

if TYPE_CHECKING:
    from ft_pipeline.core.task import TaskConfig

PROGRESS_EVERY = 500


@dataclass
class _Tally:
    lines: int = 0
    records: int = 0
    quarantined: int = 0
    reasons: Counter = field(default_factory=Counter)


# --- the ingestion loop ---------------------------------------------------------------------


def _id_key(record_id: str) -> bytes:
    # 16-byte digests instead of the ids themselves: the seen-set stays small for long ids.
    return hashlib.blake2b(record_id.encode("utf-8"), digest_size=16).digest()


def _local_copy(name: str, tmpdir: str) -> str:
    """S3 objects are downloaded to a temp file first: Parquet needs seeks, and hashing and
    reading then share one code path with local files."""
    if not name.startswith("s3://"):
        return name
    bucket, _, key = name[len("s3://"):].partition("/")
    local = os.path.join(tmpdir, f"{len(os.listdir(tmpdir))}{Path(key).suffix}")
    try:
        _s3_client().download_file(bucket, key, local)
    except Exception as exc:
        raise InputError(f"{name}: download failed ({type(exc).__name__})") from None
    return local


def ingest(
    source: str,
    out_path: str | os.PathLike,
    quarantine_path: str | os.PathLike,
    *,
    max_record_bytes: int = 1_000_000,
    progress: Callable[[int, int | None], None] | None = None,
    task: "TaskConfig | None" = None,
) -> dict:
    """Normalizes every record of `source` into `out_path`; bad ones go to `quarantine_path`.

    With a task, its `columns` map the source's columns to record fields first (a column the
    source lacks is a TaskError before any record is written), and a file without an id column
    gets ids `<file stem>-<line>`: stable as long as the file is, and free of record content.
    """
    from ft_pipeline.core.data.suppression import erasure_lock

    with erasure_lock(shared=True):  # no forget between reading the suppression list and the output
        return _ingest(source, out_path, quarantine_path, max_record_bytes, progress, task)


def _ingest(source, out_path, quarantine_path, max_record_bytes, progress, task) -> dict:
    from ft_pipeline.core.data.suppression import Suppression

    files = resolve_source(str(source))
    suppression = Suppression.load()  # erased people stay erased, whatever the source still holds
    erased = 0
    tally = _Tally()
    seen: set[bytes] = set()
    hashes: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="ft-ingest-") as tmpdir, atomic_jsonl(out_path) as out, atomic_jsonl(
        quarantine_path
    ) as quarantine:
        for name in files:
            local = _local_copy(name, tmpdir)
            hashes[name] = sha256_file(local)
            columns = dict(task.columns) if task else {}
            offered = source_columns(local, format_of(name))
            if task is not None:
                check_columns(task, offered, name)
            mapped_names = {columns.get(c, c) for c in offered}
            stem = Path(name).stem if "id" not in mapped_names else None
            file_lines = 0
            for row in READERS[format_of(name)](local, max_record_bytes):
                file_lines += 1
                tally.lines += 1
                if row.obj is not None and (columns or stem):
                    row.obj, row.error = map_columns(row.obj, columns)
                    if stem and isinstance(row.obj, dict) and row.obj.get("id") is None:
                        row.obj["id"] = f"{stem}-{row.line}"
                if suppression and suppression.matches(row.obj if row.obj is not None else row.raw):
                    erased += 1
                    continue
                reason, field_name, record = classify_row(row, seen)
                if record is not None:
                    out.write(record)
                    tally.records += 1
                else:
                    quarantine.write({"source_file": name, "line": row.line, "reason": reason,
                                      "field": field_name, "raw": row.raw})
                    tally.quarantined += 1
                    tally.reasons[reason] += 1
                if progress and tally.lines % PROGRESS_EVERY == 0:
                    progress(tally.lines, None)
            if file_lines == 0:
                raise InputError(f"{name}: the file is empty (no records)")
        assert tally.lines == tally.records + tally.quarantined + erased, "ingest accounting"
        assert tally.records == out.count and tally.quarantined == quarantine.count, "ingest accounting"
    if progress:
        progress(tally.lines, tally.lines)
    return {"files": files, "lines": tally.lines, "records": tally.records, "quarantined": tally.quarantined,
            "erased": erased,
            "quarantine_reasons": dict(sorted(tally.reasons.items())), "sha256": hashes}


def classify_row(row: Row, seen: set[bytes]) -> tuple[str | None, str | None, dict | None]:
    """(reason, field, None) for a row to quarantine, (None, None, record) for one to keep;
    `seen` remembers ids across calls so a repeated id is quarantined."""
    if row.error:
        return row.error[0], row.error[1], None
    try:
        record = parse_record(row.obj)
    except RecordError as exc:
        return exc.reason, exc.field, None
    key = _id_key(record["id"])
    if key in seen:
        return DUPLICATE_ID, "id", None
    seen.add(key)
    return None, None, record
