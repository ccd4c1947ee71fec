"""The `task` asset's value back to its TaskConfig. The value Dagster stores between assets is plain
data, the task file's path and sha256 (the erasure scan reads stored values with an unpickler that
refuses every global, core/erasure/stored_values.py); each stage asks `load_task` for the typed
task, and the file is read and validated once per process for each digest: every later caller in
that process gets the same object, without reading the file again."""
from __future__ import annotations

import hashlib
from pathlib import Path

from ft_pipeline.core.task import TaskConfig
from ft_pipeline.core.task_file import TaskError, read_task_bytes, read_task_file

CACHED = 16  # task definitions kept per process; a run reads one
_LOADED: dict[tuple[str, str], TaskConfig] = {}  # (path, sha256 of the bytes read) -> the task they hold


def read_task(path: Path | str) -> tuple[TaskConfig, str]:
    """The task file at `path`, validated, and the sha256 of the very bytes it was parsed from
    (what lineage records): the task asset's read, which later `load_task` calls reuse."""
    data = read_task_bytes(Path(path))
    digest = hashlib.sha256(data).hexdigest()
    return _remember(str(path), digest, data), digest


def load_task(value: dict) -> TaskConfig:
    """The TaskConfig the `task` asset's value names ({"path", "sha256", ...}). Read-only: every
    stage in this process shares it. A file changed since the task asset read it is refused rather
    than read as it is now, since the lineage records the digest the asset saw."""
    path, digest = str(value["path"]), str(value["sha256"])
    task = _LOADED.get((path, digest))
    if task is None:  # a process that has not read it yet: a step process of its own, a later run
        data = read_task_bytes(Path(path))
        if hashlib.sha256(data).hexdigest() != digest:
            raise TaskError(path, "(file)", f"changed since the task asset read it (sha256 {digest[:12]}...); "
                                            "materialize the task asset again")
        task = _remember(path, digest, data)
    return task


def _remember(path: str, digest: str, data: bytes) -> TaskConfig:
    content, where, lines = read_task_file(Path(path), data)
    task = TaskConfig.from_dict(content, where, lines)
    while len(_LOADED) >= CACHED:
        _LOADED.pop(next(iter(_LOADED)))
    _LOADED[(path, digest)] = task
    return task
