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
from typing import Iterator

from ft_pipeline.core.digest import TRAINED, keyed_digest
from ft_pipeline.core.erasure.formats import SUFFIXES


class ErasureError(ValueError):
    """A request that cannot be carried out as given; the message is one line, without values."""




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
    out, so every run's `data/jsonl_export/<run>/train.jsonl` counts as `data/jsonl_export/train.jsonl`
    and its sidecar `data/jsonl_export_sidecars/<run>/attributes.jsonl` as
    `data/jsonl_export_sidecars/attributes.jsonl`."""
    parts = Path(path).relative_to(home).parts
    if len(parts) >= 4:
        return "/".join((parts[0], parts[1], parts[-1]))
    return "/".join(parts[:-1]) or parts[0]


def record_files(home: Path, skip: tuple[Path, ...] = ()) -> list[Path]:
    """Every JSONL, CSV, Parquet and Markdown file under `home` (the `skip` folders left out), in
    a stable order, each file once, as its real path. Symbolic links to files and folders are
    followed: the target is what holds the records and what gets rewritten (replacing the link
    would leave the target holding them). A link that leads outside `home` raises ErasureError
    naming it, before anything is changed: erasure writes nowhere but the home."""
    home = Path(os.path.realpath(home))
    skip = tuple(Path(os.path.realpath(s)) for s in skip)
    found: dict[Path, None] = {}
    folders: set[Path] = set()

    def walk(folder: Path) -> None:
        real = Path(os.path.realpath(folder))
        if real in folders or _under(real, skip):
            return
        folders.add(real)  # a link back to a folder already walked (a loop) is walked once
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            path = Path(entry.path)
            target = Path(os.path.realpath(path))
            is_dir = entry.is_dir()  # follows links; a dangling link is neither and holds nothing
            if not (is_dir or (entry.is_file() and entry.name.endswith(SUFFIXES) and not entry.name.startswith("."))):
                continue
            if entry.is_symlink() and not _under(target, (home,)):
                raise ErasureError(f"{path.relative_to(home)}: a symbolic link to outside $FT_PIPELINE_HOME; erasure "
                                   "writes only inside it: replace the link by the file it points to, or remove it")
            if is_dir:
                walk(path)
            elif not _under(target, skip):
                found.setdefault(target)

    walk(home)
    return list(found)


def _under(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == root or root in path.parents for root in roots)


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
