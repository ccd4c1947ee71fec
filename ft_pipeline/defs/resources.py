"""Resources, chosen per environment by environment variables (EnvVar), never by code edits.

FT_PIPELINE_TRAINER_MODE: in_process (default) | subprocess (Dagster Pipes) | accelerate
(several processes, DDP) | ecs (remote GPU through dagster-aws's Pipes ECS client).
"""
import os

import dagster as dg

from ft_pipeline.defs.training.resources import TrainerResource


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            # Values passed between assets are small dicts (paths, hashes, metrics), pickled into the
            # instance's storage directory, so an asset materialized alone — from the UI, a sensor
            # or `execute_in_process` — reads its inputs from the run that produced them.
            "io_manager": dg.FilesystemIOManager(),
            "trainer": TrainerResource(
                mode=os.environ.get("FT_PIPELINE_TRAINER_MODE", "in_process"),
                num_processes=int(os.environ.get("FT_PIPELINE_TRAINER_PROCESSES", "1")),
            ),
        }
    )
