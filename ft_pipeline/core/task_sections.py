"""Every section of a task file checked on load (fit, gates, rollout, drift, redaction, fields,
privacy and the knowledge folder), each by the config class of the layer that reads it, so a mistake
in one stops the run before any work rather than at the asset that reads it. Kept out of knobs.py,
which those config classes build on: knobs.py stays at the bottom, this module sits above them."""
from __future__ import annotations

import re
from pathlib import Path

from ft_pipeline.core.task_file import TaskError


def check_sections(task, fail) -> None:
    """fit:, gates:, rollout: and redaction: parsed as their assets will parse them (a redaction glob that
    matches no file, a pattern that does not compile), and the knowledge folder present; `fail`
    (field, why) raises the task's TaskError."""
    # Imported here, not at the top: task.py imports this module, and these configs sit in layers
    # above it whose packages' __init__ (the redaction's: its redactor) need not be loaded to read a task.
    from ft_pipeline.core.data.redaction.config import RedactionConfig
    from ft_pipeline.core.release.fit_config import FitConfig
    from ft_pipeline.core.release.gate_config import GateConfig
    from ft_pipeline.core.release.rollout_config import DriftConfig, RolloutConfig

    for name, config in (("fit", FitConfig), ("gates", GateConfig), ("rollout", RolloutConfig), ("drift", DriftConfig)):
        try:
            config.from_dict(getattr(task, name))
        except TaskError as exc:
            fail(exc.field, exc.why)
    try:
        RedactionConfig.from_task_section(task.redaction)
    except (TypeError, ValueError) as exc:  # "[redaction.]<key>: why", e.g. "patterns.ACCT: regex ..."
        field, _, why = str(exc).partition(": ")
        if why and re.fullmatch(r"[\w.]+", field):
            fail(field if field.startswith("redaction.") else f"redaction.{field}", why)
        fail("redaction", str(exc))
    from ft_pipeline.core.data.redaction.fields import check_fields

    try:
        check_fields(task.fields)
    except ValueError as exc:  # "fields[.<name>]: why"
        fail(*str(exc).split(": ", 1))
    check_privacy(task, fail)
    if task.knowledge is not None and not Path(task.knowledge).is_dir():
        fail("knowledge", f"{task.knowledge}: no such folder (relative paths are read from the task file's folder)")


def check_privacy(task, fail) -> None:
    """privacy: read as the trainer will read it, and refused for a method DP-SGD does not train."""
    from ft_pipeline.core.training.privacy import PrivacyConfig

    try:
        privacy = PrivacyConfig.from_value(task.privacy)
    except ValueError as exc:  # "TrainingConfig.privacy[.<key>=<value>]: why"
        match = re.fullmatch(r"TrainingConfig\.privacy(?:\.(\w+)=[^:]*)?: (.*)", str(exc))
        fail(f"privacy.{match[1]}" if match and match[1] else "privacy", match[2] if match else str(exc))
    if privacy.dp and task.method != "sft":
        fail("privacy.dp", f"DP-SGD is implemented for SFT only; this task trains {task.method}")
