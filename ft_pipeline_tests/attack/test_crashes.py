"""A crash at any point of writing the trainer's outputs leaves nothing a later step accepts as
complete but inconsistent. metrics.json marks a complete output; a run whose files are swapped
in one by one must not leave new weights beside the previous run's metrics.json."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ft_pipeline.core.training import checkpoints
from ft_pipeline.core.training.config import TrainingConfig


class _Saves:
    """What write_outputs asks of a trainer's model and of a tokenizer: save_pretrained(folder)."""

    def __init__(self, files: dict[str, str]):
        self.files = files

    def save_pretrained(self, folder):
        for name, text in self.files.items():
            (Path(folder) / name).write_text(text)


class _Trainer:
    def __init__(self, rank: int):
        self.model = _Saves({"adapter_config.json": json.dumps({"r": rank}), "adapter_model.safetensors": f"w{rank}"})


def _write(output_dir: Path, rank: int) -> None:
    config = TrainingConfig(base_model="tiny", lora_rank=rank)
    checkpoints.write_outputs(_Trainer(rank), _Saves({"tokenizer.json": "{}"}), config, {"lora_rank": rank}, output_dir)


def _accepted_and_consistent(output_dir: Path) -> bool | None:
    """None when no output is complete (a later step refuses it); else whether every file is the
    same run's."""
    metrics = output_dir / "metrics.json"
    if not metrics.is_file():
        return None
    rank = json.loads(metrics.read_text())["lora_rank"]
    return (json.loads((output_dir / "adapter_config.json").read_text())["r"] == rank
            and (output_dir / "adapter_model.safetensors").read_text() == f"w{rank}"
            and TrainingConfig.from_yaml(output_dir / "training_config.yaml").lora_rank == rank)


@pytest.mark.parametrize("crash_after", range(6))
def test_a_crash_mid_swap_leaves_no_accepted_mix(tmp_path, monkeypatch, crash_after):
    out = tmp_path / "out"
    _write(out, rank=4)  # a complete earlier run
    assert _accepted_and_consistent(out) is True
    real_replace, calls = os.replace, []

    def crashing_replace(src, dst):
        if len(calls) == crash_after:
            raise KeyboardInterrupt("killed")  # the process dies here
        calls.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(checkpoints.os, "replace", crashing_replace)
    with pytest.raises(KeyboardInterrupt):
        _write(out, rank=8)
    monkeypatch.undo()
    assert _accepted_and_consistent(out) is not False  # refused, or entirely one run's
    _write(out, rank=8)  # the rerun completes
    assert _accepted_and_consistent(out) is True
