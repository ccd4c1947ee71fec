"""Every task file we ship in configs/tasks/ loads, survives a to_yaml/from_yaml round trip
unchanged, and says in its header how to run it. No dataset is needed: the files are read alone."""
from __future__ import annotations

from pathlib import Path

import pytest

from ft_pipeline.core.task import TaskConfig

TASKS_DIR = Path(__file__).resolve().parents[2] / "configs" / "tasks"
TASK_FILES = sorted(TASKS_DIR.glob("*.yaml"))


def test_task_files_are_found():
    # Guards against an empty parametrization passing silently if the folder moves.
    assert len(TASK_FILES) >= 4, TASK_FILES


@pytest.mark.parametrize("path", TASK_FILES, ids=lambda p: p.name)
def test_task_file_round_trips(path: Path, tmp_path: Path):
    task = TaskConfig.from_yaml(path)
    copy = tmp_path / path.name
    task.to_yaml(copy)
    again = TaskConfig.from_yaml(copy)
    first, second = task.to_dict(), again.to_dict()
    assert first.pop("source_path") == str(path) and second.pop("source_path") == str(copy)
    assert second == first
    assert again.sha256() == task.sha256()


@pytest.mark.parametrize("path", TASK_FILES, ids=lambda p: p.name)
def test_task_file_header_says_how_to_run_it(path: Path):
    header = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    assert any("ft-pipeline run" in line or "make demo" in line for line in header), path.name
