"""What one training run read, as digests: training_ids.json beside the adapter (and, once
promoted, beside the registry version) holds the export's sha256 and the sorted keyed digests
(core/digest.py) of every record id the trainer read. Digests, because the registry outlives the
data and must answer "did this model see that person?" without holding ids; keyed, because a
plain hash of an id is reversed by enumerating ids. core/erasure reads it to mark models."""
from __future__ import annotations

import json
from pathlib import Path

from ft_pipeline.core.digest import TRAINED, keyed_digest, sha256_dir
from ft_pipeline.core.jsonl import atomic_text, iter_jsonl
from ft_pipeline.core.paths import home_relative

TRAINING_IDS = "training_ids.json"


def training_manifest(export_dir: Path, method: str, init_adapter: str | None = None) -> dict:
    """The training data of one run as digests: every row of the export files the trainer reads
    for `method` (train and eval), plus what the adapter it continued (init_adapter) was trained on."""
    from ft_pipeline.core.training.data import CHAT_FILES, PREFERENCE_FILES

    files = PREFERENCE_FILES if method == "dpo" else CHAT_FILES
    export_dir = Path(export_dir)
    digests: set[str] = set()
    rows = {}
    for split in ("train", "eval"):
        path = export_dir / files[split]
        ids = [str(row["id"]) for row in iter_jsonl(path)] if path.is_file() else []
        rows[files[split]] = len(ids)
        digests.update(keyed_digest(i, TRAINED) for i in ids)
    parent = read_training_manifest(home_relative(init_adapter)) if init_adapter else None
    if parent:
        digests.update(parent["trained_on"])
    return {"export_sha256": sha256_dir(export_dir), "method": method, "rows": rows,
            "continued_from": parent["export_sha256"] if parent else None, "trained_on": sorted(digests)}


def write_training_manifest(directory: Path, manifest: dict) -> Path:
    path = Path(directory) / TRAINING_IDS
    with atomic_text(path) as fh:
        json.dump(manifest, fh, indent=1)
    return path


def read_training_manifest(directory: Path) -> dict | None:
    path = Path(directory) / TRAINING_IDS
    return json.loads(path.read_text()) if path.is_file() else None
