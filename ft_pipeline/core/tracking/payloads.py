"""What is sent to MLflow, built from what the assets already hold: names, settings, numbers,
digests and paths of files the pipeline wrote. Nothing here reads a record: the payloads carry
counts and digests only, never record text or ids.
"""
from __future__ import annotations

from pathlib import Path

TRAINING_SUMMARY = ("final_loss", "first_loss", "train_loss_avg", "tokens_per_s", "train_seconds", "wall_seconds",
                    "train_tokens", "train_examples", "eval_examples", "trainable_params", "total_params",
                    "train_examples_dropped_by_truncation")


def experiment_name(task_name: str) -> str:
    return task_name


def _named(task: dict) -> dict:
    """The task's name, type and metric from its asset's value; a value stored before the value
    held them kept them under `config`."""
    return task.get("config") or task


def training(*, task: dict, config: dict, preset: str, metrics: dict, adapter_dir: Path, export_sha256: str,
             data_digests: dict[str, str], dagster_run_id: str, fit_assessment: dict | None) -> dict:
    """The adapter_weights run. `task` is the task asset's value ({path, sha256, name, type, metric}),
    `data_digests` {source partition key: sha256 of its redacted data}."""
    spec = _named(task)
    params = {"preset": preset, "method": config.get("method"), "task": spec["name"], "task_type": spec.get("type"),
              "task_sha256": task["sha256"], "export_sha256": export_sha256,
              **{f"data_sha256.{i}": sha for i, (_, sha) in enumerate(sorted(data_digests.items()))},
              **{f"train.{k}": v for k, v in config.items() if v is not None and not isinstance(v, (dict, list))},
              "train.target_modules": ",".join(config.get("target_modules") or [])}
    summary = {k: metrics.get(k) for k in TRAINING_SUMMARY}
    summary["peak_memory_mb"] = round((metrics.get("peak_memory_bytes") or 0) / 2**20, 1)
    summary.update({f"final_eval_{k.removeprefix('eval_')}": v for k, v in (metrics.get("eval") or {}).items()})
    arms = (fit_assessment or {}).get("arms") or {}
    summary.update(privacy_metrics(metrics.get("privacy"), fit_assessment))
    return {
        "experiment": experiment_name(spec["name"]), "run_key": dagster_run_id,
        "run_name": f"{spec['name']} {config.get('method')} {dagster_run_id[:8]}",
        "params": params,
        "tags": {"ft_pipeline.asset": "adapter_weights", "dagster.run_id": dagster_run_id,
                 # MLflow refuses tag values over 8,000 characters; the params hold every digest
                 "dagster.partition_keys": ",".join(sorted(data_digests))[:7000], "export_sha256": export_sha256,
                 "task_sha256": task["sha256"], "base_model": str(config.get("base_model"))},
        "history": metrics.get("history") or [],
        "metrics": summary,
        "adapter_dir": str(adapter_dir),
        "metric": spec.get("metric") or "metric",
        "arms": {arm: {k: r.get(k) for k in ("metric", "low", "high", "usd_per_month")} for arm, r in arms.items()},
    }


def privacy_metrics(record: dict | None, fit_assessment: dict | None) -> dict:
    """The run's spent epsilon and delta, and the data's total with the fit assessment's pilots
    (basic composition), as MLflow metrics; nothing for a run without DP anywhere."""
    from ft_pipeline.core.fit.pilot import pilot_privacy
    from ft_pipeline.core.training.privacy import total_privacy

    total = total_privacy(record, pilot_privacy(fit_assessment))
    if not total:
        return {}
    run = {f"privacy.{k}": record[k] for k in ("epsilon", "delta")} if record and record.get("dp") else {}
    return {**run, **({"privacy.total_epsilon": total["epsilon"], "privacy.total_delta": total["delta"]}
                      if total["bounded"] else {})}


def evaluation(*, task: dict, run_key: str, report: dict, report_path: str, dagster_run_id: str) -> dict:
    """eval_report's numbers, for the run that trained the adapter it judged."""
    return {
        "experiment": experiment_name(_named(task)["name"]), "run_key": run_key, "dagster_run_id": dagster_run_id,
        "metric": report["metric"], "variants": report["variants"], "comparisons": report["comparisons"],
        "groups_with_intervals": report["groups_with_intervals"], "report_path": report_path,
        "gates_failed": sorted(n for n, v in (report.get("verdicts") or {}).items() if not v.get("passed")),
    }


def release(*, task: dict, run_key: str, version_dir: Path, base_model_path: str, dagster_run_id: str,
            alias: str = "champion") -> dict:
    """promoted_model's new registry version, to mirror as a model version and the champion (or
    the challenger, when it waits for a rollout)."""
    return {"alias": alias,
        "experiment": experiment_name(_named(task)["name"]), "run_key": run_key, "name": _named(task)["name"],
        "version": Path(version_dir).name, "version_dir": str(version_dir), "base_model_path": str(base_model_path),
        "tags": {"dagster.run_id": dagster_run_id, "task_sha256": task["sha256"]},
    }
