"""Task-file sections of knobs (`fit:`, `gates:`, `rollout:`): one dataclass each, checked the same way.

A bad value raises the section's KnobError naming `<section>.<knob>`; `from_mapping` turns it, and
an unknown key, into the TaskError that names the task file. The sections themselves are checked on
load by core/task_sections.py.
"""
from __future__ import annotations

import dataclasses

from ft_pipeline.core.task_file import TaskError


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
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data or {}:
        if key not in known:
            raise TaskError(where, f"{error.section}.{key}",
                            f"is not a {error.section} setting; known: " + ", ".join(sorted(known)))
    try:
        return cls(**(data or {}))
    except KnobError as exc:
        raise TaskError(where, exc.field, exc.why) from None
