"""A task-file section as a dataclass (`fit:`, `gates:`, `gates.memorization:`, `rollout:`, `drift:`),
read from its mapping one way: `Section.from_dict`.

A section's `__post_init__` checks its own knobs and raises its SettingError naming
`<section>.<knob>`; `from_mapping` turns that, an unknown key, or an error of a section nested in
it into the one-line TaskError naming the task file, the line and the field. Lines come from the
load that read the file (task_file.read_task_file), passed in, never kept in a module global.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from ft_pipeline.core.task_file import TaskError, line_for


class SettingError(ValueError):
    """A bad knob of one section; `section` (a class attribute of each section's subclass) prefixes its name."""

    section = "settings"

    def __init__(self, name: str, why: str):
        self.field, self.why = f"{self.section}.{name}", why
        super().__init__(f"{self.field}: {why}")


def check_types(obj, error: type[SettingError]) -> None:
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


def from_mapping(cls, data: dict | None, where: str = "task", lines: dict[str, int] | None = None):
    """`cls(**data)` for a section dataclass whose `error` is its SettingError; a bad or unknown key
    raises TaskError naming `<section>.<key>` in `where`, at its line in `lines` when known."""
    section = cls.error.section

    def fail(name: str, why: str):
        raise TaskError(where, name, why, line_for(lines, name)) from None

    if data is not None and not isinstance(data, dict):
        fail(section, "must be a mapping")
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data or {}:
        if key not in known:
            fail(f"{section}.{key}", f"is not a {section} setting; known: " + ", ".join(sorted(known)))
    try:
        return cls(**(data or {}))
    except SettingError as exc:
        fail(exc.field, exc.why)
    except TaskError as exc:  # a section nested in this one (gates.memorization), read without the file
        fail(exc.field, exc.why)


class Section:
    """Base of a section dataclass: `error` is its SettingError subclass (which names the section)."""

    error: ClassVar[type[SettingError]] = SettingError

    @classmethod
    def from_dict(cls, data: dict | None = None, where: str = "task", lines: dict[str, int] | None = None):
        """From the task's mapping of this section; a bad or unknown key raises TaskError naming
        `<section>.<key>` in `where`."""
        return from_mapping(cls, data, where, lines)
