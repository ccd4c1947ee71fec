"""Resources, chosen per environment by environment variables, never by code edits.

FT_PIPELINE_TRAINER_MODE: in_process (default) | subprocess (Dagster Pipes) | accelerate
(several processes, DDP; FT_PIPELINE_ACCELERATE_CONFIG for FSDP/DeepSpeed) | ecs (remote GPU
through dagster-aws's Pipes ECS client, configured by the FT_ECS_* variables in ECS_ENV).
FT_PIPELINE_S3_BUCKET: when set, values passed between assets are stored in that bucket
(dagster-aws's S3PickleIOManager, under FT_PIPELINE_S3_PREFIX) instead of the local instance
directory, so runs on different machines share them. AWS_ENDPOINT_URL points at S3-compatible
storage (MinIO, or moto in the tests).
"""
import os

import dagster as dg
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager

from ft_pipeline.defs.training.resources import TrainerResource


class _ArtifactPathPickles(PickledObjectFilesystemIOManager):
    def get_metadata(self, context, obj) -> dict:
        # The base class records where it pickled the value as `path`, overwriting the asset's own
        # `path` (the artifact an auditor matches by sha256). Put the artifact's back.
        if isinstance(obj, dict) and isinstance(obj.get("path"), str):
            return {"path": dg.MetadataValue.path(obj["path"])}
        return {}


class ValueIOManager(dg.FilesystemIOManager):
    """Pickles the small dicts assets pass each other into the instance's storage directory."""

    def create_io_manager(self, context) -> PickledObjectFilesystemIOManager:
        return _ArtifactPathPickles(base_dir=self.base_dir or context.instance.storage_directory())


def io_manager() -> dg.ConfigurableIOManager:
    bucket = os.environ.get("FT_PIPELINE_S3_BUCKET")
    if not bucket:
        # Values passed between assets are small dicts (paths, hashes, metrics), pickled into the
        # instance's storage directory, so an asset materialized alone — from the UI, a sensor or
        # `execute_in_process` — reads its inputs from the run that produced them.
        return ValueIOManager()
    from dagster_aws.s3 import S3PickleIOManager, S3Resource

    return S3PickleIOManager(
        s3_resource=S3Resource(endpoint_url=os.environ.get("AWS_ENDPOINT_URL")),
        s3_bucket=bucket,
        s3_prefix=os.environ.get("FT_PIPELINE_S3_PREFIX", "ft-pipeline"),
    )


ECS_ENV = {
    "ecs_cluster": "FT_ECS_CLUSTER",
    "ecs_task_definition": "FT_ECS_TASK_DEFINITION",
    "ecs_container": "FT_ECS_CONTAINER",
    "ecs_subnets": "FT_ECS_SUBNETS",
    "ecs_security_groups": "FT_ECS_SECURITY_GROUPS",
    "ecs_launch_type": "FT_ECS_LAUNCH_TYPE",
    "ecs_region": "FT_ECS_REGION",
}


def _ecs_settings() -> dict:
    """The remote-GPU settings from the environment (only those set), so a deployment configures
    ECS without editing code."""
    return {field: os.environ[var] for field, var in ECS_ENV.items() if os.environ.get(var)}


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "io_manager": io_manager(),
            "trainer": TrainerResource(
                mode=os.environ.get("FT_PIPELINE_TRAINER_MODE", "in_process"),
                num_processes=int(os.environ.get("FT_PIPELINE_TRAINER_PROCESSES", "1")),
                accelerate_config=os.environ.get("FT_PIPELINE_ACCELERATE_CONFIG", ""),
                **_ecs_settings(),
            ),
        }
    )
