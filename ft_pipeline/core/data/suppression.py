"""The erasure state the lower layers consult: the suppression list (raw zone, since it names
what identified people) that ingestion filters by, the lock that orders data-writing steps against
a forget, and the erasure log's digests that promotion checks a model's training data against.
`core/erasure/` writes all three; nothing here knows how a request is carried out."""
from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ft_pipeline.core import paths


def erasure_dir() -> Path:
    return paths.raw_zone() / "erasure"


def suppression_path() -> Path:
    return erasure_dir() / "suppressed.jsonl"


def log_path() -> Path:
    return paths.pipeline_home() / "audit" / "erasures.jsonl"


def _strings(obj) -> Iterable[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)


def record_id(obj) -> str | None:
    """The id of a record, or of the line a quarantine entry kept as it came (`raw`)."""
    if not isinstance(obj, dict):
        return None
    if obj.get("id") is not None:
        return str(obj["id"])
    raw = obj.get("raw")
    if isinstance(raw, str) and raw.lstrip().startswith("{"):
        try:
            inner = json.loads(raw)
        except json.JSONDecodeError:
            return None
        return str(inner["id"]) if isinstance(inner, dict) and inner.get("id") is not None else None
    return None


@dataclass
class Suppression:
    ids: set[str] = field(default_factory=set)
    values: list[str] = field(default_factory=list)  # casefolded

    @classmethod
    def load(cls) -> "Suppression":
        suppression = cls()
        for entry in suppression_entries():
            if entry["kind"] == "id":
                suppression.ids.add(entry["value"])
            else:
                suppression.values.append(entry["value"].casefold())
        return suppression

    def __bool__(self) -> bool:
        return bool(self.ids or self.values)

    def matches(self, obj) -> bool:
        """A record (or a quarantine entry, or a raw line) that names a suppressed id or value."""
        if record_id(obj) in self.ids:
            return True
        if not self.values:
            return False
        return any(value in text.casefold() for text in _strings(obj) for value in self.values)


def suppression_entries() -> list[dict]:
    path = suppression_path()
    return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()] if path.exists() else []


@contextmanager
def erasure_lock(shared: bool = False):
    """A forget holds it alone; the steps that write record data (ingest, redaction, export) hold
    it shared, so a forget waits for them and they wait for it: an ingest that read the
    suppression list before a forget began can no longer write the records it erased after the
    forget has scanned for copies. Promotion holds it alone while it checks its training data
    against the erasures. The kernel drops it when a killed process dies."""
    erasure_dir().mkdir(parents=True, exist_ok=True)
    with open(erasure_dir() / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def erasure_log() -> list[dict]:
    path = log_path()
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def erased_digests() -> set[str]:
    """Digests of every record id any erasure request covered."""
    return {d for entry in erasure_log() for d in entry.get("removed_id_digests", [])}
