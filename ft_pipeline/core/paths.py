"""Where the pipeline writes: FT_PIPELINE_HOME (default <repo>/var) and its raw zone."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def pipeline_home() -> Path:
    """Every file the pipeline writes lives under this directory (read at call time, so tests
    and the CLI can point it elsewhere with the environment variable)."""
    env = os.environ.get("FT_PIPELINE_HOME")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "var"


def raw_zone() -> Path:
    """The only place allowed to hold unredacted text: the raw copy and the quarantine."""
    return pipeline_home() / "raw"


def home_relative(location: str) -> Path:
    """A path as the pipeline reads it: absolute, or relative to $FT_PIPELINE_HOME (where
    `ft-pipeline train` writes adapters/<preset name>, the init_adapter a preset continues)."""
    path = Path(location).expanduser()
    return path if path.is_absolute() else pipeline_home() / path


def repo_relative(location: str | Path) -> Path:
    """A file a user names (a task file, a training preset): absolute, or relative to the repo root,
    wherever the command runs from."""
    path = Path(location).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def datasets_cache() -> Path:
    """Where the trainer's datasets library keeps its Arrow copies of the training rows: under the
    pipeline's home, so erasure can reach them (the library's default is ~/.cache)."""
    return pipeline_home() / "cache" / "datasets"
