"""Task-file sections of knobs (`fit:`, `gates:`, `rollout:`): one dataclass each, checked the same way.

A bad value raises the section's KnobError naming `<section>.<knob>`; `from_mapping` turns it, and
an unknown key, into the TaskError that names the task file. `check_sections` checks every
section of a task file on load (fit, gates, redaction and the knowledge folder), so a mistake in
one stops the run before any work rather than at the asset that reads it.
"""
from __future__ import annotations

import dataclasses
import re


class KnobError(ValueError):
    section = "knobs"

    def __init__(self, name: str, why: str):
        self.field, self.why = f"{self.section}.{name}", why
        super().__init__(f"{self.field}: {why}")


def check_types(obj, error: type[KnobError]) -> None:
    """bool knobs are true/false, numbers are numbers (not booleans), ints are whole (and stored as int)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.type == "bool" and not isinstance(value, bool):
            raise error(f.name, f"{value!r} must be true or false")
        if f.type in ("int", "float") and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise error(f.name, f"{value!r} is not a number")
        if f.type == "int":
            if not float(value).is_integer():
                raise error(f.name, f"{value!r} must be a whole number")
            setattr(obj, f.name, int(value))


def from_mapping(cls, data: dict | None, where: str, error: type[KnobError]):
    """`cls(**data)`; a bad or unknown key raises TaskError naming `<section>.<key>` in `where`."""
    from ft_pipeline.core.task import TaskError

    known = {f.name for f in dataclasses.fields(cls)}
    for key in data or {}:
        if key not in known:
            raise TaskError(where, f"{error.section}.{key}",
                            f"is not a {error.section} setting; known: " + ", ".join(sorted(known)))
    try:
        return cls(**(data or {}))
    except KnobError as exc:
        raise TaskError(where, exc.field, exc.why) from None


def check_sections(task, fail) -> None:
    """fit:, gates:, rollout: and redaction: parsed as their assets will parse them (a redaction glob that
    matches no file, a pattern that does not compile), and the knowledge folder present; `fail`
    (field, why) raises the task's TaskError."""
    from pathlib import Path

    from ft_pipeline.core.data.redaction.config import RedactionConfig
    from ft_pipeline.core.release.fit_config import FitConfig
    from ft_pipeline.core.release.gates import GateConfig
    from ft_pipeline.core.release.rollout_config import DriftConfig, RolloutConfig
    from ft_pipeline.core.task import TaskError

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
