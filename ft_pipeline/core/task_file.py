"""Reading a task file: YAML with the line of every top-level key kept, so that an error names
the file, the line and the field (`TaskError`), and relative paths read from the file's folder."""
from __future__ import annotations

import os
from pathlib import Path

from ft_pipeline.core import paths, safe_yaml
from ft_pipeline.errors import UserError


class TaskError(UserError, ValueError):
    """A bad task file: one line naming the file, the line where known, and the field."""

    def __init__(self, where: str, field_name: str, why: str, line: int | None = None):
        self.where, self.field, self.why, self.line = where, field_name, why, line
        at = f"{where} line {line}" if line else where
        super().__init__(f"{at}: field {field_name}: {why}")


def read_task_bytes(path: Path) -> bytes:
    """The task file's bytes (what its sha256 is taken of), refused in one line when it is not one."""
    where = str(path)
    if not path.is_file():
        raise TaskError(where, "(file)", "no such task file" if not path.exists() else "is not a file")
    if path.stat().st_size > safe_yaml.MAX_BYTES:
        raise TaskError(where, "(file)", f"is over {safe_yaml.MAX_BYTES // 1024} KiB: not a task file")
    return path.read_bytes()


def read_task_file(path: Path, data: bytes | None = None) -> tuple[dict, str, dict[str, int]]:
    """(the file's mapping, with relative paths resolved; where, for errors; the line of each key).
    `data`: the file's bytes when the caller already read them (to digest the bytes it parses).
    The lines are this load's own, passed on explicitly, so two loads never see each other's."""
    import yaml

    where = str(path)
    try:
        text = (read_task_bytes(path) if data is None else data).decode("utf-8")
    except UnicodeDecodeError:
        raise TaskError(where, "(file)", "is not UTF-8 text") from None
    try:
        loaded, node = safe_yaml.load(text)
    except safe_yaml.YamlLimitError as exc:
        raise TaskError(where, "(yaml)", exc.why, exc.line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise TaskError(where, "(yaml)", f"invalid YAML ({getattr(exc, 'problem', None) or exc})",
                        mark.line + 1 if mark is not None else None) from None
    if isinstance(loaded, dict):
        loaded = _resolve_paths(loaded, path.parent)
    return (loaded if loaded is not None else {}), where, key_lines(node)


def line_for(lines: dict[str, int] | None, name: str) -> int | None:
    """The line of field `name` ("key", "key.sub" or deeper) in a load's `lines`: the key one level
    down when the file gives it its own line, else the top-level key's."""
    lines = lines or {}
    top, _, rest = name.partition(".")
    sub = f"{top}.{rest.split('.')[0]}" if rest else None
    return (lines.get(sub) if sub else None) or lines.get(top)


def key_lines(node) -> dict[str, int]:
    """{"key": line, "key.sub": line} of a loaded YAML document's top two levels of keys."""
    import yaml

    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                lines[str(key.value)] = key.start_mark.line + 1
                for sub, _ in value.value if isinstance(value, yaml.MappingNode) else ():
                    if isinstance(sub, yaml.ScalarNode):
                        lines[f"{key.value}.{sub.value}"] = sub.start_mark.line + 1
    return lines


def number(value, name: str, fail) -> float:
    """YAML 1.1 reads `8e-1` or `1e5` (no dot) as text; a person means a number."""
    from ft_pipeline.core.numbers import parse_number

    if isinstance(value, bool):
        fail(name, "must be a number, not true/false")
    number = parse_number(value)
    if number is None:
        fail(name, f"{value!r} is not a number")
    return number


def _resolve_paths(data: dict, base: Path) -> dict:
    data = dict(data)

    def resolve(value):
        if not isinstance(value, str) or not value or value.startswith("s3://"):
            return value
        expanded = os.path.expanduser(value)
        return expanded if os.path.isabs(expanded) else str((base / expanded).resolve())

    if data.get("knowledge"):
        data["knowledge"] = resolve(data["knowledge"])
    if isinstance(data.get("redaction"), dict) and data["redaction"].get("protected_documents"):
        data["redaction"] = {**data["redaction"], "protected_documents": resolve(data["redaction"]["protected_documents"])}
    return data


def check_columns(task, available: list[str], source: str) -> None:
    """A column the task maps from must exist in the source: raised before anything is read further."""
    missing = [c for c in task.columns if c not in available]
    if missing:
        shown = ", ".join(available[:12]) + (" ..." if len(available) > 12 else "")
        raise TaskError(task.source_path or "task", f"columns.{missing[0]}",
                        f"the source {source} has no column {missing[0]!r} (it has: {shown or 'none'})",
                        task.line("columns"))


DEMO_TASK = "configs/tasks/demo-triage.yaml"


def default_task_path() -> str:
    """The task a run reads when none is named: $FT_PIPELINE_TASK, else the demo's."""
    return os.environ.get("FT_PIPELINE_TASK") or DEMO_TASK


def task_path(location: str) -> Path:
    """Where a named task file is: absolute, or relative to the repo root (the `task` asset's config,
    `ft-pipeline run --task`, the registry commands' --task all read it the same way)."""
    return paths.repo_relative(location)
