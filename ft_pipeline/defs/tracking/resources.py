"""MlflowResource: where adapter_weights, eval_report and promoted_model mirror their runs and
releases. MLFLOW_TRACKING_URI names a tracking server; without it, a SQLite store under
$FT_PIPELINE_HOME/mlflow/ (nothing to start). FT_PIPELINE_MLFLOW=off turns the mirror off.

A small resource of our own rather than dagster-mlflow, whose `mlflow_tracking` is a legacy
op-style @resource that starts a run per Dagster run; here a run is a trained adapter, which
three assets (possibly in three Dagster runs) add to.
"""
from pathlib import Path

import dagster as dg

from ft_pipeline.core.tracking import payloads, queue


class MlflowResource(dg.ConfigurableResource):
    """Sends tracking operations through core.tracking.queue: an unreachable store is a warning
    and a queued operation, never a failed asset."""

    tracking_uri: str = ""  # "": MLFLOW_TRACKING_URI, else the SQLite store under FT_PIPELINE_HOME
    enabled: bool = True

    def _submit(self, context, op: str, build) -> bool:
        if not self.enabled:
            return False
        try:
            payload = build()
        except Exception as exc:  # noqa: BLE001 - a tracking bug must not fail the asset it mirrors
            context.log.warning(f"MLflow tracking skipped {op}: {type(exc).__name__}: {exc}")
            return False
        return queue.submit(op, payload, uri=self.tracking_uri or None, warn=context.log.warning)

    def log_training(self, context, *, task: dict, training, metrics: dict, adapter_dir: Path, export_sha256: str,
                     fit_assessment: dict, preset: str) -> bool:
        return self._submit(context, "log_training", lambda: payloads.training(
            task=task, config=training.to_dict(), preset=preset, metrics=metrics, adapter_dir=adapter_dir,
            export_sha256=export_sha256, data_digests=_data_digests(context), dagster_run_id=context.run_id,
            fit_assessment=fit_assessment))

    def log_evaluation(self, context, *, task: dict, adapter_weights: dict, report: dict) -> bool:
        return self._submit(context, "log_evaluation", lambda: payloads.evaluation(
            task=task, run_key=run_key(adapter_weights), report=report, report_path=report["path"],
            dagster_run_id=context.run_id))

    def register_release(self, context, *, task: dict, adapter_weights: dict, version_dir: Path,
                         base_model_path: str, alias: str = "champion") -> bool:
        return self._submit(context, "register_release", lambda: payloads.release(
            task=task, run_key=run_key(adapter_weights), version_dir=version_dir, base_model_path=base_model_path,
            dagster_run_id=context.run_id, alias=alias))


def run_key(adapter_weights: dict) -> str:
    """The MLflow run of an adapter: keyed by the Dagster run that trained it (older values, from
    before tracking, are keyed by their adapter folder)."""
    return adapter_weights.get("dagster_run_id") or adapter_weights["path"]


def _data_digests(context) -> dict[str, str]:
    """{source partition key: sha256 of its redacted data} that the export read, as jsonl_export
    recorded them."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey("jsonl_export"))
    value = event.asset_materialization.metadata.get("redacted_sha256") if event else None
    return dict(value.value) if value is not None else {}


@dg.definitions
def resources() -> dg.Definitions:
    # No tracking_uri here: MLFLOW_TRACKING_URI is read when each operation is sent.
    return dg.Definitions(resources={"mlflow": MlflowResource(enabled=queue.enabled())})
