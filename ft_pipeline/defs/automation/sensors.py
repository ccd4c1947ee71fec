"""Retrain when new raw data lands: a local inbox folder and an S3 prefix, each with a cursor so
a file triggers its runs once.

A new file becomes a raw_files partition and gets its own ingest_source run (ingest, redact,
gate); files landing together are redacted by parallel runs. sources_ready_sensor then requests
one retrain once every partition's latest redaction has passed its gates, when the redacted data
differs from what the latest adapter was trained on.
"""
from __future__ import annotations

import hashlib
import json
import os

import dagster as dg

from ft_pipeline.core import paths
from ft_pipeline.defs.automation.jobs import ingest_job, retrain_job
from ft_pipeline.defs.data.partitions import RAW_FILES, partition_key_for

DATA_SUFFIXES = (".jsonl", ".csv", ".parquet")


def inbox_dir() -> str:
    return os.environ.get("FT_PIPELINE_INBOX") or str(paths.raw_zone() / "inbox")


def _no_task(context: dg.SensorEvaluationContext) -> dg.SkipReason | None:
    """Ingestion maps columns with the task: until one is declared, new files wait (the cursor
    does not move, so they are picked up on the first tick after)."""
    from ft_pipeline.defs.gates import latest_materialization

    if latest_materialization(context.instance, dg.AssetKey("task")) is None:
        return dg.SkipReason("no task declared yet: materialize the `task` asset (your task file) first")
    return None


def _ingest_new(context: dg.SensorEvaluationContext, new: dict[str, str], trigger: str) -> dg.SensorResult:
    """Registers each new location as a partition (under an alias when its name holds PII) and
    requests its ingest run, keyed by its version."""
    new = {partition_key_for(location): stamp for location, stamp in new.items()}
    known = set(context.instance.get_dynamic_partitions(RAW_FILES.name))
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"ingest-{hashlib.sha256(f'{key}@{stamp}'.encode()).hexdigest()[:16]}",
                partition_key=key,
                tags={"ft_pipeline/trigger": trigger},
            )
            for key, stamp in sorted(new.items())
        ],
        dynamic_partitions_requests=[RAW_FILES.build_add_request(sorted(set(new) - known))] if set(new) - known else [],
    )


@dg.sensor(job=ingest_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Ingests and redacts each new JSONL/CSV/Parquet file in the raw-zone inbox ($FT_PIPELINE_INBOX), one run per file.")
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
    new = {os.path.join(folder, n): stamp for n, stamp in current.items() if seen.get(n) != stamp}
    if not new:
        return dg.SkipReason("no new or changed files")
    if skip := _no_task(context):
        return skip
    context.update_cursor(json.dumps(current, sort_keys=True))
    return _ingest_new(context, new, "new_raw_data")


@dg.sensor(job=ingest_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Ingests and redacts each new object under $FT_PIPELINE_S3_INBOX (s3://bucket/prefix/), one run per object.")
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
    new = {f"s3://{bucket}/{k}": etag for k, etag in current.items() if seen.get(k) != etag}
    if not new:
        return dg.SkipReason("no new or changed objects")
    if skip := _no_task(context):
        return skip
    context.update_cursor(json.dumps(current, sort_keys=True))
    return _ingest_new(context, new, "new_raw_data")


@dg.sensor(job=retrain_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Retrains once every source partition's latest redaction has passed its gates and the "
                       "redacted data differs from what the latest adapter_weights trained on.")
def sources_ready_sensor(context: dg.SensorEvaluationContext):
    """The rule is defs/automation/trained_data.py's; the cursor holds the redacted data of the last
    request, so a change is retrained once, whether or not that retrain got as far as training."""
    from ft_pipeline.defs.automation.trained_data import fingerprint, redacted_now, redacted_trained_on
    from ft_pipeline.defs.gates import gate_status

    now = redacted_now(context.instance)
    if not any(now.values()):
        return dg.SkipReason("no source redacted yet")
    if redacted_trained_on(context.instance) == now:
        return dg.SkipReason("the latest adapter_weights trained on exactly the sources' latest redactions")
    change = fingerprint(now)
    if context.cursor == change:
        return dg.SkipReason("a retrain on the sources' latest redactions was already requested")
    graph = context.repository_def.asset_graph
    gates = [k for k in graph.asset_check_keys if k.asset_key == dg.AssetKey("redacted_dataset")]
    failed = [s for s in gate_status(context.instance, gates, graph) if not s["passed"]]
    if failed:  # a partition still redacting, or one that failed its gates: wait (the UI shows which)
        return dg.SkipReason("waiting on source gates: " + "; ".join(f"{s['gate']} ({s['why']})" for s in failed))
    context.update_cursor(change)
    return dg.RunRequest(run_key=f"sources-{change[:16]}", tags={"ft_pipeline/trigger": "sources_ready"})


@dg.sensor(job=ingest_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Re-ingests and re-redacts each source `ft-pipeline forget` erased records from; sources_ready_sensor then retrains.")
def erasure_retrain_sensor(context: dg.SensorEvaluationContext):
    after = int(context.cursor) if context.cursor else None
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("raw_dataset"), after_storage_id=after), limit=1000, ascending=True,
    ).records
    if not records:
        return dg.SkipReason("no new raw_dataset events")
    requests = []
    for record in records:
        materialization = record.asset_materialization
        request = (materialization.tags or {}).get("ft_pipeline/erasure")
        if request:  # written by `ft-pipeline forget`, one per source partition it rewrote
            requests.append(dg.RunRequest(
                run_key=f"erasure-{request}-{materialization.partition}", partition_key=materialization.partition,
                tags={"ft_pipeline/trigger": "erasure", "ft_pipeline/erasure": request},
            ))
    context.update_cursor(str(records[-1].storage_id))
    return requests or dg.SkipReason("raw_dataset changed by runs, not by an erasure")
