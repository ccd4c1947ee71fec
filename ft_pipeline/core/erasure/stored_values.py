"""The values assets pass each other, as the IO managers store them (pickles), read without running them.

A pickle is a small program: loading one calls whatever functions it names (`os.system`,
`builtins.exec`), so `pickle.loads` on the files under an instance's storage would run whatever a
crafted file holds — in a planning step that promises to change nothing. The values this pipeline
stores are plain data (dicts, lists, strings, numbers: defs/resources.py ValueIOManager), which
pickle rebuilds from its opcodes alone, without naming a single function. So the reader here
refuses every name a pickle asks for: a file that asks for one is an ErasureError naming the file,
and nothing it names is ever called.
"""
from __future__ import annotations

import csv
import io
import json
import os
import pickle
from pathlib import Path
from typing import Iterator

from ft_pipeline.core.erasure.copies import ErasureError, scrub_value

PICKLE_START = b"\x80"  # every pickle of protocol 2 or later opens with the PROTO opcode


class _DataOnly(pickle.Unpickler):
    """An unpickler for plain data. Every way a pickle reaches code — GLOBAL, STACK_GLOBAL, INST,
    OBJ and the copyreg extension codes — goes through find_class, which refuses them all; a
    persistent id is refused by the base class (no persistent_load is given)."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"it names {module}.{name}")


def load_data(data: bytes) -> object:
    """A stored value rebuilt without calling anything it names; UnpicklingError when it names something."""
    return _DataOnly(io.BytesIO(data)).load()


def scrub_bytes(data: bytes, name: str, ids: set[str]) -> tuple[bytes | None, int]:
    """A stored object's bytes without the erased records: (new bytes or None if unchanged, count).
    Pickles (the values Dagster's IO managers store) are read as plain data, scrubbed and pickled
    again; JSONL and CSV by their name. Raises ErasureError, naming `name`, for a pickle that
    cannot be read or that names a function (reading it would run that function)."""
    if data.startswith(PICKLE_START):
        try:
            value = load_data(data)
        except pickle.UnpicklingError as exc:
            if str(exc).startswith("it names "):
                raise ErasureError(f"{name}: stored value refused, {exc} (loading it would run code; "
                                   "the pipeline stores plain data only): remove or replace the file") from None
            raise ErasureError(f"{name}: stored value cannot be read (UnpicklingError)") from None
        except Exception as exc:  # a truncated or corrupt object
            raise ErasureError(f"{name}: stored value cannot be read ({type(exc).__name__})") from None
        scrubbed, removed = scrub_value(value, ids)
        return (pickle.dumps(scrubbed), removed) if removed else (None, 0)
    if name.endswith(".jsonl"):
        lines = data.decode("utf-8", errors="surrogateescape").splitlines(keepends=True)
        kept = [line for line in lines if _row_id(line) not in ids]
        removed = len(lines) - len(kept)
        return ("".join(kept).encode("utf-8", errors="surrogateescape"), removed) if removed else (None, 0)
    if name.endswith(".csv"):
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
        kept = [r for r in rows if r.get("id") not in ids]
        if len(kept) == len(rows):
            return None, 0
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(kept)
        return out.getvalue().encode("utf-8"), len(rows) - len(kept)
    return None, 0


def _row_id(line: str) -> str | None:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return None
    return str(obj.get("id")) if isinstance(obj, dict) else None


def stored_values(root: Path) -> Iterator[Path]:
    """Every pickled value under an IO manager's directory (compute logs and the like are skipped)."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder, name)
            with open(path, "rb") as fh:
                if fh.read(1) == PICKLE_START:
                    yield path


def scrub_stored_value(path: Path, ids: set[str], write: bool = False, root: Path | None = None) -> int:
    """Erased ids held by one pickled value file; with `write`, it is replaced atomically without
    them. Errors name the file as `<root's name>/<path under root>` when `root` is given."""
    name = str(Path(root.name, path.relative_to(root))) if root is not None else path.name
    new, removed = scrub_bytes(path.read_bytes(), name, ids)
    if write and new is not None:
        tmp = path.with_name(f".{path.name}.erasure.tmp")
        with open(tmp, "wb") as fh:
            fh.write(new)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    return removed
