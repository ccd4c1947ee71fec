"""A task file's sections (fit, gates, rollout, drift, redaction with fields, privacy and the
knowledge folder), each built once on load by the config class of the layer that reads it, so a
mistake in one stops the run before any work rather than at the asset that reads it, and every
stage reads the typed config the task holds (`task.sections`) instead of parsing its section again.
Kept out of config_mapping.py, which those config classes build on: config_mapping stays at the
bottom, this module sits above them."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ft_pipeline.core.data.redaction.config import RedactionConfig
    from ft_pipeline.core.fit.fit_config import FitConfig
    from ft_pipeline.core.evaluation.gate_config import GateConfig
    from ft_pipeline.core.release.rollout_config import DriftConfig, RolloutConfig
    from ft_pipeline.core.training.privacy import PrivacyConfig


@dataclass(frozen=True)
class TaskSections:
    """The task's sections as the stages read them, validated."""

    fit: FitConfig
    gates: GateConfig
    rollout: RolloutConfig
    drift: DriftConfig
    redaction: RedactionConfig  # the task's own redaction section with its `fields:`, no run knobs
    privacy: PrivacyConfig


def build_sections(task, fail) -> TaskSections:
    """fit:, gates:, rollout:, drift:, redaction: (with fields:) and privacy: built as their stages
    read them (a redaction glob that matches no file, a pattern that does not compile), and the
    knowledge folder present; `fail` (field, why) raises the task's TaskError."""
    # Imported here, not at the top: task.py imports this module, and these configs sit in layers
    # above it whose packages' __init__ (the redaction's: its redactor) need not be loaded to read a task.
    from ft_pipeline.core.fit.fit_config import FitConfig
    from ft_pipeline.core.evaluation.gate_config import GateConfig
    from ft_pipeline.core.release.rollout_config import DriftConfig, RolloutConfig

    where, lines = task.source_path or "task", task._lines
    knobs = {name: config.from_dict(getattr(task, name), where, lines) for name, config in (
        ("fit", FitConfig), ("gates", GateConfig), ("rollout", RolloutConfig), ("drift", DriftConfig))}
    sections = TaskSections(**knobs, redaction=_redaction(task, fail), privacy=_privacy(task, fail))
    if task.knowledge is not None and not Path(task.knowledge).is_dir():
        fail("knowledge", f"{task.knowledge}: no such folder (relative paths are read from the task file's folder)")
    return sections


def _redaction(task, fail) -> RedactionConfig:
    from ft_pipeline.core.data.redaction.config import RedactionConfig

    try:
        return RedactionConfig.from_task_section(task.redaction, fields=task.fields)
    except (TypeError, ValueError) as exc:  # "[redaction.]<key>: why" or "fields[.<name>]: why"
        field, _, why = str(exc).partition(": ")
        if why and field.split(".")[0] == "fields":  # the fields: section, checked by the redaction's config
            fail(field, why)
        if why and re.fullmatch(r"[\w.]+", field):
            fail(field if field.startswith("redaction.") else f"redaction.{field}", why)
        fail("redaction", str(exc))


def _privacy(task, fail) -> PrivacyConfig:
    """privacy: read as the trainer will read it, and refused for a method DP-SGD does not train."""
    from ft_pipeline.core.training.privacy import PrivacyConfig

    try:
        privacy = PrivacyConfig.from_value(task.privacy)
    except ValueError as exc:  # "TrainingConfig.privacy[.<key>=<value>]: why"
        match = re.fullmatch(r"TrainingConfig\.privacy(?:\.(\w+)=[^:]*)?: (.*)", str(exc))
        fail(f"privacy.{match[1]}" if match and match[1] else "privacy", match[2] if match else str(exc))
    if privacy.dp and task.method != "sft":
        fail("privacy.dp", f"DP-SGD is implemented for SFT only; this task trains {task.method}")
    return privacy
