"""What the erasure end-to-end tests share: a promoted demo with its values on (moto's) S3, copies
of that state for each scenario, searches for a record, and a state that can be compared across
request ids and times."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

import boto3
import dagster as dg

from ft_pipeline.core.jsonl import iter_jsonl

ISO = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00")


def s3_defs():
    """The project's definitions with the IO manager FT_PIPELINE_S3_BUCKET selects now (the
    imported `defs` chose theirs when first imported)."""
    from ft_pipeline.definitions import defs
    from ft_pipeline.defs.resources import io_manager

    return dg.Definitions(assets=defs.assets, asset_checks=defs.asset_checks, jobs=defs.jobs, sensors=defs.sensors,
                          schedules=defs.schedules, resources={**defs.resources, "io_manager": io_manager()})


def s3_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint)


def versions(s3, bucket: str) -> dict[str, list[dict]]:
    """Every object version, oldest first per key."""
    found: dict[str, list[dict]] = defaultdict(list)
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            found[v["Key"]].append(v)
    return {key: list(reversed(vs)) for key, vs in sorted(found.items())}


def bodies(s3, bucket: str) -> dict[str, list[bytes]]:
    return {key: [s3.get_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])["Body"].read() for v in vs]
            for key, vs in versions(s3, bucket).items()}


def copy_bucket(s3, source: str, target: str) -> None:
    """A versioned copy: every version of every object, in the order they were written."""
    s3.create_bucket(Bucket=target)
    s3.put_bucket_versioning(Bucket=target, VersioningConfiguration={"Status": "Enabled"})
    for key, stored in bodies(s3, source).items():
        for body in stored:
            s3.put_object(Bucket=target, Key=key, Body=body)


def copy_state(source: Path, target: Path, s3, source_bucket: str, target_bucket: str) -> None:
    for folder in ("ft_home", "dh"):
        shutil.copytree(source / folder, target / folder, symlinks=True)
    copy_bucket(s3, source_bucket, target_bucket)


def training_target(home: Path) -> tuple[str, str, str]:
    """(raw id, the keyed digest it has outside the raw zone, redacted user text) of the first
    training record whose text is plain (no quotes, escapes or line breaks, so every file format
    stores it as it is) and unique."""
    from ft_pipeline.core.digest import keyed_digest

    export = sorted((home / "data" / "jsonl_export").glob("*/train.jsonl"))[-1]
    redacted = [r for p in (home / "data" / "redacted_dataset").glob("*/redacted.jsonl") for r in iter_jsonl(p)]
    raw_ids = {keyed_digest(r["id"]): r["id"] for p in (home / "raw" / "raw_dataset").glob("*/records.jsonl")
               for r in iter_jsonl(p)}
    for row in iter_jsonl(export):
        text = next(m["content"] for m in row["messages"] if m["role"] == "user")
        if text.isascii() and not set(text) & set('"\\\n') and sum(text in json.dumps(r) for r in redacted) == 1:
            return raw_ids[row["id"]], row["id"], text
    raise AssertionError("no training record with plain, unique text in the export")


def files_holding(base: Path, needles: list[str], skip: Path | None = None) -> list[str]:
    """Relative paths of the files under `base` (except under `skip`) holding any needle."""
    found = []
    for path in sorted(base.rglob("*")):
        if path.is_file() and not (skip and skip in path.parents):
            data = path.read_bytes()
            if any(n.encode() in data for n in needles):
                found.append(str(path.relative_to(base)))
    return found


def s3_holding(s3, bucket: str, needles: list[str]) -> list[str]:
    return [f"{key}@{i}" for key, stored in bodies(s3, bucket).items() for i, body in enumerate(stored)
            if any(n.encode() in body for n in needles)]


def event_log_holding(instance, needles: list[str]) -> list[str]:
    """Event-log entries (every run's, and those reported outside runs) holding any needle."""
    entries = [e for run in instance.get_runs() for e in instance.all_logs(run.run_id)] + list(instance.all_logs(""))
    return [str(e.dagster_event_type) for e in entries if any(n in str(e) for n in needles)]


def erasure_events(instance) -> dict:
    """What erasure told Dagster: the tagged raw_dataset events and the reported check evaluations."""
    raw = instance.fetch_materializations(dg.AssetKey("raw_dataset"), limit=1000).records
    checks = [e for e in instance.all_logs("") if e.dagster_event and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"]
    return {
        "stale_sources": sorted(r.asset_materialization.partition for r in raw
                                if (r.asset_materialization.tags or {}).get("ft_pipeline/erasure")),
        "failed_checks": sorted(e.dagster_event.event_specific_data.check_name for e in checks
                                if not e.dagster_event.event_specific_data.passed),
    }


def normalised_state(root: Path, s3, bucket: str, request_id: str) -> dict:
    """Every file under the home and every object version in the bucket, as digests, with the
    request id, times, the scenario's folder and bucket replaced by placeholders."""
    def norm(data: bytes) -> str:
        for own, placeholder in ((request_id, b"<request>"), (str(root), b"<root>"), (f'"{bucket}"', b"<bucket>")):
            data = data.replace(own.encode(), placeholder)
        data = ISO.sub(b"<at>", data)
        return hashlib.sha256(data).hexdigest()

    home = root / "ft_home"
    # MLflow's SQLite bytes differ run to run (timestamps, page layout): its state is compared as
    # the tags MLflow answers with instead.
    files = {str(p.relative_to(home)).replace(request_id, "<request>"): norm(p.read_bytes())
             for p in sorted(home.rglob("*")) if p.is_file() and p.name not in (".lock", "mlflow.db")}
    objects = {key: [norm(b) for b in stored] for key, stored in bodies(s3, bucket).items()}
    return {"files": files, "s3": objects, "mlflow": mlflow_tags(home, request_id)}


def mlflow_weights(home: Path) -> set[str]:
    """The adapter files MLflow lists for the training runs of the default store under `home`. A
    copied store keeps its artifact location, so a copy lists (and deletes) the original's."""
    from ft_pipeline_tests.defs import mlflow_helpers as mh

    mlflow = mh.client(f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
    return {f.path for r in mh.training_runs(mlflow) for f in mlflow.list_artifacts(r.info.run_id, "adapter")}


def mlflow_tags(home: Path, request_id: str) -> dict:
    """The tags of every model version and training run in the default MLflow store, request id
    and times as placeholders."""
    from ft_pipeline_tests.defs import mlflow_helpers as mh

    mlflow = mh.client(f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
    norm = lambda tags: {k: ISO.sub(b"<at>", v.replace(request_id, "<request>").encode()).decode()
                         for k, v in tags.items() if k not in ("mlflow.runName", "mlflow.user")}
    versions = {f"version {mv.version}": norm(mv.tags) for mv in mlflow.search_model_versions(f"name = '{mh.NAME}'")}
    runs = {f"run {r.data.tags['ft_pipeline.run_key']}": norm(r.data.tags) for r in mh.training_runs(mlflow)}
    return {**versions, **runs}
