"""The two jobs sensors and schedules launch.

ingest_source: one source partition — ingest it to the raw zone with the task's column mapping,
redact it, and run its gates. Launched once per new file, so a large landing is redacted by
parallel runs. It reads the latest materialized `task`: which task file is in force is the user's
choice (materialize `task`), never reset by a sensor's run.
retrain: everything downstream of the redacted partitions — bias audit, export, fit assessment,
training, evaluation, promotion — with every check, so a retrain passes through every gate.
"""
import dagster as dg

from ft_pipeline.defs.data.partitions import RAW_FILES
from ft_pipeline.defs.run_queue import HOME_TAG, home_tag_value

SOURCE_ASSETS = dg.AssetSelection.assets("raw_dataset", "redacted_dataset")

ingest_job = dg.define_asset_job(
    "ingest_source",
    selection=SOURCE_ASSETS,
    partitions_def=RAW_FILES,
    tags={"ft_pipeline/job": "ingest"},
    description="Ingest, redact and gate one source file (a raw_files partition).",
)

retrain_job = dg.define_asset_job(
    "retrain",
    # production_traffic (group serving) is partitioned by day and records what serving logged
    selection=dg.AssetSelection.all() - SOURCE_ASSETS - dg.AssetSelection.assets("task") - dg.AssetSelection.groups("serving"),
    # dagster.yaml runs one retrain at a time, and one run per home (an `ft-pipeline run` included)
    tags={"ft_pipeline/job": "retrain", HOME_TAG: home_tag_value()},
    description="Audit, export, assess, train, evaluate and promote on every redacted source — every gate included.",
)
