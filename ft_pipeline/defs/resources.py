"""Resources, chosen per environment by environment variables, never by code edits.

FT_PIPELINE_TRAINER_MODE: in_process (default) | subprocess (Dagster Pipes) | accelerate
(several processes, DDP; FT_PIPELINE_ACCELERATE_CONFIG for FSDP/DeepSpeed) | ecs (remote GPU
through dagster-aws's Pipes ECS client, configured by the FT_ECS_* variables in ECS_ENV) | ray
(Ray Train's TorchTrainer, FT_PIPELINE_TRAINER_PROCESSES workers; RAY_ADDRESS for a cluster).
FT_PIPELINE_S3_BUCKET: when set, values passed between assets are stored in that bucket
(dagster-aws's S3PickleIOManager, under FT_PIPELINE_S3_PREFIX) instead of the local instance
directory, so runs on different machines share them. AWS_ENDPOINT_URL points at S3-compatible
storage (MinIO, or moto in the tests).
"""
import hashlib
import os
import pickle
import re

import dagster as dg

from ft_pipeline.defs.training.resources import TrainerResource, TrainingPlanResource


def partition_file_name(partition: str) -> str:
    """A partition key is a source location (a path, an s3:// URI): stored values get a flat,
    readable, collision-free name for it instead of a path built from it."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", partition).strip("._")[-60:]
    return f"{readable}-{hashlib.sha256(partition.encode()).hexdigest()[:12]}"


PICKLE_PROTOCOL = 4  # what dagster's filesystem pickles are written with: the files stay the same


class _ArtifactPathPickles(dg.UPathIOManager):
    """dagster's own filesystem pickles (fs_io_manager: the same files, no extension), through the
    public UPathIOManager: a partition's file is named by partition_file_name."""

    extension = ""

    def __init__(self, base_dir: str):
        from upath import UPath

        super().__init__(base_path=UPath(base_dir))

    def dump_to_path(self, context, obj, path) -> None:
        with path.open("wb") as fh:
            pickle.dump(obj, fh, PICKLE_PROTOCOL)

    def load_from_path(self, context, path):
        with path.open("rb") as fh:
            return pickle.load(fh)

    def make_safe_partition_path(self, base_path, partition: str):
        return base_path / partition_file_name(partition)

    def get_metadata(self, context, obj) -> dict:
        # The base class records where it pickled the value as `path`, overwriting the asset's own
        # `path` (the artifact an auditor matches by sha256). Put the artifact's back.
        if isinstance(obj, dict) and isinstance(obj.get("path"), str):
            return {"path": dg.MetadataValue.path(obj["path"])}
        return {}


class ValueIOManager(dg.FilesystemIOManager):
    """Pickles the small dicts assets pass each other into the instance's storage directory."""

    def create_io_manager(self, context) -> dg.UPathIOManager:
        return _ArtifactPathPickles(base_dir=self.base_dir or context.instance.storage_directory())


def s3_value_store():
    """Where values passed between assets go on S3 (core.erasure.s3.S3Store), or None when
    they stay in the instance's directory; `ft-pipeline forget` reads the same settings."""
    bucket = os.environ.get("FT_PIPELINE_S3_BUCKET")
    if not bucket:
        return None
    from ft_pipeline.core.erasure.s3 import S3Store

    return S3Store(bucket=bucket, prefix=os.environ.get("FT_PIPELINE_S3_PREFIX", "ft-pipeline"),
                   endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))


def io_manager() -> dg.ConfigurableIOManager:
    store = s3_value_store()
    if store is None:
        # Values passed between assets are small dicts (paths, hashes, metrics), pickled into the
        # instance's storage directory, so an asset materialized alone — from the UI, a sensor or
        # `execute_in_process` — reads its inputs from the run that produced them.
        return ValueIOManager()
    from dagster_aws.s3 import S3Resource

    return _s3_pickles_class()(
        s3_resource=S3Resource(endpoint_url=store.endpoint_url), s3_bucket=store.bucket, s3_prefix=store.prefix,
    )


def _s3_pickles_class():
    from dagster_aws.s3 import S3PickleIOManager
    from dagster_aws.s3.io_manager import PickledObjectS3IOManager
    from pydantic import PrivateAttr

    class _FlatPartitions(PickledObjectS3IOManager):
        def make_safe_partition_path(self, base_path, partition: str):
            return base_path / partition_file_name(partition)

    class S3Pickles(S3PickleIOManager):
        # One S3 client per resource instance, as the base class keeps it; a pydantic private
        # attribute (Dagster's documented resource state) instead of its private cached_method.
        _inner: PickledObjectS3IOManager | None = PrivateAttr(default=None)

        def inner_io_manager(self) -> PickledObjectS3IOManager:
            if self._inner is None:
                self._inner = _FlatPartitions(s3_bucket=self.s3_bucket, s3_session=self.s3_resource.get_client(),
                                              s3_prefix=self.s3_prefix)
            return self._inner

    return S3Pickles


ECS_ENV = {
    "ecs_cluster": "FT_ECS_CLUSTER",
    "ecs_task_definition": "FT_ECS_TASK_DEFINITION",
    "ecs_container": "FT_ECS_CONTAINER",
    "ecs_subnets": "FT_ECS_SUBNETS",
    "ecs_security_groups": "FT_ECS_SECURITY_GROUPS",
    "ecs_launch_type": "FT_ECS_LAUNCH_TYPE",
    "ecs_region": "FT_ECS_REGION",
}


def _trainer_processes() -> dict:
    """FT_PIPELINE_TRAINER_PROCESSES as a count. A mistake in it must not stop the code location
    from loading (every asset would vanish from the UI): training refuses with it instead."""
    raw = os.environ.get("FT_PIPELINE_TRAINER_PROCESSES", "1")
    if raw.strip().isdigit() and int(raw) >= 1:
        return {"num_processes": int(raw)}
    return {"setup_error": f"FT_PIPELINE_TRAINER_PROCESSES={raw!r}: must be a whole number >= 1 "
                           "(training processes)"}


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
                **_trainer_processes(),
                accelerate_config=os.environ.get("FT_PIPELINE_ACCELERATE_CONFIG", ""),
                **_ecs_settings(),
            ),
            # FT_PIPELINE_PRESET: the training preset for every run (the launchpad's one knob).
            "training_plan": TrainingPlanResource(preset=os.environ.get("FT_PIPELINE_PRESET", "")),
        }
    )
