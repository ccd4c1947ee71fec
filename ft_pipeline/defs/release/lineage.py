"""The audit trail of a release, read from the Dagster instance at promotion time and frozen into
the registry beside the model, so it outlives the instance's retention."""
from __future__ import annotations

import datetime as dt
import subprocess

import dagster as dg

from ft_pipeline.core import paths
from ft_pipeline.defs.gates import full_graph, latest_materialization


def code_version() -> str:
    """The git commit the code ran at (with "+dirty" if the tree had changes), or "unknown"."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.REPO_ROOT, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=paths.REPO_ROOT,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if commit.returncode != 0:
        return "unknown"
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


# Metadata kept in the lineage: digests and counts (the evidence bundle's datasheet reads the
# redaction counts per entity type, quarantine reasons and the bias verdict from here), never text.
LINEAGE_METADATA = {"path", "sha256", "source", "source_sha256", "records", "quarantined", "version", "steps", "method",
                    "task_sha256", "privacy", "privacy_total", "records_in", "records_out", "quarantine_reasons", "entities_redacted",
                    "erased", "verdict", "failed_attributes", "attributes", "sidecars",
                    "sidecars_sha256"}


def _metadata_value(value) -> object:
    inner = getattr(value, "value", value)
    return inner if isinstance(inner, (str, int, float, bool, type(None), dict, list)) else str(inner)


def asset_entries(instance: dg.DagsterInstance, graph, key: dg.AssetKey) -> list[dict]:
    """One entry per asset; a partitioned asset (one partition per source file) gets one per partition."""
    partitions_def = graph.get(key).partitions_def
    if partitions_def is None:
        return [asset_entry(instance, graph, key)]
    partitions = partitions_def.get_partition_keys(dynamic_partitions_store=instance)
    return [asset_entry(instance, graph, key, p) for p in partitions] or [asset_entry(instance, graph, key)]


def asset_entry(instance: dg.DagsterInstance, graph, key: dg.AssetKey, partition: str | None = None) -> dict:
    if partition is None:
        record = latest_materialization(instance, key)
    else:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1).records
        record = records[0] if records else None
    named = {"asset": key.to_user_string(), **({"partition": partition} if partition is not None else {})}
    if record is None:
        return {**named, "materialized": False}
    event = record.event_log_entry
    materialization = event.asset_materialization
    metadata = {k: _metadata_value(v) for k, v in materialization.metadata.items()
                if k in LINEAGE_METADATA}
    run = instance.get_run_by_id(event.run_id)
    op_config = (run.run_config or {}).get("ops", {}).get(key.to_python_identifier(), {}) if run else {}
    return {
        **named,
        "materialized": True,
        "run_id": event.run_id,
        "storage_id": record.storage_id,
        "timestamp": dt.datetime.fromtimestamp(event.timestamp, dt.timezone.utc).isoformat(timespec="seconds"),
        "code_version": graph.get(key).code_version,
        "data_version": (materialization.tags or {}).get("dagster/data_version"),
        "sha256": metadata.get("sha256"),
        "config": op_config.get("config", {}),
        "metadata": metadata,
    }


def check_entries(instance: dg.DagsterInstance, graph, keys: set[dg.AssetKey]) -> list[dict]:
    """The latest evaluation of every check on `keys`; a partitioned check gets one entry per partition."""
    check_keys = sorted((k for k in graph.asset_check_keys if k.asset_key in keys),
                        key=lambda k: (k.asset_key.to_user_string(), k.name))
    entries = []
    for key in check_keys:
        partitions_def = graph.get_check_spec(key).partitions_def
        if partitions_def is None:
            latest = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])
            entries.append(_check_entry(graph, key, latest.get(key), None))
            continue
        partitions = partitions_def.get_partition_keys(dynamic_partitions_store=instance)
        latest = _latest_per_partition(instance, key, set(partitions))
        entries += [_check_entry(graph, key, latest.get(partition), partition) for partition in partitions]
    return entries


def _latest_per_partition(instance: dg.DagsterInstance, key: dg.AssetCheckKey, partitions: set[str],
                          page: int = 500) -> dict:
    """{partition: its latest execution of the check}: the check's history, newest first, read a page
    at a time until every partition has one or the history ends. (The storage can filter by
    partition only through a class dagster does not export, PartitionKeyFilter.)"""
    storage, found, cursor = instance.event_log_storage, {}, None
    while partitions - found.keys():
        records = storage.get_asset_check_execution_history(key, limit=page, cursor=cursor)
        for record in records:
            if record.partition in partitions:
                found.setdefault(record.partition, record)
        if len(records) < page:
            break
        cursor = records[-1].id
    return found


def _check_entry(graph, key: dg.AssetCheckKey, record, partition: str | None) -> dict:
    evaluation = record.event.dagster_event.event_specific_data if record and record.event and record.event.dagster_event else None
    target = getattr(evaluation, "target_materialization_data", None)
    return {
        "check": key.name,
        "asset": key.asset_key.to_user_string(),
        **({"partition": partition} if partition is not None else {}),
        "blocking": graph.get_check_spec(key).blocking,
        "passed": bool(getattr(evaluation, "passed", False)),
        "status": record.status.value if record else "NEVER_RUN",
        "run_id": record.run_id if record else None,
        "target_storage_id": target.storage_id if target else None,
        "description": getattr(evaluation, "description", None),
    }


def collect_lineage(context: dg.AssetExecutionContext, *, name: str, version: str) -> dict:
    graph = full_graph(context)
    keys = graph.get_ancestor_asset_keys(context.asset_key)
    ordered = [k for k in graph.toposorted_asset_keys if k in keys]
    return {
        "name": name,
        "version": version,
        "promoted_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "run_id": context.run_id,
        "code_version": code_version(),
        "assets": [entry for k in ordered for entry in asset_entries(context.instance, graph, k)],
        "checks": check_entries(context.instance, graph, set(ordered)),
        "erasures": [],
    }
