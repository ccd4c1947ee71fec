"""The layout a newcomer reads is the layout on disk: every module is named in the README's Layout
section, modules stay small enough to read in one sitting, and core/ stays free of Dagster."""
from __future__ import annotations

import re

import pytest

from ft_pipeline_tests.conftest import REPO

PACKAGE = REPO / "ft_pipeline"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")
MAX_LINES = 320  # "about 300": a module past this is doing two jobs


def layout_block() -> str:
    block = re.search(r"## Layout\s+```\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    assert block, "README.md lost its Layout block"
    return block.group(1)


def test_the_readme_layout_names_every_module():
    words = set(re.findall(r"[\w.]+", layout_block()))
    missing = [str(p.relative_to(REPO)) for p in MODULES if p.stem not in words and p.name not in words]
    assert missing == []


def test_every_package_folder_says_what_lives_there():
    silent = [str(p.relative_to(REPO)) for p in PACKAGE.rglob("__init__.py")
              if p.parent != PACKAGE and not p.read_text().lstrip().startswith('"""')]
    assert silent == []


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_readable(module):
    assert len(module.read_text().splitlines()) <= MAX_LINES


def test_core_does_not_import_dagster():
    """core/ is plain Python that a notebook or another orchestrator can call (the trainer's side of
    Dagster Pipes, dagster_pipes, is a small standalone package and allowed)."""
    importing = [str(p.relative_to(REPO)) for p in (PACKAGE / "core").rglob("*.py")
                 if re.search(r"^\s*(import|from) dagster\b(?!_)", p.read_text(), re.M)]
    assert importing == []
