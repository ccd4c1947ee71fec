"""The record files erasure rewrites, one reader and writer per format: JSONL, CSV, Parquet and
Markdown, each read in its own encoding and written back in it.

Every rewriter counts first (`write=False`, for the request's plan) and, with `write`, rewrites
only when it found something, atomically (temp file, then rename), streaming so memory stays flat.
The count is what the rewrite removes, computed by the same predicate, so the plan reports only
what changes.
"""
from __future__ import annotations

import codecs
import csv
import json
import re
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ft_pipeline.core.data.suppression import record_id
from ft_pipeline.core.jsonl import atomic_open, atomic_text

SUFFIXES = (".jsonl", ".ndjson", ".csv", ".parquet", ".md")
ERASED = "[erased]"
_DIGEST = re.compile(r"[0-9a-f]{64}")  # keyed_digest's hex HMAC-SHA256
Rows = Callable[[object], bool]

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# Scripts a legacy single-byte file holds that Windows-1252 would turn into Latin-looking mojibake.
_LATIN_ALPHABETS = ("Basic Latin", "Latin", "Control character", "General Punctuation", "Currency Symbols",
                    "Letterlike Symbols")


_UNDECODED = re.compile("[\udc80-\udcff]")  # how surrogateescape shows a byte UTF-8 cannot decode
_UTF8_LETTER = re.compile("[^\x00-\x7f\udc80-\udcff]")  # a multi-byte sequence that did decode


def text_encoding(path: Path) -> tuple[str, str]:
    """(encoding, errors) that reads `path` and writes it back byte for byte outside what changed.
    UTF-8 (as ingestion reads it) when the file is valid UTF-8 or mostly so (more valid multi-byte
    sequences than broken bytes), a BOM's encoding when it has one; otherwise a legacy file:
    charset-normalizer's guess when it recognises a non-Latin script (Cyrillic, Greek...), else
    Windows-1252, the encoding of most Western legacy exports, whose accented letters Latin-1
    shares; Latin-1 itself, which decodes every byte, if 1252 cannot."""
    with open(path, "rb") as fh:
        head = fh.read(4)
        for bom, name in _BOMS:
            if head.startswith(bom):
                return name, "strict"
        fh.seek(0)
        decoder, bad, wide = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape"), 0, 0
        while block := fh.read(1 << 20):
            text = decoder.decode(block)
            bad, wide = bad + len(_UNDECODED.findall(text)), wide + len(_UTF8_LETTER.findall(text))
        bad += len(_UNDECODED.findall(decoder.decode(b"", final=True)))
    if not bad:
        return "utf-8", "strict"
    # UTF-8 with a few broken bytes (a cut-off export) keeps them as they are; a legacy file's
    # letters only now and then pair up into a valid sequence ("Ш" "і" in Windows-1251)
    if wide > bad:
        return "utf-8", "surrogateescape"
    import charset_normalizer

    best = charset_normalizer.from_path(path).best()
    if best is not None and best.language != "Unknown" and any(
            not a.startswith(_LATIN_ALPHABETS) for a in best.alphabets):
        return best.encoding, "strict"
    try:
        with open(path, encoding="cp1252") as fh:
            while fh.read(1 << 20):
                pass
        return "cp1252", "strict"
    except UnicodeDecodeError:
        return "latin-1", "strict"


def _text(path: Path, enc: tuple[str, str], newline: str | None = None):
    return open(path, encoding=enc[0], errors=enc[1], newline=newline)


def _atomic(path: Path, enc: tuple[str, str]):
    # "utf-8-sig" writes its BOM again; utf-16/32 write theirs through the codec itself
    return atomic_text(path, encoding=enc[0], errors=enc[1], newline="")


# --- JSONL -----------------------------------------------------------------------------------


def _json_lines(path: Path, enc) -> Iterator[tuple[str, object]]:
    """(line, parsed) of every line; a line that is not JSON comes as its text (a raw-zone line
    kept as it came), a blank one as None."""
    with _text(path, enc, newline="") as fh:
        for line in fh:
            try:
                yield line, json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                yield line, line


def filter_jsonl(path: Path, matches: Rows, write: bool = False) -> tuple[int, list[str]]:
    """(lines `matches` accepts, their ids); with `write`, the file is rewritten without them.
    Two streaming passes (count, then copy the rest) keep memory flat whatever the file's size."""
    enc = text_encoding(path)
    dropped = [record_id(obj) or "" for _, obj in _json_lines(path, enc) if obj is not None and matches(obj)]
    if write and dropped:
        with _atomic(path, enc) as out:
            out.writelines(line for line, obj in _json_lines(path, enc) if obj is None or not matches(obj))
    return len(dropped), dropped


# --- CSV -------------------------------------------------------------------------------------


def _dialect(path: Path, enc) -> tuple[dict, str]:
    """The file's delimiter and quote character (a semicolon export reads as one cell a row
    otherwise) and its line ending, so the kept rows are written back as they were."""
    with _text(path, enc, newline="") as fh:
        sample = fh.read(1 << 16)
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        dialect = {"delimiter": sniffed.delimiter, "quotechar": sniffed.quotechar or '"'}
    except csv.Error:
        dialect = {}
    return dialect, "\r\n" if "\r\n" in sample else "\n"


def _csv_rows(path: Path, enc, dialect: dict) -> Iterator[tuple[list[str], dict]]:
    """(cells, the row as matched) of the header, then of every data row: the row's `id` by the
    header, and every cell, so a value counts in whichever column (or extra cell) holds it."""
    csv.field_size_limit(1 << 30)  # a cell the reader refuses would stop the request half-read
    with _text(path, enc, newline="") as fh:
        reader = csv.reader(fh, **dialect)
        header = next(reader, [])
        yield header, {}
        at = header.index("id") if "id" in header else None
        for cells in reader:
            yield cells, {"cells": cells, "id": cells[at] if at is not None and at < len(cells) else None}


def filter_csv(path: Path, matches: Rows, write: bool = False) -> tuple[int, list[str]]:
    """Rows `matches` accepts (by the `id` column, or a value in any cell), their ids; with
    `write`, rewritten without them in the file's own encoding, delimiter and line ending."""
    enc = text_encoding(path)
    dialect, terminator = _dialect(path, enc)
    rows = _csv_rows(path, enc, dialect)
    next(rows, None)
    dropped = [record_id(row) or "" for _, row in rows if matches(row)]
    if write and dropped:
        with _atomic(path, enc) as out:
            writer = csv.writer(out, lineterminator=terminator, **dialect)
            writer.writerows(cells for cells, row in _csv_rows(path, enc, dialect) if not row or not matches(row))
    return len(dropped), dropped


# --- Parquet ---------------------------------------------------------------------------------


def filter_parquet(path: Path, matches: Rows, write: bool = False, batch_size: int = 4096) -> tuple[int, list[str]]:
    """Rows `matches` accepts; with `write`, the file is rewritten batch by batch without them,
    with the same schema (types, field metadata) and compression."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    dropped: list[str] = []
    for batch in source.iter_batches(batch_size=batch_size):
        dropped += [record_id(row) or "" for row in batch.to_pylist() if matches(row)]
    if write and dropped:
        meta = source.metadata
        compression = meta.row_group(0).column(0).compression.lower() if meta.num_row_groups and meta.num_columns else "snappy"
        with atomic_open(path, "wb") as fh, pq.ParquetWriter(fh, source.schema_arrow, compression=compression) as writer:
            for batch in source.iter_batches(batch_size=batch_size):
                keep = pa.array([not matches(row) for row in batch.to_pylist()], type=pa.bool_())
                writer.write_batch(batch.filter(keep))
    return len(dropped), dropped


# --- Markdown --------------------------------------------------------------------------------


def redact_markdown(path: Path, spans: Callable[[str], list[tuple[int, int]]], write: bool = False) -> int:
    """Raw-zone Markdown (knowledge documents): each whole-token occurrence of a value becomes
    `[erased]`, the rest of the text kept; returns how many occurrences. Line by line, so a value
    split across a line break is not found (as in any other line-based copy)."""
    enc = text_encoding(path)
    with _text(path, enc, newline="") as fh:
        found = sum(len(spans(line)) for line in fh)
    if write and found:
        with _text(path, enc, newline="") as fh, _atomic(path, enc) as out:
            out.writelines(_replace(line, spans(line)) for line in fh)
    return found


def _replace(line: str, spans: list[tuple[int, int]]) -> str:
    out, at = [], 0
    for start, end in spans:
        if start >= at:  # overlapping values ("Anna", "Anna Smith"): the first one covers both
            out += [line[at:start], ERASED]
            at = end
        elif end > at:
            at = end
    return "".join(out) + line[at:]


def id_lines(ids: Iterable[str]) -> Callable[[str], bool]:
    """A line holding one of the keyed digests among `ids` as a whole. Raw ids are left out: a
    short one ("7") would take every line of a table holding that number, and ids leave the raw
    zone only as digests."""
    ids = [i for i in ids if _DIGEST.fullmatch(i)]
    if not ids:
        return lambda line: False
    alternatives = "|".join(map(re.escape, sorted(ids, key=len, reverse=True)))
    pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")
    return lambda line: pattern.search(line) is not None


def drop_markdown_lines(path: Path, holds: Callable[[str], bool], write: bool = False) -> int:
    """Markdown outside the raw zone (reports, model cards): lines holding an erased record's id
    digest are removed; returns how many."""
    enc = text_encoding(path)
    with _text(path, enc, newline="") as fh:
        found = sum(1 for line in fh if holds(line))
    if write and found:
        with _text(path, enc, newline="") as fh, _atomic(path, enc) as out:
            out.writelines(line for line in fh if not holds(line))
    return found
