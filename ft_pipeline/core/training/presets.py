"""Which training preset a run uses, and the TrainingConfig it makes with the task's privacy.

A preset is a TrainingConfig YAML (configs/presets/; relative paths are read from the repo root).
Without one, the bundled model's CPU preset for the method. The `training_plan` resource, `ft-pipeline
run`'s up-front check and the fit assessment's cost estimate all go through here, so the estimate is
of the run that will happen.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ft_pipeline.core import paths
from ft_pipeline.core.training.config import TrainingConfig

PRESETS_DIR = "configs/presets"


def preset_path(preset: str, method: str) -> Path:
    """The preset file: `preset` when given, else smollm2-cpu-<method>.yaml."""
    if preset:
        return paths.repo_relative(preset)
    return paths.REPO_ROOT / PRESETS_DIR / f"smollm2-cpu-{method}.yaml"


def training_config(preset: str, method: str, task_method: str, *, max_steps: int = 0,
                    privacy: dict | None = None) -> TrainingConfig:
    """The run's TrainingConfig: the preset (for `method`, else the task's), its step count
    overridden when max_steps > 0, the task file's `privacy:` over the preset's. A user's mistake
    (no such preset, a method the preset does not train, DP for DPO) is a ValueError naming the
    file and the field."""
    path = preset_path(preset, method or task_method)
    try:
        config = TrainingConfig.from_yaml(path)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such training preset") from None
    if method and config.method != method:
        raise ValueError(f"{path}: field method: the preset trains {config.method}, but {method} was asked for")
    if max_steps:
        config.max_steps = max_steps
    if privacy:
        try:
            config = dataclasses.replace(config, privacy={**dataclasses.asdict(config.privacy), **privacy})
        except ValueError as exc:
            raise ValueError(f"{path} with the task file's privacy: {exc}") from None
    return config
