"""Which model versions saw an erased record, and what erasure does to them.

A version's training data is kept as digests: training_ids.json beside its weights holds the
export's sha256 and the sorted keyed digests (core/digest.py) of every record id the trainer read.
Digests, because the registry outlives the data and must answer "did this model see that person?"
without holding ids; keyed, because a plain hash of an id is reversed by enumerating ids.
A version whose training digests meet an erasure request's is marked (erasure.json, a notice in
its card); with `retire`, its weights are deleted and its card and lineage kept. Its lineage.json
is scrubbed of the erased ids and digests whatever it held them in.
"""
from __future__ import annotations

import json
from pathlib import Path

from ft_pipeline.core.digest import sha256_dir
from ft_pipeline.core.erasure.copies import remove_tree, scrub_value
from ft_pipeline.core.jsonl import atomic_text
from ft_pipeline.core.release import model_card, registry
from ft_pipeline.core.training.manifest import read_training_manifest, training_manifest

WEIGHTS = ("adapter", "merged")
CARD = "MODEL_CARD.md"
LINEAGE = "lineage.json"


def trained_on(version_dir: Path) -> set[str] | None:
    """The version's training digests; for a version promoted before they were kept, read from its
    export if that still holds the bytes its lineage recorded; None when neither can tell."""
    manifest = read_training_manifest(version_dir)
    if manifest is not None:
        return set(manifest["trained_on"])
    try:
        lineage = registry.read_manifest(version_dir)
        export = next(a for a in lineage["assets"] if a["asset"] == "jsonl_export" and a.get("materialized"))
        path = Path(export["metadata"]["path"])
    except (OSError, ValueError, KeyError, StopIteration):
        return None
    if not path.is_dir() or sha256_dir(path) != export.get("sha256"):
        return None
    return set(training_manifest(path, lineage.get("training", {}).get("method") or "sft")["trained_on"])


def plan(registry_root: Path, digests: set[str], retire: bool = False) -> tuple[list[dict], list[str]]:
    """(versions an erasure of `digests` must still mark or retire, versions whose training data
    cannot be established). A version already marked for these digests is left out: a repeated
    request has nothing to do there."""
    todo, unknown = [], []
    for name in registry.model_names(registry_root):
        current = registry.current_version(registry_root, name)
        for version in registry.versions(registry_root, name):
            version_dir = registry.model_root(registry_root, name) / version
            seen = trained_on(version_dir)
            if seen is None:
                unknown.append(f"{name}/{version}")
                continue
            hits = sorted(seen & digests)
            marks = registry.erasure_marks(version_dir) or {"requests": []}
            new = sorted(set(hits) - {d for r in marks["requests"] for d in r["digests"]})
            weights = any((version_dir / w).exists() for w in WEIGHTS)
            if new or (hits and retire and weights):
                todo.append({"name": name, "version": version, "hits": new, "records": len(hits),
                             "current": version == current})
    return todo, unknown


def mark(registry_root: Path, target: dict, request_id: str, at: str, retire: bool) -> None:
    """Records the request in the version's erasure.json and card, and with `retire` deletes its
    weights. Safe to repeat: the request is recorded once, the card re-rendered, deletion resumed."""
    version_dir = registry.model_root(registry_root, target["name"]) / target["version"]
    marks = registry.erasure_marks(version_dir) or {"requests": [], "retired_at": None}
    if target["hits"] and request_id not in {r["request_id"] for r in marks["requests"]}:
        marks["requests"].append({"request_id": request_id, "at": at, "records": len(target["hits"]),
                                  "digests": target["hits"]})
    if retire and not marks.get("retired_at"):
        marks["retired_at"] = at
    with atomic_text(version_dir / registry.MARKS) as fh:
        json.dump(marks, fh, indent=1)
    card = version_dir / CARD
    text = card.read_text() if card.is_file() else f"# Model card — {target['name']} {target['version']}\n"
    with atomic_text(card) as fh:
        fh.write(model_card.with_erasure_notice(text, marks))
    if marks.get("retired_at"):  # intent recorded first: a crash mid-deletion resumes on the rerun
        for weights in WEIGHTS:
            remove_tree(version_dir / weights)


def tainted_current(registry_root: Path, erased: set[str], names: list[str] | None = None) -> list[dict]:
    """The `current` versions that are marked, or whose training digests meet `erased`: each
    {name, version, requests, retired}."""
    found = []
    for name in names if names is not None else registry.model_names(registry_root):
        version = registry.current_version(registry_root, name)
        if version is None:
            continue
        version_dir = registry.model_root(registry_root, name) / version
        marks = registry.erasure_marks(version_dir)
        seen = trained_on(version_dir) or set()
        if marks or seen & erased:
            found.append({"name": name, "version": version,
                          "requests": [r["request_id"] for r in (marks or {}).get("requests", [])],
                          "retired": bool((marks or {}).get("retired_at"))})
    return found


def lineage_plan(registry_root: Path, ids: set[str]) -> list[dict]:
    """The versions whose lineage.json holds an erased id or digest (`ids`, as copies outside the
    raw zone hold them): {name, version, records}. The lineage is frozen at promotion and is kept
    when a version is retired, so it must not keep what the data no longer does."""
    found = []
    for name in registry.model_names(registry_root):
        for version in registry.versions(registry_root, name):
            path = registry.model_root(registry_root, name) / version / LINEAGE
            if path.is_file():
                _, removed = scrub_value(json.loads(path.read_text()), ids)
                if removed:
                    found.append({"name": name, "version": version, "records": removed})
    return found


def scrub_lineage(registry_root: Path, target: dict, ids: set[str]) -> None:
    """Rewrites the version's lineage.json without the erased ids, atomically; a lineage already
    scrubbed (the rerun after a crash) is left as it is."""
    path = registry.model_root(registry_root, target["name"]) / target["version"] / LINEAGE
    if not path.is_file():
        return
    scrubbed, removed = scrub_value(json.loads(path.read_text()), ids)
    if removed:
        with atomic_text(path) as fh:
            fh.write(json.dumps(scrubbed, indent=2, default=str))
