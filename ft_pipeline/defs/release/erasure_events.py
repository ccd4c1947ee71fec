"""What `ft-pipeline forget` tells Dagster, so that the UI and the sensors see an erasure.

- Each source partition whose raw copy lost records gets a new raw_dataset event, tagged with the
  request: everything downstream turns stale, and erasure_retrain_sensor re-ingests that source.
- When `current` was trained on an erased record, the promoted_model check fails in the UI until
  a retrain promotes a clean version (the check passes again when that run evaluates it).
Both are safe to repeat: a resumed request finds its own events and adds none.
"""
from __future__ import annotations

from pathlib import Path

import dagster as dg

from ft_pipeline.defs.common import run_dir_path
from ft_pipeline.defs.data.partitions import RAW_FILES
from ft_pipeline.defs.release.checks import current_model_not_trained_on_erased_data, erasure_verdict
from ft_pipeline.defs.release.erasure_dagster import scrub_dagster_records

ERASURE_TAG = "ft_pipeline/erasure"
RAW = dg.AssetKey("raw_dataset")


def report_erasure(instance: dg.DagsterInstance, summary: dict) -> dict:
    """`summary` as core.erasure.requests.forget hands it to its `after` callback. Dagster's own
    records of the erased ids and values are rewritten first; the events reported here hold neither."""
    touched = scrub_dagster_records(instance, summary["ids"], summary["values"])
    stale = mark_sources_stale(instance, summary)
    report_current_model_check(instance, summary["request_id"], summary["tainted"])
    return {"sources_marked_stale": len(stale), **touched}


def mark_sources_stale(instance: dg.DagsterInstance, summary: dict) -> list[str]:
    """The partitions whose latest ingested raw copy the request rewrote; reports each one's event once."""
    rewritten = {Path(p).parent for p in summary["rewritten_paths"]}
    request_id = summary["request_id"]
    touched = []
    for partition in instance.get_dynamic_partitions(RAW_FILES.name):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=RAW, asset_partitions=[partition]), limit=100).records
        tags = [(r, r.asset_materialization.tags or {}) for r in records]
        ingested = next((r for r, t in tags if ERASURE_TAG not in t), None)  # the latest run that made a raw copy
        if ingested is None or run_dir_path("raw", "raw_dataset", ingested.run_id) not in rewritten:
            continue
        touched.append(partition)
        if any(t.get(ERASURE_TAG) == request_id for _, t in tags):
            continue
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key=RAW,
            partition=partition,
            description=f"erasure request {request_id}: records removed from this source",
            metadata={"erasure_request": request_id, "records_removed": summary["records_removed"]},
            tags={ERASURE_TAG: request_id},
        ))
    return touched


def report_current_model_check(instance: dg.DagsterInstance, request_id: str, tainted: list[dict]) -> bool:
    """A failing evaluation of the promoted_model erasure check, once per request; False if none was due."""
    if not tainted:
        return False
    key = current_model_not_trained_on_erased_data.check_key
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key([key]).get(key)
    evaluation = latest.event.dagster_event.event_specific_data if latest and latest.event and latest.event.dagster_event else None
    reported = getattr(evaluation, "metadata", {}).get("erasure_request")
    if reported is not None and getattr(reported, "value", reported) == request_id:
        return False
    instance.report_runless_asset_event(dg.AssetCheckEvaluation(
        asset_key=key.asset_key,
        check_name=key.name,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=erasure_verdict(tainted),
        metadata={"erasure_request": request_id,
                  "tainted_versions": dg.MetadataValue.json([f"{t['name']}/{t['version']}" for t in tainted])},
    ))
    return True
