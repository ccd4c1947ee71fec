"""TrainerResource: where adapter_weights trains — this process, a subprocess, N processes, or ECS.

Every mode runs the same program (ft_pipeline.core.training.train) and ends with the same
output directory and metrics.json; only the launcher differs:

    in_process   train() in the Dagster run worker; progress through context.log.
    subprocess   `python -m ft_pipeline.core.training.pipes_entry` under Dagster Pipes: a crash
                 or OOM in training cannot take the run worker down, logs stream back.
    accelerate   the same entry point on num_processes ranks (DDP). On GPUs:
                 `accelerate launch --multi_gpu --num_processes N` (give accelerate_config for
                 FSDP / DeepSpeed). Without GPUs accelerate would start a single process, so it
                 is `torch.distributed.run --standalone --nproc_per_node N` with the gloo backend.
    ecs          an ECS task (Fargate or an EC2 GPU capacity provider) through PipesECSClient;
                 the container image must hold this package. data_dir / output_dir are passed
                 as-is, so they must be paths the task can see (an EFS volume mounted at the
                 same path in the task definition); logs come back via CloudWatch.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import dagster as dg

from ft_pipeline.core.training.config import TrainingConfig

MODES = ("in_process", "subprocess", "accelerate", "ecs")
ENTRY_MODULE = "ft_pipeline.core.training.pipes_entry"
# Keep subprocesses offline and quiet, whatever the parent's environment says.
CHILD_ENV = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "GX_ANALYTICS_ENABLED": "false"}


class TrainerResource(dg.ConfigurableResource):
    """Launches training for adapter_weights; returns the run's metrics dict."""

    mode: str = "in_process"
    num_processes: int = 1
    python: str = sys.executable
    accelerate_config: str = ""
    hf_hub_offline: bool = True
    # ECS (mode="ecs"); set from the environment, e.g. ecs_cluster=dg.EnvVar("FT_ECS_CLUSTER").
    ecs_cluster: str = ""
    ecs_task_definition: str = ""
    ecs_container: str = "trainer"
    ecs_subnets: str = ""  # comma-separated subnet ids
    ecs_security_groups: str = ""  # comma-separated security group ids
    ecs_launch_type: str = "FARGATE"
    ecs_region: str = ""
    setup_error: str = ""  # a mistake in the environment it was configured from; training refuses with it

    def launch(self, context, config: TrainingConfig, data_dir, output_dir, max_steps: int | None = None) -> dict:
        """The trainer's metrics; a configuration mistake (this resource's, or the TrainingConfig's
        that only the trainer can find) is a dg.Failure with one line naming it."""
        if self.setup_error:
            raise dg.Failure(description=self.setup_error)
        if self.mode not in MODES:
            raise dg.Failure(description=f"FT_PIPELINE_TRAINER_MODE / TrainerResource.mode={self.mode!r}: "
                                         f"must be one of {', '.join(MODES)}")
        if self.num_processes < 1:
            raise dg.Failure(description=f"TrainerResource.num_processes={self.num_processes}: must be >= 1")
        data_dir, output_dir = Path(data_dir), Path(output_dir)
        context.log.info(f"training {config.method} on {config.base_model} ({self.mode}, "
                         f"{self.num_processes} process(es)) into {output_dir}")
        if self.mode == "in_process":
            return self._in_process(context, config, data_dir, output_dir, max_steps)
        if self.mode == "ecs":
            return self._ecs(context, config, data_dir, output_dir, max_steps)
        client = dg.PipesSubprocessClient(env=self._child_env())
        invocation = client.run(context=context, command=self.command(config, data_dir, output_dir, max_steps))
        return self._read_metrics(context, invocation, output_dir)

    # --- modes ---------------------------------------------------------------------------
    def _in_process(self, context, config, data_dir, output_dir, max_steps) -> dict:
        from ft_pipeline.core.training.pipes_entry import format_event
        from ft_pipeline.core.training.train import train

        def on_event(event: dict) -> None:
            line = format_event(event)
            if line:
                context.log.info(line)

        try:
            return train(config, data_dir, output_dir, max_steps=max_steps, callback=on_event)
        except (FileNotFoundError, ValueError) as exc:  # what `ft-pipeline train` reports as exit 2
            raise dg.Failure(description=str(exc)) from None

    def _ecs(self, context, config, data_dir, output_dir, max_steps) -> dict:
        import boto3
        from dagster_aws.pipes import PipesECSClient

        ecs = boto3.client("ecs", region_name=self.ecs_region or None)
        invocation = PipesECSClient(client=ecs).run(
            context=context,
            run_task_params=self.ecs_run_task_params(config, data_dir, output_dir, max_steps),
            pipes_container_name=self.ecs_container,
        )
        return self._read_metrics(context, invocation, output_dir)

    # --- commands ------------------------------------------------------------------------
    def entry_args(self, config: TrainingConfig, data_dir: Path, output_dir: Path, max_steps=None) -> list[str]:
        # The config travels inline: no temp file that a remote task or other host cannot see.
        args = ["-m", ENTRY_MODULE, "--config-json", json.dumps(config.to_dict()),
                "--data", str(data_dir), "--output", str(output_dir)]
        return args + (["--max-steps", str(max_steps)] if max_steps is not None else [])

    def command(self, config: TrainingConfig, data_dir: Path, output_dir: Path, max_steps=None) -> list[str]:
        entry = self.entry_args(config, data_dir, output_dir, max_steps)
        if self.mode == "subprocess" or (self.mode == "accelerate" and self.num_processes == 1):
            return [self.python, *entry]
        if self.mode == "accelerate" and _has_cuda():
            launch = [self.python, "-m", "accelerate.commands.launch", "--num_processes", str(self.num_processes)]
            launch += ["--config_file", self.accelerate_config] if self.accelerate_config else ["--multi_gpu"]
            return [*launch, *entry]
        if self.mode == "accelerate":
            return [self.python, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node", str(self.num_processes), *entry]
        raise ValueError(f"mode {self.mode!r} has no local command")

    def ecs_run_task_params(self, config: TrainingConfig, data_dir: Path, output_dir: Path, max_steps=None) -> dict:
        missing = [n for n in ("ecs_cluster", "ecs_task_definition", "ecs_subnets") if not getattr(self, n)]
        if missing:
            raise ValueError(f"TrainerResource mode='ecs' needs {', '.join(missing)}")
        network = {"subnets": _split(self.ecs_subnets), "assignPublicIp": "DISABLED"}
        if self.ecs_security_groups:
            network["securityGroups"] = _split(self.ecs_security_groups)
        return {
            "cluster": self.ecs_cluster,
            "taskDefinition": self.ecs_task_definition,
            "launchType": self.ecs_launch_type,
            "count": 1,
            "networkConfiguration": {"awsvpcConfiguration": network},
            "overrides": {"containerOverrides": [{
                "name": self.ecs_container,
                # The image's python; the Pipes bootstrap env vars are added by PipesECSClient.
                "command": ["python", *self.entry_args(config, data_dir, output_dir, max_steps)],
                "environment": [{"name": k, "value": v} for k, v in self._child_env().items()],
            }]},
        }

    # --- helpers -------------------------------------------------------------------------
    def _child_env(self) -> dict[str, str]:
        env = dict(CHILD_ENV)
        if not self.hf_hub_offline:
            env.pop("HF_HUB_OFFLINE")
        return env

    def _read_metrics(self, context, invocation, output_dir: Path) -> dict:
        """metrics.json is the record; the Pipes message is a cross-check that this run wrote it."""
        reported = [m["metrics"] for m in invocation.get_custom_messages() if isinstance(m, dict) and "metrics" in m]
        path = output_dir / "metrics.json"
        if path.is_file():
            metrics = json.loads(path.read_text())
        elif reported:  # remote run whose output_dir is not mounted here
            metrics = reported[-1]
        else:
            raise RuntimeError(f"training finished without metrics: neither {path} nor a Pipes report")
        if reported and reported[-1].get("steps") != metrics.get("steps"):
            context.log.warning(f"{path} does not match the steps this run reported; it may be stale")
        return metrics


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


class TrainingPlanResource(dg.ConfigurableResource):
    """How to train: the one knob that both fit_assessment (the cost estimate) and adapter_weights
    (the run) read, so the estimate is always of the run that will happen."""

    preset: str = ""  # a TrainingConfig YAML; default: the bundled model's CPU preset for the method
    method: str = ""  # sft | dpo | grpo; default: the preset's, else the task's
    max_steps: int = 0  # override the preset's step count (0: keep)

    def preset_path(self, task_method: str) -> Path:
        from ft_pipeline.core.training.recipe import preset_path

        return preset_path(self.preset, self.method or task_method)

    def training_config(self, task_method: str, privacy: dict | None = None) -> TrainingConfig:
        """The run's TrainingConfig, with the task file's `privacy:` over the preset's; a user's
        mistake (no such preset, a method the preset does not train, DP for DPO) is a ValueError
        naming the file and the field."""
        path = self.preset_path(task_method)
        try:
            config = TrainingConfig.from_yaml(path)
        except FileNotFoundError:
            raise ValueError(f"{path}: no such training preset") from None
        if self.method and config.method != self.method:
            raise ValueError(f"{path}: field method: the preset trains {config.method}, but {self.method} was asked for")
        if self.max_steps:
            config.max_steps = self.max_steps
        if privacy:
            import dataclasses

            try:
                config = dataclasses.replace(config, privacy={**dataclasses.asdict(config.privacy), **privacy})
            except ValueError as exc:
                raise ValueError(f"{path} with the task file's privacy: {exc}") from None
        return config
