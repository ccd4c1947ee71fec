"""Adapters and checkpoints trained on an erased record, wherever a run left them under the home.

A training run's folder (`models/adapter_weights/<run>`, `adapters/<preset>`, or wherever
`ft-pipeline train --output` pointed inside the home) is recognised by its training_ids.json
(core/training/manifest.py); adapter_weights writes it before training starts, so a run killed
half-way is recognised too. Its checkpoints (`checkpoints/checkpoint-*`, core/training/checkpoints.py)
carry no manifest of their own: they are judged by their run's. A checkpoint folder whose run has
no manifest (a killed `ft-pipeline train`, which writes it only on success, or an older run) cannot
be judged, and a checkpoint is only a resume point, so every erasure deletes it: the run starts
over rather than keep a record it might hold. Registry versions are not deleted here (marks.py marks or
retires them), nor MLflow's copies (core/tracking mirrors the marks).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from ft_pipeline.core.erasure.copies import remove_tree
from ft_pipeline.core.training.checkpoints import RUN_FILE
from ft_pipeline.core.training.manifest import TRAINING_IDS, read_training_manifest

SKIP = ("raw", "registry", "mlflow")  # no adapter in the raw zone; the other two have their own eraser
CHECKPOINTS = "checkpoints"


def _folders(home: Path) -> Iterator[Path]:
    """Every folder under the home outside SKIP; dot-folders (a `.partial` swap, an `.erasing-*`
    deletion a journal resumes) are left to the code that made them."""
    for folder, dirs, _ in os.walk(home):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (here == home and d in SKIP))
        yield here


def checkpoints_of(run: Path) -> list[Path]:
    """The run's checkpoint-N folders (the trainer's output_dir is `<run>/checkpoints`)."""
    return sorted(p for p in (run / CHECKPOINTS).glob("checkpoint-*") if p.is_dir())


def plan(home: Path, digests: set[str]) -> dict:
    """{adapters: [{path, records, checkpoints}], checkpoints: [path]}: the run folders whose
    training digests meet `digests`, and the checkpoints no manifest vouches for; paths relative to
    the home. Nothing is changed."""
    adapters, orphans = [], []
    for folder in _folders(home):
        if (folder / TRAINING_IDS).is_file():
            manifest = read_training_manifest(folder) or {}
            hits = set(manifest.get("trained_on", [])) & digests
            if hits:
                adapters.append({"path": _rel(folder, home), "records": len(hits),
                                 "checkpoints": [_rel(c, home) for c in checkpoints_of(folder)]})
        elif folder.name == CHECKPOINTS and (folder / RUN_FILE).is_file() and not (folder.parent / TRAINING_IDS).is_file():
            orphans += [_rel(c, home) for c in checkpoints_of(folder.parent)]
    return {"adapters": adapters, "checkpoints": orphans}


def delete(home: Path, planned: dict) -> None:
    """Deletes what `plan` found. remove_tree renames before it deletes, so a crash leaves either
    the folder or an `.erasing-*` one, which the rerun of the request removes."""
    for path in planned["checkpoints"]:
        remove_tree(home / path)
    for adapter in planned["adapters"]:
        remove_tree(home / adapter["path"])


def summary(planned: dict) -> dict:
    return {"adapters_deleted": [a["path"] for a in planned["adapters"]],
            "checkpoints_deleted": sorted([c for a in planned["adapters"] for c in a["checkpoints"]] + planned["checkpoints"]),
            "checkpoints_unverifiable": list(planned["checkpoints"])}


def _rel(path: Path, home: Path) -> str:
    return Path(path).relative_to(home).as_posix()
