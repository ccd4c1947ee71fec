"""The retraining job: every asset and every check, so a retrain passes through every gate."""
import dagster as dg

retrain_job = dg.define_asset_job(
    "retrain",
    selection=dg.AssetSelection.all(),
    description="Ingest, redact, audit, export, assess, train, evaluate and promote — every gate included.",
)
