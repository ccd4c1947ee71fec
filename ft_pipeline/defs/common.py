"""Small helpers every asset shares: where its files go, and the metadata a person reads."""
from __future__ import annotations

from pathlib import Path

import dagster as dg

from ft_pipeline.core import paths
from ft_pipeline.core.digest import sha256_dir, sha256_file


def run_dir(zone: str, asset: str, run_id: str) -> Path:
    """A fresh directory per run: `zone` is "raw" (unredacted text lives only there) or a
    working area such as "data", "models" or "reports" under $FT_PIPELINE_HOME."""
    path = run_dir_path(zone, asset, run_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_dir_path(zone: str, asset: str, run_id: str) -> Path:
    """Where run_dir puts a run's files, without creating anything."""
    base = paths.raw_zone() if zone == "raw" else paths.pipeline_home() / zone
    return base / asset / run_id


def file_metadata(path: Path) -> dict:
    path = Path(path)
    digest = sha256_dir(path) if path.is_dir() else sha256_file(path)
    return {"path": dg.MetadataValue.path(str(path)), "sha256": dg.MetadataValue.text(digest)}


def shape_preview(rows: list[dict], limit: int = 3) -> dg.MetadataValue:
    """The first rows' shape — fields, turns and their lengths — never their text or ids. The event
    log is append-only: a record shown there could not be erased (ft-pipeline forget) from it."""
    lines = ["| fields | turns (role: characters) |", "|---|---|"]
    for row in rows[:limit]:
        turns = row.get("messages") or [*row.get("prompt", []), *row.get("chosen", [])]
        shape = ", ".join(f"{t.get('role')}: {len(t.get('content') or '')}" for t in turns if isinstance(t, dict))
        lines.append(f"| {', '.join(sorted(row))} | {shape} |")
    return dg.MetadataValue.md("\n".join(lines))


def log_progress(context, what: str):
    """A progress callback that logs counts and rates to the run log every ~10% or 2,000 records."""
    import time

    start = time.monotonic()
    state = {"next": 0}

    def report(done: int, total: int | None = None) -> None:
        step = max(1, (total or 20_000) // 10)
        if done >= state["next"] or (total and done == total):
            rate = done / max(time.monotonic() - start, 1e-6)
            of = f"/{total}" if total else ""
            context.log.info(f"{what}: {done}{of} records, {rate:.3g} records/s")
            state["next"] = done + min(step, 2_000)

    return report


def task_config(task: dict):
    """The typed task (TaskConfig, its sections built) that the `task` asset's value names: core's
    loader reads and validates the file once per process, every later call is a lookup. A file
    changed or gone since the task asset read it fails the step in one line."""
    from ft_pipeline.core.task import TaskError
    from ft_pipeline.core.task_loader import load_task

    try:
        return load_task(task)
    except TaskError as exc:
        raise dg.Failure(description=str(exc)) from None


def task_metadata(task: dict) -> dict:
    """What every asset that read the task records: which task definition, by digest."""
    return {"task": task_config(task).name, "task_sha256": dg.MetadataValue.text(task["sha256"])}
