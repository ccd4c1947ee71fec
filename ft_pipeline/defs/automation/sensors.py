"""Retrain when new raw data lands: a local inbox folder and an S3 prefix, each with a cursor so
a file triggers one run, once."""
from __future__ import annotations

import hashlib
import json
import os

import dagster as dg

from ft_pipeline.core import paths
from ft_pipeline.defs.automation.jobs import retrain_job

DATA_SUFFIXES = (".jsonl", ".csv", ".parquet")


def inbox_dir() -> str:
    return os.environ.get("FT_PIPELINE_INBOX") or str(paths.raw_zone() / "inbox")


def _request(source: str, files: list[str]) -> dg.RunRequest:
    """One run over the whole source (all data, old and new), keyed by the new files it saw."""
    key = hashlib.sha256("\n".join(sorted(files)).encode()).hexdigest()[:16]
    return dg.RunRequest(
        run_key=f"new-data-{key}",
        run_config={"ops": {"raw_dataset": {"config": {"source": source}}}},
        tags={"ft_pipeline/trigger": "new_raw_data", "ft_pipeline/new_files": str(len(files))},
    )


@dg.sensor(job=retrain_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Retrains when new JSONL/CSV/Parquet files land in the raw-zone inbox ($FT_PIPELINE_INBOX).")
def new_raw_files_sensor(context: dg.SensorEvaluationContext):
    folder = inbox_dir()
    if not os.path.isdir(folder):
        return dg.SkipReason(f"inbox {folder} does not exist yet")
    seen = json.loads(context.cursor) if context.cursor else {}
    current = {
        entry.name: f"{entry.stat().st_mtime_ns}:{entry.stat().st_size}"
        for entry in os.scandir(folder)
        if entry.is_file() and entry.name.endswith(DATA_SUFFIXES) and not entry.name.startswith(".")
    }
    new = sorted(name for name, stamp in current.items() if seen.get(name) != stamp)
    if not new:
        return dg.SkipReason("no new or changed files")
    context.update_cursor(json.dumps(current, sort_keys=True))
    source = os.path.join(folder, "*.jsonl") if all(n.endswith(".jsonl") for n in current) else folder
    return _request(source, [f"{n}@{current[n]}" for n in new])


@dg.sensor(job=retrain_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Retrains when new objects land under $FT_PIPELINE_S3_INBOX (s3://bucket/prefix/).")
def new_s3_objects_sensor(context: dg.SensorEvaluationContext):
    uri = os.environ.get("FT_PIPELINE_S3_INBOX")
    if not uri:
        return dg.SkipReason("FT_PIPELINE_S3_INBOX is not set")
    import boto3

    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    seen = json.loads(context.cursor) if context.cursor else {}
    current = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(DATA_SUFFIXES):
                current[obj["Key"]] = obj["ETag"].strip('"')
    new = sorted(k for k, etag in current.items() if seen.get(k) != etag)
    if not new:
        return dg.SkipReason("no new or changed objects")
    context.update_cursor(json.dumps(current, sort_keys=True))
    return _request(uri if uri.endswith("/") else uri + "/", [f"{k}@{current[k]}" for k in new])


@dg.asset_sensor(asset_key=dg.AssetKey("raw_dataset"), job=retrain_job, minimum_interval_seconds=30,
                 default_status=dg.DefaultSensorStatus.RUNNING,
                 description="Retrains after `ft-pipeline forget` erased records from the raw zone.")
def erasure_retrain_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    tags = asset_event.asset_materialization.tags or {}
    request = tags.get("ft_pipeline/erasure")
    if not request:
        return dg.SkipReason("raw_dataset changed by a run, not by an erasure")
    return dg.RunRequest(run_key=f"erasure-{request}", tags={"ft_pipeline/trigger": "erasure", "ft_pipeline/erasure": request})
