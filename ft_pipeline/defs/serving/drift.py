"""Drift of live traffic from the training data: a check on each day of production_traffic, a
sensor that asks for a retrain when a day drifted past the task file's `drift:` thresholds, and one
that asks for a retrain once enough labelled feedback came in since the adapter last trained."""

import dagster as dg

from ft_pipeline.defs.automation.jobs import retrain_job
from ft_pipeline.defs.failures import user_failure
from ft_pipeline.defs.serving.assets import DAILY, production_traffic

CHECK = "traffic_matches_training_data"


def _latest_path(instance: dg.DagsterInstance, asset: str) -> str | None:
    from ft_pipeline.defs.gates import latest_materialization

    record = latest_materialization(instance, dg.AssetKey(asset))
    value = record.event_log_entry.asset_materialization.metadata.get("path") if record else None
    return getattr(value, "value", value)


@dg.asset_check(asset=production_traffic, partitions_def=DAILY, blocking=False,
                description="The day's requests look like the training data: request lengths (KS), words "
                            "(Jensen-Shannon) and the label mix, within the task file's drift: thresholds.")
def traffic_matches_training_data(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    from ft_pipeline.core.serving import drift, traffic
    from ft_pipeline.core.task import TaskConfig

    task_path, export = _latest_path(context.instance, "task"), _latest_path(context.instance, "jsonl_export")
    if not task_path or not export:
        return dg.AssetCheckResult(passed=True, severity=dg.AssetCheckSeverity.WARN,
                                   description="not judged: no task or training export materialized yet")
    with user_failure():  # a TaskError
        task = TaskConfig.from_yaml(task_path)
        config = task.sections.drift
    day = context.op_execution_context.partition_key
    result = drift.compare(drift.training_sample(export, task), drift.traffic_sample(traffic.day_file(day), task), config)
    description = (f"drifted on {', '.join(result['drifted'])}" if result["drifted"]
                   else "within the drift: thresholds" if result["judged"] else f"not judged: {result['why']}")
    return dg.AssetCheckResult(passed=not result["drifted"], severity=dg.AssetCheckSeverity.WARN,
                               description=description, metadata={**result, "retrain": config.retrain})


@dg.sensor(job=retrain_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Requests a retrain when a day of production traffic drifted past the task file's drift: thresholds.")
def drift_retrain_sensor(context: dg.SensorEvaluationContext):
    key = dg.AssetCheckKey(dg.AssetKey("production_traffic"), CHECK)
    history = context.instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
    if not history:
        return dg.SkipReason(f"{CHECK} has not run yet")
    record = history[0]
    if context.cursor == str(record.id):
        return dg.SkipReason("no new drift check since the last tick")
    evaluation = record.event.dagster_event.event_specific_data if record.event and record.event.dagster_event else None
    metadata = {k: getattr(v, "value", v) for k, v in (getattr(evaluation, "metadata", None) or {}).items()}
    context.update_cursor(str(record.id))
    if not metadata.get("drifted") or not metadata.get("retrain"):
        return dg.SkipReason("the latest day of traffic did not drift (or drift.retrain is false)")
    return dg.RunRequest(run_key=f"drift-{record.id}",
                         tags={"ft_pipeline/trigger": "drift", "ft_pipeline/drifted": ",".join(metadata["drifted"])})


@dg.sensor(job=retrain_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Requests one retrain once drift.feedback_retrain labels came in through /v1/feedback "
                       "since adapter_weights was last materialized.")
def feedback_retrain_sensor(context: dg.SensorEvaluationContext):
    from datetime import datetime, timezone

    from ft_pipeline.core.serving import traffic
    from ft_pipeline.core.task import TaskConfig, TaskError
    from ft_pipeline.defs.gates import latest_materialization

    task_path = _latest_path(context.instance, "task")
    if not task_path:
        return dg.SkipReason("no task materialized yet")
    try:
        threshold = TaskConfig.from_yaml(task_path).sections.drift.feedback_retrain
    except TaskError as exc:
        return dg.SkipReason(str(exc))
    if not threshold:
        return dg.SkipReason("drift.feedback_retrain is 0: labelled feedback requests no retrain")
    trained = latest_materialization(context.instance, dg.AssetKey("adapter_weights"))
    since = datetime.fromtimestamp(trained.timestamp, timezone.utc).isoformat(timespec="milliseconds") if trained else ""
    training = str(trained.storage_id) if trained else "none"
    if context.cursor == training:
        return dg.SkipReason("a retrain was already requested for the feedback since the last training")
    count = traffic.feedback_since(since)
    if count < threshold:
        return dg.SkipReason(f"{count} labels since the last training; a retrain is requested at {threshold}")
    context.update_cursor(training)
    return dg.RunRequest(run_key=f"feedback-{training}", tags={"ft_pipeline/trigger": "feedback",
                                                               "ft_pipeline/feedback": str(count)})
