"""Checkpoints of a DP-SGD run (dp.py), so that a killed run resumes instead of starting over.

Which checkpoints may be resumed is decided as for every run (checkpoints.prepare_checkpoints:
same config fingerprint, same training data); this module writes and reads one checkpoint.

A checkpoint-N folder holds state.pt (LoRA weights, optimizer and scheduler state, RNG states)
and trainer_state.json, written last, so checkpoints.last_complete_checkpoint takes a folder as
complete exactly as for trl's checkpoints. The folder is built as checkpoint-N.partial and renamed
into place: a kill while saving leaves no checkpoint-N that looks complete, and what it leaves
still matches checkpoint-*, the pattern erasure deletes a run's checkpoints by.

What resuming must restore for the privacy claim to hold:
- The accountant's history (noise multiplier, sample rate, steps): a resumed run that restarted
  it would report the epsilon of the steps since the resume only, under-reporting what was spent.
- The RNG states (the global torch generator, CUDA's, and the Poisson sampler's and the noise's
  own generators where Opacus was given one): restarting from the seed would replay the first
  steps' draws and noise, steps the accountant takes as independent.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

STATE = "state.pt"
TRAINER_STATE = "trainer_state.json"  # the name last_complete_checkpoint reads: written last


def snapshot(model, optimizer, scheduler, generators: dict) -> dict:
    """The tensors of a checkpoint: trainable (LoRA) weights only, the frozen base is on disk."""
    import torch

    rng = {"torch": torch.get_rng_state(),
           "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
           **{name: g.get_state() for name, g in generators.items() if g is not None}}
    return {"lora": {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad},
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng}


def save(ckpt_dir: Path, step: int, tensors: dict, state: dict, keep: int) -> Path:
    import torch

    final, partial = ckpt_dir / f"checkpoint-{step}", ckpt_dir / f"checkpoint-{step}.partial"
    for stale in ckpt_dir.glob("checkpoint-*.partial"):  # left by a kill while saving
        shutil.rmtree(stale, ignore_errors=True)
    partial.mkdir(parents=True)
    torch.save(tensors, partial / STATE)
    (partial / TRAINER_STATE).write_text(json.dumps(state), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    older = sorted((int(p.name.rsplit("-", 1)[1]), p) for p in ckpt_dir.glob("checkpoint-*")
                   if p.name.rsplit("-", 1)[1].isdigit() and p != final)
    for _, path in older[:max(len(older) - max(keep, 1) + 1, 0)]:
        shutil.rmtree(path, ignore_errors=True)
    return final


def load(path: str | Path) -> tuple[dict, dict]:
    """(tensors, trainer state) of a complete checkpoint. weights_only: a checkpoint folder is
    data, never code to run."""
    import torch

    path = Path(path)
    state = json.loads((path / TRAINER_STATE).read_text(encoding="utf-8"))
    return torch.load(path / STATE, weights_only=True), state


def restore_training(tensors: dict, model, optimizer, scheduler) -> None:
    import torch

    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if params.keys() != tensors["lora"].keys():
        raise ValueError("checkpoint does not hold this run's LoRA weights")  # the fingerprint should rule it out
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(tensors["lora"][name])
    optimizer.load_state_dict(tensors["optimizer"])
    scheduler.load_state_dict(tensors["scheduler"])


def restore_rng(rng: dict, generators: dict) -> None:
    """Call after the data loader's iterator exists: creating one draws a seed from the sampler's
    generator, a draw the uninterrupted run made long before this step."""
    import torch

    torch.set_rng_state(rng["torch"])
    if rng["cuda"]:
        torch.cuda.set_rng_state_all(rng["cuda"])
    for name, generator in generators.items():
        if generator is not None and name in rng:
            generator.set_state(rng[name])


def restore_accountant(accountant, history: list) -> None:
    """The history as saved: entries of (noise multiplier, sample rate, steps)."""
    accountant.history = [tuple(entry) for entry in history]
