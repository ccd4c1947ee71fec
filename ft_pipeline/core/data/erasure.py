"""Right to erasure: remove a person's records from the raw zone and keep them out for good.

- The suppression list (raw zone, since it holds identifying values) is what ingestion consults,
  so a retrain from the original source cannot bring an erased record back.
- The erasure log (outside the raw zone) is what auditors see: request id, time and counts, and
  sha256 digests of the removed record ids, never the values that identified them.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ft_pipeline.core import paths
from ft_pipeline.core.jsonl import atomic_text


def suppression_path() -> Path:
    return paths.raw_zone() / "erasure" / "suppressed.jsonl"


def log_path() -> Path:
    return paths.pipeline_home() / "audit" / "erasures.jsonl"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _strings(obj) -> Iterable[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)


@dataclass
class Suppression:
    ids: set[str] = field(default_factory=set)
    values: list[str] = field(default_factory=list)  # casefolded

    @classmethod
    def load(cls) -> "Suppression":
        suppression = cls()
        path = suppression_path()
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                if entry["kind"] == "id":
                    suppression.ids.add(entry["value"])
                else:
                    suppression.values.append(entry["value"].casefold())
        return suppression

    def __bool__(self) -> bool:
        return bool(self.ids or self.values)

    def matches(self, obj) -> bool:
        """A record (or a quarantine entry, or a raw line) that names a suppressed id or value."""
        if isinstance(obj, dict):
            if str(obj.get("id")) in self.ids:
                return True
            raw = obj.get("raw")
            if isinstance(raw, str) and raw.lstrip().startswith("{"):
                try:
                    if str(json.loads(raw).get("id")) in self.ids:
                        return True
                except (json.JSONDecodeError, AttributeError):
                    pass
        if not self.values:
            return False
        return any(value in text.casefold() for text in _strings(obj) for value in self.values)


def forget(ids: Iterable[str] = (), values: Iterable[str] = ()) -> dict:
    """Removes every raw-zone line matching `ids` or containing `values`; returns counts only."""
    ids, values = [str(i) for i in ids if str(i)], [v for v in values if v.strip()]
    if not ids and not values:
        raise ValueError("forget needs at least one record id or identifying value")
    request_id = uuid.uuid4().hex[:12]
    suppression_path().parent.mkdir(parents=True, exist_ok=True)
    with open(suppression_path(), "a", encoding="utf-8") as fh:
        for kind, items in (("id", ids), ("value", values)):
            for item in items:
                fh.write(json.dumps({"request_id": request_id, "kind": kind, "value": item}) + "\n")
    suppression = Suppression(set(ids), [v.casefold() for v in values])
    removed_ids: list[str] = []
    rewritten: list[str] = []
    for path in sorted(paths.raw_zone().rglob("*.jsonl")):
        if path.parent == suppression_path().parent:
            continue
        kept, dropped = _filter(path, suppression)
        if dropped:
            with atomic_text(path) as fh:
                fh.writelines(kept)
            rewritten.append(str(path))
            removed_ids.extend(dropped)
    entry = {
        "request_id": request_id,
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "records_removed": len(removed_ids),
        "files_rewritten": len(rewritten),
        "criteria": {"ids": len(ids), "values": len(values)},
        "removed_id_digests": sorted({digest(i) for i in removed_ids}),
    }
    log_path().parent.mkdir(parents=True, exist_ok=True)
    with open(log_path(), "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
    return {**entry, "rewritten_paths": rewritten}  # raw-zone paths (no record content): not logged


def _filter(path: Path, suppression: Suppression) -> tuple[list[str], list[str]]:
    kept, dropped = [], []
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                obj = line
            if suppression.matches(obj):
                dropped.append(str(obj.get("id", "")) if isinstance(obj, dict) else "")
            else:
                kept.append(line)
    return kept, dropped


def erasure_log() -> list[dict]:
    path = log_path()
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
