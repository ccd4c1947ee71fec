"""The Dagster instance the CLI opens, in one place, so a fresh DAGSTER_HOME's storage is made once.

Two `ft-pipeline` processes that open a new DAGSTER_HOME at the same moment (two runs and a `forget`
started together) both create its SQLite databases and both stamp their schema version: alembic then
finds two heads ("Version table 'alembic_version' has more than one head present") and that process
fails. Opening under an exclusive lock on a file in DAGSTER_HOME makes the first opening create the
storage alone; later openings find it made and wait only for each other's few milliseconds.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

import dagster as dg

from ft_pipeline.core import paths

LOCK = ".instance.lock"


def dagster_home() -> Path:
    """DAGSTER_HOME, the repo root when unset (where dagster.yaml and workspace.yaml are)."""
    return Path(os.environ.setdefault("DAGSTER_HOME", str(paths.REPO_ROOT)))


def open_instance() -> dg.DagsterInstance:
    """DagsterInstance.get(), its storage created by one process at a time."""
    with open(dagster_home() / LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        return dg.DagsterInstance.get()
