"""Where tracking goes, and the queue that keeps a run going when it cannot get there.

The store is MLFLOW_TRACKING_URI when set (a tracking server), else a SQLite database at
$FT_PIPELINE_HOME/mlflow/mlflow.db with artifacts beside it: nothing to start. Every call is an
operation (a name and a JSON payload). When the store cannot be reached, the operation is written
to $FT_PIPELINE_HOME/mlflow/pending/ and the caller gets a warning; the next call that reaches the
store sends the pending ones first, in order, so a release is never mirrored before its run.
An operation the store refuses while reachable (a bug, not an outage) is moved to pending/failed/
with the error, so it cannot block the queue behind it.
"""
from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

from ft_pipeline.core import paths
from ft_pipeline.core.jsonl import atomic_text

Warn = Callable[[str], None]
_log = logging.getLogger(__name__)
# name -> "module:function(client, payload, uri)"; names are what the pending files hold.
OPS = {
    "log_training": "ft_pipeline.core.tracking.runs:log_training",
    "log_evaluation": "ft_pipeline.core.tracking.runs:log_evaluation",
    "register_release": "ft_pipeline.core.tracking.models:register_release",
    "set_alias": "ft_pipeline.core.tracking.models:set_alias",
    "mark_erased": "ft_pipeline.core.tracking.models:mark_erased",
}
# MLflow's HTTP client retries 7 times with backoff by default (minutes against a closed port):
# the probe gives up at once, an operation after a couple of tries. A user's own settings win.
PROBE_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
# MLflow also prints a "View run" link to stdout, where `ft-pipeline` prints its JSON result.
OP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
          "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


def mlflow_dir() -> Path:
    return paths.pipeline_home() / "mlflow"


def pending_dir() -> Path:
    return mlflow_dir() / "pending"


def default_uri() -> str:
    return f"sqlite:///{mlflow_dir() / 'mlflow.db'}"


def tracking_uri(explicit: str | None = None) -> str:
    """The configured URI, else MLFLOW_TRACKING_URI, else the SQLite store under FT_PIPELINE_HOME."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or default_uri()


def enabled() -> bool:
    """FT_PIPELINE_MLFLOW=off turns the mirror off (the file registry works the same without it)."""
    return os.environ.get("FT_PIPELINE_MLFLOW", "on").strip().lower() not in ("off", "0", "false", "no")


def in_use(uri: str | None = None) -> bool:
    """Whether there is a store to mirror into: on, and not a default store that was never created."""
    uri = tracking_uri(uri)
    return enabled() and (not is_default_store(uri) or (mlflow_dir() / "mlflow.db").exists() or bool(_pending()))


def is_default_store(uri: str) -> bool:
    return uri == default_uri()


def shown(uri: str) -> str:
    """The URI without user:password, for warnings."""
    parts = urlsplit(uri)
    if parts.password or parts.username:
        return urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")))
    return uri


def client(uri: str):
    from mlflow import MlflowClient

    if is_default_store(uri):
        mlflow_dir().mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def submit(op: str, payload: dict, *, uri: str | None = None, warn: Warn = _log.warning) -> bool:
    """Sends the pending operations, then this one; True when this one reached the store. An
    unreachable store queues it (and warns); nothing here raises for MLflow's sake."""
    if op not in OPS:
        raise ValueError(f"unknown tracking operation {op!r}")
    uri = tracking_uri(uri)
    try:
        entry = json.loads(json.dumps({"op": op, "payload": payload, "queued_at": time.time()}, default=str))
        with _locked():
            problem = _probe(uri) or _drain(uri, warn)
            if problem is None:
                problem, done = _run(entry, uri, warn)
                if problem is None:
                    return done
            _enqueue(entry)
    except Exception as exc:  # noqa: BLE001 - a full disk, a bug here: the pipeline goes on regardless
        warn(f"MLflow tracking skipped {op}: {_one_line(exc)}")
        return False
    warn(f"MLflow tracking at {shown(uri)} is unreachable ({problem}); {op} is queued in {pending_dir()} "
         f"({len(_pending())} pending) and will be sent on the next contact")
    return False


def flush(*, uri: str | None = None, warn: Warn = _log.warning) -> int:
    """Sends what is pending; returns how many operations are still pending."""
    uri = tracking_uri(uri)
    with _locked():
        problem = _probe(uri) or _drain(uri, warn)
        if problem:
            warn(f"MLflow tracking at {shown(uri)} is unreachable ({problem}); {len(_pending())} operations stay queued")
        return len(_pending())


def _pending() -> list[Path]:
    folder = pending_dir()
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def _enqueue(entry: dict) -> None:
    name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:6]}-{entry['op']}.json"
    with atomic_text(pending_dir() / name) as fh:
        json.dump(entry, fh)


def _drain(uri: str, warn: Warn) -> str | None:
    for path in _pending():
        problem, _ = _run(json.loads(path.read_text()), uri, warn, path)
        if problem:
            return problem
        path.unlink(missing_ok=True)
    return None


def _run(entry: dict, uri: str, warn: Warn, path: Path | None = None) -> tuple[str | None, bool]:
    """(why the store is unreachable, or None; whether the operation was carried out)."""
    module, name = OPS[entry["op"]].split(":")
    try:
        with _env(OP_ENV):
            getattr(importlib.import_module(module), name)(client(uri), entry["payload"], uri)
        return None, True
    except Exception as exc:  # noqa: BLE001 - tracking must never fail the pipeline
        problem = _probe(uri)
        if problem:
            return problem, False
        failed = pending_dir() / "failed" / (path.name if path else f"{time.time_ns():020d}-{entry['op']}.json")
        with atomic_text(failed) as fh:
            json.dump({**entry, "error": _one_line(exc)}, fh)
        warn(f"MLflow refused {entry['op']} ({_one_line(exc)}); kept in {failed}")
        return None, False


def _probe(uri: str) -> str | None:
    """None when the store answers, else why not, in one line."""
    try:
        with _env(PROBE_ENV):
            client(uri).search_experiments(max_results=1)
        return None
    except Exception as exc:  # noqa: BLE001
        return _one_line(exc)


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


@contextlib.contextmanager
def _env(values: dict):
    """The given MLflow settings for the block, unless the user set them."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


@contextlib.contextmanager
def _locked():
    """One sender at a time (runs, the CLI): a pending operation is sent once, in order."""
    pending_dir().mkdir(parents=True, exist_ok=True)
    with open(pending_dir() / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield
