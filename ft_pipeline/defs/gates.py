"""No bypass: an asset that spends money or releases a model re-verifies every blocking check
upstream of it against the exact materializations it is about to read.

Dagster's blocking checks stop downstream steps inside one run. They do not stop someone from
materializing adapter_weights alone, later, from the UI or the CLI. This does: the latest
evaluation of each gate must have passed, and must have evaluated the latest materialization of
its asset (a re-materialized dataset whose checks have not run again does not count).
"""
from __future__ import annotations

import dagster as dg

# A check execution's status by its value: Dagster exports no public name for the enum, and its
# private module path changes between releases.
SUCCEEDED = "SUCCEEDED"


def full_graph(context: dg.AssetExecutionContext):
    """The whole deployed asset graph. A run of a subset (one asset picked in the UI) knows only
    its own slice of the graph, and the gates live upstream of that slice."""
    from dagster_shared.check import CheckError

    try:
        return context.repository_def.asset_graph
    except CheckError:  # a job executed in-process outside any code location
        from ft_pipeline.definitions import defs

        return defs.resolve_asset_graph()


def upstream_gates(context: dg.AssetExecutionContext) -> list[dg.AssetCheckKey]:
    graph = full_graph(context)
    ancestors = graph.get_ancestor_asset_keys(context.asset_key)
    return sorted(
        (key for key in graph.asset_check_keys
         if key.asset_key in ancestors and key.asset_key != context.asset_key and graph.get_check_spec(key).blocking),
        key=lambda k: (k.asset_key.to_user_string(), k.name),
    )


def latest_materialization(instance: dg.DagsterInstance, key: dg.AssetKey):
    """The latest materialization's EventLogRecord (storage_id, run_id, event), or None."""
    records = instance.fetch_materializations(key, limit=1).records
    return records[0] if records else None


def gate_status(instance: dg.DagsterInstance, check_keys: list[dg.AssetCheckKey], graph=None) -> list[dict]:
    """For each gate: passed (bool) and why, judged on the latest check evaluation. A gate on a
    partitioned asset passes only when it passed on the latest materialization of every partition."""
    partitioned = {key: graph.get_check_spec(key).partitions_def for key in check_keys} if graph else {}
    plain = [key for key in check_keys if partitioned.get(key) is None]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(plain)
    statuses = []
    for key in check_keys:
        name = f"{key.asset_key.to_user_string()}:{key.name}"
        if partitioned.get(key) is not None:
            statuses.append({"gate": name, **_partitioned_gate(instance, key, partitioned[key])})
            continue
        record = latest.get(key)
        materialization = latest_materialization(instance, key.asset_key)
        if materialization is None:
            statuses.append({"gate": name, "passed": False, "why": "asset never materialized"})
            continue
        if record is None or record.status.value != SUCCEEDED:
            why = "never evaluated" if record is None else f"latest evaluation {record.status.value.lower()}"
            statuses.append({"gate": name, "passed": False, "why": why})
            continue
        evaluation = record.event.dagster_event.event_specific_data
        target = evaluation.target_materialization_data
        # In a run that also materializes a source partition, Dagster leaves the target of an
        # unpartitioned asset's check empty; the check then evaluated the materialization its own
        # run had just made, which is the latest one only if the runs match.
        same_run = target is None and record.run_id == materialization.run_id
        if not same_run and (target is None or target.storage_id != materialization.storage_id):
            statuses.append({"gate": name, "passed": False,
                             "why": "evaluated an older materialization; re-run the check on the latest one"})
            continue
        statuses.append({"gate": name, "passed": bool(evaluation.passed), "why": "passed" if evaluation.passed else "failed",
                         "run_id": record.run_id})
    return statuses


def _partitioned_gate(instance: dg.DagsterInstance, key: dg.AssetCheckKey, partitions_def) -> dict:
    """Every registered partition must be materialized, and the check's latest evaluation of that
    partition must have passed on exactly that partition's latest materialization."""
    expected = list(partitions_def.get_partition_keys(dynamic_partitions_store=instance))
    if not expected:
        return {"passed": False, "why": "no partitions registered (no source added)"}
    infos = {info.partition_key: info for info in instance.event_log_storage.get_asset_check_partition_info([key])}
    problems: dict[str, list[str]] = {}
    for partition in expected:
        info = infos.get(partition)
        if info is None:  # no evaluation at all: was the partition at least materialized?
            materialized = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key.asset_key, asset_partitions=[partition]), limit=1).records
            problems.setdefault("never evaluated" if materialized else "never materialized", []).append(partition)
        elif info.latest_materialization_storage_id is None:
            problems.setdefault("never materialized", []).append(partition)
        elif getattr(info.latest_execution_status, "value", None) != SUCCEEDED:
            problems.setdefault(f"latest evaluation {info.latest_execution_status.value.lower()}", []).append(partition)
        elif not info.is_current:
            problems.setdefault("evaluated an older materialization", []).append(partition)
    if problems:
        why = "; ".join(f"{why} on {len(parts)} of {len(expected)} partitions (e.g. {parts[0]})"
                        for why, parts in sorted(problems.items()))
        return {"passed": False, "why": why, "partitions": len(expected)}
    return {"passed": True, "why": f"passed on all {len(expected)} partitions", "partitions": len(expected)}


def require_gates(context: dg.AssetExecutionContext) -> list[dict]:
    """Raises dg.Failure naming every gate that has not passed; returns the statuses otherwise."""
    statuses = gate_status(context.instance, upstream_gates(context), full_graph(context))
    failed = [s for s in statuses if not s["passed"]]
    if failed:
        lines = "; ".join(f"{s['gate']} ({s['why']})" for s in failed)
        raise dg.Failure(
            description=f"refusing to run {context.asset_key.to_user_string()}: gates not passed: {lines}",
            metadata={"failed_gates": dg.MetadataValue.json(failed)},
        )
    context.log.info(f"all {len(statuses)} upstream gates passed on the latest materializations")
    return statuses
