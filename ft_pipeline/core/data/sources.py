"""Where records come from: a file, a glob or s3:// resolved into files, read row by row as JSONL,
CSV or Parquet (undecodable, oversized and broken rows flagged with their reason, never dropped),
and the task's column mapping from a source's own column names to record fields.
"""
from __future__ import annotations

import csv
import glob as globlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ft_pipeline.errors import UserError

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
# Cells that hold structured values in CSV (and sometimes Parquet string columns).
JSON_COLUMNS = ("messages", "attributes", "labels", "prompt")
QUARANTINE_RAW_LIMIT = 64 * 1024  # an oversized line is kept only in part: enough to identify it

# Quarantine reasons that ingestion adds to those of records.py.
BROKEN_JSON = "broken_json"
INVALID_UTF8 = "invalid_utf8"
OVERSIZED = "oversized"
DUPLICATE_ID = "duplicate_id"
EXTRA_CELLS = "extra_cells"


class InputError(UserError, ValueError):
    """The input as a whole is unusable (missing, empty, a directory, unreadable)."""


@dataclass
class Row:
    """One unit of input: a JSONL line or a CSV/Parquet row, before parsing."""

    line: int
    raw: Any  # the line text, or the row as a dict
    obj: Any = None  # the decoded object, when decoding succeeded
    error: tuple[str, str | None] | None = None  # (reason, field) when it did not
    size: int = 0


# --- resolving the source into files ---------------------------------------------------------


def format_of(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{name}: unsupported file type {suffix or '(none)'!r}; expected .jsonl, .csv or .parquet")
    return FORMATS[suffix]


def _is_glob(source: str) -> bool:
    return any(ch in source for ch in "*?[")


def resolve_local(source: str) -> list[str]:
    if _is_glob(source):
        files = sorted(p for p in globlib.glob(source, recursive=True) if os.path.isfile(p))
        if not files:
            raise InputError(f"{source}: the pattern matches no files")
        return files
    if not os.path.exists(source):
        raise InputError(f"{source}: no such file")
    if os.path.isdir(source):
        raise InputError(f"{source}: is a directory; pass a file or a glob such as {source.rstrip('/')}/*.jsonl")
    return [source]


def _s3_client():
    import boto3

    # boto3 reads AWS_ENDPOINT_URL itself in recent versions; passing it keeps older ones (and
    # moto's server mode in tests) working the same way.
    return boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)


def resolve_s3(source: str) -> list[str]:
    """An s3:// key, a prefix (ending in / or without a file suffix), or a glob over keys."""
    import fnmatch

    bucket, _, key = source[len("s3://"):].partition("/")
    client = _s3_client()
    if not _is_glob(key) and Path(key).suffix.lower() in FORMATS:
        try:
            client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:  # botocore ClientError: 404 / 403 / no bucket
            raise InputError(f"{source}: cannot read object ({type(exc).__name__})") from None
        return [source]
    prefix = key.split("*")[0].split("?")[0].split("[")[0] if _is_glob(key) else key
    keys = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [obj["Key"] for obj in page.get("Contents", [])]
    except Exception as exc:
        raise InputError(f"{source}: cannot list objects ({type(exc).__name__})") from None
    if _is_glob(key):
        keys = [k for k in keys if fnmatch.fnmatchcase(k, key)]
    keys = sorted(k for k in keys if Path(k).suffix.lower() in FORMATS)
    if not keys:
        raise InputError(f"{source}: no .jsonl/.csv/.parquet objects under this prefix")
    return [f"s3://{bucket}/{k}" for k in keys]


def resolve_source(source: str) -> list[str]:
    files = resolve_s3(source) if source.startswith("s3://") else resolve_local(source)
    for name in files:
        format_of(name)
    return files


# --- reading rows ---------------------------------------------------------------------------


def _truncate(text: str) -> str:
    return text if len(text) <= QUARANTINE_RAW_LIMIT else text[:QUARANTINE_RAW_LIMIT]


def _bounded_lines(fh, limit: int) -> Iterator[tuple[int, bytes, int]]:
    """(line number, bytes, size) of each line. A line over `limit` bytes is read on in pieces and
    only its first QUARANTINE_RAW_LIMIT bytes are kept: a 50 MiB line costs no more memory than a
    short one (reading it whole peaked at three times its size)."""
    lineno = 0
    while data := fh.readline(limit + 2):  # + "\r\n"
        lineno += 1
        size = len(data)
        if size == limit + 2 and not data.endswith(b"\n"):
            data = data[:QUARANTINE_RAW_LIMIT]
            while piece := fh.readline(1 << 20):
                size += len(piece)
                if piece.endswith(b"\n"):
                    break
        yield lineno, data, size


def read_jsonl_rows(path: str, max_record_bytes: int) -> Iterator[Row]:
    with open(path, "rb") as fh:
        for lineno, data, size in _bounded_lines(fh, max_record_bytes):
            if not data.strip():
                continue
            data = data.rstrip(b"\r\n")
            if size > max_record_bytes:
                yield Row(lineno, _truncate(data.decode("utf-8", errors="backslashreplace")),
                          error=(OVERSIZED, None), size=size)
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data.decode("utf-8", errors="backslashreplace")
                yield Row(lineno, _truncate(text), error=(INVALID_UTF8, None), size=size)
                continue
            try:
                # strict=False lets raw control characters through so that records.py reports
                # them as control_characters, the same as their \u escapes.
                obj = json.loads(text, strict=False)
            except json.JSONDecodeError:
                yield Row(lineno, text, error=(BROKEN_JSON, None), size=size)
                continue
            yield Row(lineno, text, obj=obj, size=size)


def _has_bad_bytes(text: str) -> bool:
    # surrogateescape turns each undecodable byte into one of U+DC80..U+DCFF.
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _shown(text: str) -> str:
    """A cell as it can be stored in the quarantine: undecodable bytes as \\xNN text."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _decode_cells(row: dict) -> tuple[dict, tuple[str, str | None] | None]:
    """CSV cells are strings: an empty cell means absent, JSON columns are decoded."""
    out: dict = {}
    for key, value in row.items():
        if key is None:  # a row with more cells than the header has columns
            return out, (EXTRA_CELLS, None)
        if value is None or value == "":
            continue
        if _has_bad_bytes(value):
            return out, (INVALID_UTF8, key)
        if key == "label_verified" and value.strip().lower() in ("true", "false"):
            value = value.strip().lower() == "true"
        elif key in JSON_COLUMNS and value.lstrip()[:1] in ("[", "{"):
            try:
                value = json.loads(value, strict=False)
            except json.JSONDecodeError:
                return out, (BROKEN_JSON, key)
        out[key] = value
    return out, None


def read_csv_rows(path: str, max_record_bytes: int) -> Iterator[Row]:
    # surrogateescape keeps a bad byte from aborting the whole file; _decode_cells flags the row.
    # The csv module refuses a cell over its field limit (128 KiB by default) with an error that
    # leaves the reader mid-record: the limit follows the record limit, and a cell past it stops
    # the file with its line rather than being read on as rows made of the cell's remains.
    csv.field_size_limit(max(max_record_bytes + 1, 1 << 17))
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        reader = csv.DictReader(fh)
        last_line = 1
        for raw in _csv_records(reader, path, lambda: last_line + 1, max_record_bytes):
            start, last_line = last_line + 1, reader.line_num
            shown = {k if k is not None else "_extra": v if k is not None else [_shown(x) for x in v]
                     for k, v in raw.items()}
            shown = {k: _shown(v) if isinstance(v, str) else v for k, v in shown.items()}
            size = sum(len(v.encode("utf-8", "surrogateescape")) for v in raw.values() if isinstance(v, str))
            if not any(v for v in raw.values() if isinstance(v, str) and v.strip()):
                continue
            if size > max_record_bytes:
                yield Row(start, {"_truncated": True}, error=(OVERSIZED, None), size=size)
                continue
            obj, error = _decode_cells(raw)
            yield Row(start, shown, obj=None if error else obj, error=error, size=size)


def _csv_records(reader, path: str, line, max_record_bytes: int) -> Iterator[dict]:
    try:
        if not reader.fieldnames:
            return
        yield from reader
    except csv.Error as exc:
        why = (f"a cell is over {max_record_bytes:,} bytes, the record limit (max_record_bytes)"
               if "field larger than field limit" in str(exc) else f"not readable as CSV ({exc})")
        raise InputError(f"{path} line {line()}: {why}") from None


def read_parquet_rows(path: str, max_record_bytes: int, batch_size: int = 1024) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        raise InputError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    rowno = 0
    for batch in pf.iter_batches(batch_size=batch_size):
        for raw in batch.to_pylist():
            rowno += 1
            size = len(json.dumps(raw, default=str).encode("utf-8"))
            shown = json.loads(json.dumps(raw, ensure_ascii=False, default=str))
            if size > max_record_bytes:
                yield Row(rowno, {"_truncated": True}, error=(OVERSIZED, None), size=size)
                continue
            cells = {k: v for k, v in raw.items() if v is not None}
            obj, error = _decode_cells({k: v for k, v in cells.items() if isinstance(v, str)})
            obj.update({k: v for k, v in cells.items() if not isinstance(v, str)})
            yield Row(rowno, shown, obj=None if error else obj, error=error, size=size)


READERS = {"jsonl": read_jsonl_rows, "csv": read_csv_rows, "parquet": read_parquet_rows}


# --- the task's column mapping ---------------------------------------------------------------

SNIFF_ROWS = 1000  # JSONL has no header: the keys of the first rows stand in for one
SNIFF_RECORD_BYTES = 1 << 20  # a longer line is oversized whatever its keys


def source_columns(path: str, fmt: str) -> list[str]:
    """The columns a file offers: the CSV header, the Parquet schema, or the keys of the first
    JSONL objects."""
    if fmt == "csv":
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
            return [c for c in (next(csv.reader(fh), None) or []) if c]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except Exception as exc:
            raise InputError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    seen: dict[str, None] = {}
    for i, row in enumerate(read_jsonl_rows(path, SNIFF_RECORD_BYTES)):
        if i >= SNIFF_ROWS:
            break
        if isinstance(row.obj, dict):
            seen.update(dict.fromkeys(row.obj))
    return list(seen)


def map_columns(obj: Any, columns: dict[str, str]) -> tuple[Any, tuple[str, str | None] | None]:
    """Renames the source's columns to record fields (`attributes.<name>` nests); cells that hold
    structured values as text (a CSV's messages, a "true" label_verified) are decoded."""
    if not columns or not isinstance(obj, dict):
        return obj, None
    out = {k: v for k, v in obj.items() if k not in columns}
    attributes = dict(out["attributes"]) if isinstance(out.get("attributes"), dict) else {}
    for source, target in columns.items():
        if source not in obj:
            continue
        if target.startswith("attributes."):
            attributes[target.removeprefix("attributes.")] = obj[source]
        else:
            out[target] = obj[source]
    if attributes:
        out["attributes"] = attributes
    for key, value in list(out.items()):
        if not isinstance(value, str):
            continue
        if key == "label_verified" and value.strip().lower() in ("true", "false"):
            out[key] = value.strip().lower() == "true"
        elif key in JSON_COLUMNS and value.lstrip()[:1] in ("[", "{"):
            try:
                out[key] = json.loads(value, strict=False)
            except json.JSONDecodeError:
                return out, (BROKEN_JSON, key)
    return out, None
