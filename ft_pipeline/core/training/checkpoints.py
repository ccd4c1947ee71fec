"""Checkpoints and final files of a training run: resume only from checkpoints of the same config,
only from a complete one, and move the finished adapter in so that metrics.json, written last,
means "complete"."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ft_pipeline.core.training.config import TrainingConfig, _atomic_write

RUN_FILE = "run.json"  # in checkpoints/: which config the checkpoints belong to
OPTIONAL_FILES = ("privacy.json",)  # written by some runs only (DP): never left behind by another run


def prepare_checkpoints(ckpt_dir: Path, config: TrainingConfig, is_main: bool,
                        data_digest: str = "") -> tuple[str | None, str | None]:
    """(the checkpoint to resume from, why the checkpoints on disk were not resumed). Checkpoints
    are resumed only when they belong to the same training config (method, base model and
    hyperparameters among it) and the same training data: resuming a run on changed data trained
    on a mix and recorded only the last data as what it trained on."""
    run_file = ckpt_dir / RUN_FILE
    fingerprint = config.fingerprint()
    why = None
    if ckpt_dir.is_dir():
        recorded = _read_run_file(run_file)
        if recorded.get("fingerprint") == fingerprint and recorded.get("data") == data_digest:
            resume = last_complete_checkpoint(ckpt_dir)
            if is_main:
                _drop_incomplete(ckpt_dir, resume)
            return resume, None
        if any(ckpt_dir.glob("checkpoint-*")):  # the trainer creates the folder before any checkpoint
            why = ("the training data changed" if recorded.get("fingerprint") == fingerprint
                   else "the training config changed" if recorded else "they carry no record of their run")
        if is_main:  # checkpoints of another run cannot be resumed: start over
            shutil.rmtree(ckpt_dir)
    if is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(run_file, json.dumps({"fingerprint": fingerprint, "data": data_digest,
                                            "config": config.to_dict()}))
    return None, why


def _read_run_file(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _drop_incomplete(ckpt_dir: Path, resume: str | None) -> None:
    """Removes the checkpoint folders a kill left incomplete (no trainer_state.json, saved last).
    transformers rotates checkpoints by folder mtime, and a folder a kill left half-deleted has a
    fresh one: the next rotation kept that empty folder and deleted the last complete checkpoint
    before the newest instead (seen in attack/test_kill_trainer.py: checkpoint-6 empty, -10 gone)."""
    for path in ckpt_dir.glob("checkpoint-*"):
        if path.is_dir() and str(path) != resume and not _complete(path):
            shutil.rmtree(path, ignore_errors=True)


def last_complete_checkpoint(ckpt_dir: Path) -> str | None:
    """Newest checkpoint-N whose trainer_state.json (saved last) is readable: a run killed while
    saving leaves a folder without it, and resuming from that would crash."""
    steps = [(int(path.name.rsplit("-", 1)[1]), path) for path in ckpt_dir.glob("checkpoint-*") if _complete(path)]
    return str(max(steps)[1]) if steps else None


def _complete(path: Path) -> bool:
    try:
        json.loads((path / "trainer_state.json").read_text())
        int(path.name.rsplit("-", 1)[1])
        return True
    except (OSError, ValueError):
        return False


def write_outputs(trainer, tokenizer, config: TrainingConfig, metrics: dict, output_dir: Path,
                  extra_files: dict[str, str] | None = None) -> None:
    partial = output_dir / ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    trainer.model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    config.to_yaml(partial / "training_config.yaml")
    for name, text in (extra_files or {}).items():
        (partial / name).write_text(text, encoding="utf-8")
    (partial / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    # A non-DP rerun into a DP run's folder must not keep a privacy.json that no longer holds.
    for name in OPTIONAL_FILES:
        if not (partial / name).exists():
            (output_dir / name).unlink(missing_ok=True)
    # metrics.json last: a reader that sees it can trust every other file is the new one. The old
    # one goes first, so a run killed half-way through the swap leaves new weights beside no
    # metrics.json, never beside the last run's (which a reader would take as complete).
    (output_dir / "metrics.json").unlink(missing_ok=True)
    for item in sorted(partial.iterdir(), key=lambda p: p.name == "metrics.json"):
        target = output_dir / item.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(item, target)
    partial.rmdir()
