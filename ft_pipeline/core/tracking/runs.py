"""One MLflow run per trained adapter: the training (params, per-step loss and learning rate,
the adapter folder, the loss plot, the fit assessment's arms as child runs), then its evaluation
(every variant's metric, the paired comparisons and per-group metrics with their intervals, the
report and its plots). Each run carries our own key (the Dagster run that trained it), so a queued
evaluation or release finds its run whenever it is finally sent.

Operations take (client, payload, uri) and are safe to repeat: a run left half-logged by an outage
is deleted and logged again.
"""
from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

KEY_TAG = "ft_pipeline.run_key"
DONE_TAG = "ft_pipeline.logged"
BATCH = 900  # MLflow takes at most 1000 metrics and 100 params per log_batch call
PARAM_CHARS = 6000


def experiment_id(client, name: str, uri: str) -> str:
    """The task's experiment; in the default store its artifacts go beside the database."""
    from ft_pipeline.core.tracking import queue

    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return found.experiment_id
    location = (queue.mlflow_dir() / "artifacts" / name).as_uri() if queue.is_default_store(uri) else None
    return client.create_experiment(name, artifact_location=location, tags={"ft_pipeline": "true"})


def find_run(client, experiment: str, key: str):
    runs = client.search_runs([experiment], filter_string=f"tags.`{KEY_TAG}` = '{key}'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def run_for(client, payload: dict, uri: str):
    """The run with the payload's key, created (named for the task) when training was not tracked."""
    experiment = experiment_id(client, payload["experiment"], uri)
    run = find_run(client, experiment, payload["run_key"])
    if run is None:
        run = client.create_run(experiment, run_name=payload.get("run_name"), tags={KEY_TAG: payload["run_key"]})
        client.set_terminated(run.info.run_id)
    return run


def metric_key(*parts) -> str:
    """MLflow allows letters, digits and _ - . / space in names; anything else becomes _."""
    return ".".join(re.sub(r"[^\w\-. /]", "_", str(p)) for p in parts)


def log_training(client, payload: dict, uri: str) -> str:
    """payload: experiment, run_key, run_name, params, tags, history [{step, loss, ...}], metrics
    {name: value}, adapter_dir, arms {arm: {metric, low, high, usd_per_month}}, metric."""
    from mlflow.entities import Param

    experiment = experiment_id(client, payload["experiment"], uri)
    old = find_run(client, experiment, payload["run_key"])
    if old is not None and old.data.tags.get(DONE_TAG):
        return old.info.run_id
    if old is not None:  # half-logged before an outage: start it over
        for child in _children(client, experiment, old.info.run_id):
            client.delete_run(child.info.run_id)
        client.delete_run(old.info.run_id)
    run_id = client.create_run(experiment, run_name=payload["run_name"],
                               tags={**payload["tags"], KEY_TAG: payload["run_key"]}).info.run_id
    params = [Param(k, str(v)[:PARAM_CHARS]) for k, v in sorted(payload["params"].items())]
    for i in range(0, len(params), 100):
        client.log_batch(run_id, params=params[i:i + 100])
    history = payload.get("history") or []
    # loss, learning_rate, grad_norm, ... per step (DPO's rewards/chosen, GRPO's reward/... too)
    _log_metrics(client, run_id, [(metric_key(k), v, h["step"]) for h in history for k, v in h.items()
                                  if k != "step" and isinstance(v, (int, float))])
    last = max((h["step"] for h in history), default=0)
    _log_metrics(client, run_id, [(metric_key(k), v, last) for k, v in payload["metrics"].items()
                                  if isinstance(v, (int, float))])
    losses = [(h["step"], h["loss"]) for h in history if isinstance(h.get("loss"), (int, float))]
    if losses:
        from ft_pipeline.core import plots

        _log_png(client, run_id, plots.line_chart({"train loss": losses}, "Training loss", "step", "loss"),
                 "plots", "loss_curve.png")
    adapter = Path(payload.get("adapter_dir") or "")
    if adapter.is_dir():
        client.log_artifacts(run_id, str(adapter), "adapter")
    for arm, result in (payload.get("arms") or {}).items():
        child = client.create_run(experiment, run_name=f"fit: {arm}",
                                  tags={"mlflow.parentRunId": run_id, "ft_pipeline.arm": arm, KEY_TAG: f"{payload['run_key']}/{arm}"})
        client.log_param(child.info.run_id, "arm", arm)
        # accuracy, accuracy.low, accuracy.high, usd_per_month: comparable across arms in the UI
        names = {"metric": payload["metric"], "low": metric_key(payload["metric"], "low"),
                 "high": metric_key(payload["metric"], "high"), "usd_per_month": "usd_per_month"}
        _log_metrics(client, child.info.run_id, [(names[k], v, 0) for k, v in result.items()
                                                 if k in names and isinstance(v, (int, float))])
        client.set_terminated(child.info.run_id)
    client.set_tag(run_id, DONE_TAG, "training")
    client.set_terminated(run_id)
    return run_id


def log_evaluation(client, payload: dict, uri: str) -> str:
    """payload: experiment, run_key, metric, variants {variant: {metric..., n}}, comparisons
    {name: {difference, low, high, p_value, n}}, groups_with_intervals, gates_failed, report_path."""
    run_id = run_for(client, payload, uri).info.run_id
    rows = [(metric_key("eval", v, m), x, 0) for v, ms in payload["variants"].items() for m, x in ms.items()]
    rows += [(metric_key("eval", c, k), x, 0) for c, stats in payload["comparisons"].items()
             for k, x in stats.items() if k in ("difference", "low", "high", "p_value", "n")]
    rows += [(metric_key("eval.group", attr, group, k), x, 0) for attr, groups in payload["groups_with_intervals"].items()
             for group, stats in groups.items() for k, x in stats.items() if k in ("n", "metric", "low", "high")]
    _log_metrics(client, run_id, [r for r in rows if isinstance(r[1], (int, float))])
    client.set_tag(run_id, "eval.metric", payload["metric"])
    client.set_tag(run_id, "eval.gates_failed", ",".join(payload["gates_failed"]) or "none")
    client.set_tag(run_id, "eval.dagster_run_id", payload.get("dagster_run_id", ""))
    report = Path(payload.get("report_path") or "")
    if report.is_file():
        client.log_artifact(run_id, str(report), "evaluation")
    from ft_pipeline.core import plots

    metric = payload["metric"]
    _log_png(client, run_id, plots.bar_chart({v: m.get(metric) for v, m in payload["variants"].items()},
                                             f"{metric} on the held-out split"), "plots", "eval_by_variant.png")
    _log_png(client, run_id, plots.interval_bars(payload["groups_with_intervals"], f"Tuned {metric} by group, with intervals"),
             "plots", "eval_by_group.png")
    return run_id


def _children(client, experiment: str, parent: str) -> list:
    return client.search_runs([experiment], filter_string=f"tags.`mlflow.parentRunId` = '{parent}'")


def _log_metrics(client, run_id: str, rows: list[tuple[str, float, int]]) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    # bool is an int to Python, not a metric
    metrics = [Metric(key, float(value), now, int(step)) for key, value, step in rows if not isinstance(value, bool)]
    for i in range(0, len(metrics), BATCH):
        client.log_batch(run_id, metrics=metrics[i:i + BATCH])


def _log_png(client, run_id: str, png: bytes, folder: str, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(png)
        client.log_artifact(run_id, str(path), folder)
