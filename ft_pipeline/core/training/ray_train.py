"""The standalone trainer on Ray Train: a `TorchTrainer` whose `train_loop_per_worker` is train().

Ray Train starts `num_workers` worker processes (one per node or GPU on a cluster), sets up the
torch process group (gloo on CPUs, NCCL on GPUs) and the RANK / WORLD_SIZE / MASTER_ADDR variables
that transformers' Trainer reads, then calls the same train() the other launchers run. So the
adapter, checkpoints (<output>/checkpoints/, resumed by train() itself) and metrics.json land in the
output directory exactly as in-process; rank 0 writes them. On a cluster (RAY_ADDRESS) the export
and output directories must be paths every node sees (a shared volume mounted at the same path),
as for the ECS launcher.

Ray's own run state (RunConfig.storage_path) goes to <home>/raw/ray-train/: it holds the workers'
reported numbers only, but a worker's failure text is stored there too and could quote a record,
so it stays in the raw zone. A Ray started here spills into the raw zone too (core/scale/engines.py).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

# Settings every worker gets, on this machine or a cluster's (whose environment is not ours).
WORKER_ENV = ("HF_HUB_OFFLINE", "TOKENIZERS_PARALLELISM", "GX_ANALYTICS_ENABLED", "FT_PIPELINE_HOME",
              "OMP_NUM_THREADS")


def storage_path() -> Path:
    from ft_pipeline.core.paths import raw_zone

    return raw_zone() / "ray-train"


def _train_loop(loop_config: dict) -> None:
    """One Ray Train worker: the standalone trainer on this worker's rank."""
    from ft_pipeline.core.training.config import TrainingConfig
    from ft_pipeline.core.training.train import train

    config = TrainingConfig.from_dict(loop_config["config"])
    try:
        train(config, Path(loop_config["data_dir"]), Path(loop_config["output_dir"]),
              max_steps=loop_config["max_steps"])
    except (FileNotFoundError, ValueError) as exc:
        # A user's mistake: its one line travels back as the error's text, without the worker's
        # traceback, so the driver can report it as the in-process launcher does.
        raise ValueError(f"{type(exc).__name__}: {exc}") from None


def train_on_ray(config, data_dir: Path, output_dir: Path, *, num_workers: int = 1,
                 max_steps: int | None = None) -> dict:
    """Trains on Ray (a cluster at RAY_ADDRESS, else a Ray started here); returns the metrics that
    rank 0 wrote to output_dir/metrics.json. A bad RAY_ADDRESS is an EngineError (a ValueError);
    a user's mistake found by the trainer is a ValueError with its one line."""
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from ft_pipeline.core.scale.engines import connect

    connect()
    # GPUs when the cluster has them: the driver (a Dagster run worker) often has none itself.
    use_gpu = ray.cluster_resources().get("GPU", 0) >= 1
    storage = storage_path()
    storage.mkdir(parents=True, exist_ok=True)
    env = {name: os.environ[name] for name in WORKER_ENV if os.environ.get(name)}
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config={"config": config.to_dict(), "data_dir": str(data_dir),
                           "output_dir": str(output_dir), "max_steps": max_steps},
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu),
        run_config=RunConfig(
            name=f"train-{Path(output_dir).name}", storage_path=str(storage),
            # A lost worker restarts the group once; train() resumes from its newest checkpoint.
            failure_config=FailureConfig(max_failures=1),
            worker_runtime_env={"env_vars": env},
        ),
    )
    try:
        trainer.fit()
    except ray.train.WorkerGroupError as exc:
        for failure in exc.worker_failures.values():
            cause = getattr(failure, "cause", failure)
            if isinstance(cause, ValueError):
                raise ValueError(str(cause).split(": ", 1)[-1]) from None
        raise
    path = Path(output_dir) / "metrics.json"
    if not path.is_file():  # an output_dir the workers wrote on their own disks, not a shared one
        raise RuntimeError(f"Ray Train finished without {path}: is the output directory shared with the workers?")
    return json.loads(path.read_text())
