"""The copies of a record that erasure must reach, found and rewritten one file at a time.

Record ids travel through every derived file (`id` in JSONL rows and the review CSV, lists of ids
in the values assets pass each other), so an id is how a derived copy is recognised: its text was
pseudonymized and no longer holds the value that identified the person. Every function here
counts first (`write=False`, for the request's plan) and rewrites only when asked, atomically, so
running it twice is harmless: a file already free of the records is left untouched.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

from ft_pipeline.core.data.suppression import record_id
from ft_pipeline.core.digest import TRAINED, keyed_digest
from ft_pipeline.core.jsonl import atomic_text


class ErasureError(ValueError):
    """A request that cannot be carried out as given; the message is one line, without values."""


RECORD_SUFFIXES = (".jsonl", ".csv")


def outside_ids(ids: set[str]) -> set[str]:
    """Raw ids as copies outside the raw zone hold them: keyed digests (what redaction writes), and
    the ids as they are (files from before)."""
    return set(ids) | {keyed_digest(i) for i in ids}


def trained_digests(ids: set[str]) -> set[str]:
    """What a training manifest holds for these raw ids: the id its export carried (the pseudonym;
    a raw id in a hand-made export), digested for training."""
    return {keyed_digest(i, TRAINED) for i in outside_ids(ids)}


def kind_of(path: Path, home: Path) -> str:
    """The artifact kind of a file under $FT_PIPELINE_HOME, for counts: the run's own folder left
    out, so every run's `data/jsonl_export/<run>/train.jsonl` counts as `data/jsonl_export/train.jsonl`."""
    parts = Path(path).relative_to(home).parts
    if len(parts) >= 4:
        return "/".join((parts[0], parts[1], parts[-1]))
    return "/".join(parts[:-1]) or parts[0]


def record_files(root: Path, skip: tuple[Path, ...] = ()) -> Iterator[Path]:
    """Every JSONL and CSV file under `root`, in a stable order, except under the `skip` folders."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if Path(folder, d) not in skip)
        for name in sorted(files):
            if name.endswith(RECORD_SUFFIXES) and not name.startswith("."):
                yield Path(folder, name)


def _json_lines(path: Path) -> Iterator[tuple[str, object]]:
    """(line, parsed) of every line; a line that is not JSON comes as its text (a raw-zone line
    kept as it came), a blank one as None."""
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            try:
                yield line, json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                yield line, line


def filter_jsonl(path: Path, matches: Callable[[object], bool], write: bool = False) -> tuple[int, list[str]]:
    """(lines `matches` accepts, their ids); with `write`, the file is rewritten without them.
    Two streaming passes (count, then copy the rest) keep memory flat whatever the file's size."""
    dropped = [record_id(obj) or "" for _, obj in _json_lines(path) if obj is not None and matches(obj)]
    if write and dropped:
        with atomic_text(path) as out:
            out.reconfigure(errors="surrogateescape")
            out.writelines(line for line, obj in _json_lines(path) if obj is None or not matches(obj))
    return len(dropped), dropped


def filter_csv(path: Path, ids: set[str], write: bool = False) -> int:
    """Rows of a CSV with an `id` column whose id is in `ids`; with `write`, rewritten without them."""
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        dropped = sum(row["id"] in ids for row in reader) if "id" in fields else 0
    if write and dropped:
        with open(path, encoding="utf-8", newline="") as fh, atomic_text(path) as out:
            writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\r\n")
            writer.writeheader()
            writer.writerows(row for row in csv.DictReader(fh) if row["id"] not in ids)
    return dropped


def scrub_value(obj, ids: set[str]) -> tuple[object, int]:
    """(obj without the erased ids, how many it held): list items that are an erased id or a row
    with one, dict keys that are one, and any other string equal to one (replaced by None)."""
    if isinstance(obj, str):
        return (None, 1) if obj in ids else (obj, 0)
    if isinstance(obj, dict):
        if str(obj.get("id")) in ids:
            return None, 1
        out, removed = {}, 0
        for key, value in obj.items():
            if isinstance(key, str) and key in ids:
                removed += 1
                continue
            out[key], n = scrub_value(value, ids)
            removed += n
        return out, removed
    if isinstance(obj, (list, tuple)):
        items, removed = [], 0
        for item in obj:
            if (isinstance(item, str) and item in ids) or (isinstance(item, dict) and str(item.get("id")) in ids):
                removed += 1
                continue
            value, n = scrub_value(item, ids)
            items.append(value)
            removed += n
        return type(obj)(items) if isinstance(obj, tuple) else items, removed
    return obj, 0


def value_kind(path: Path, root: Path) -> str:
    """`stored value: <asset>`; values a run stored for itself (under its run id) count as run outputs."""
    first = Path(path).relative_to(root).parts[0]
    return "stored value: " + ("run outputs" if len(first) == 36 and first.count("-") == 4 else first)


def remove_tree(path: Path) -> bool:
    """Deletes a folder in a way a crash cannot leave half-deleted under its own name: renamed
    first, then removed (a leftover `.erasing-*` folder is removed on the next call)."""
    path = Path(path)
    doomed = path.with_name(f".erasing-{path.name}")
    existed = path.exists()
    if existed:
        if doomed.exists():
            shutil.rmtree(doomed)
        os.replace(path, doomed)
    if doomed.exists():
        shutil.rmtree(doomed)
    return existed
