"""TrainerResource through Dagster: in-process, a Pipes subprocess, 2-rank DDP, and the ECS request."""
import json

import dagster as dg
import pytest

from ft_pipeline.core.training.config import TrainingConfig
from ft_pipeline.defs.training import resources
from ft_pipeline.defs.training.resources import TrainerResource
from ft_pipeline_tests.core.training.helpers import tiny_config, write_export


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return write_export(tmp_path_factory.mktemp("export"))


def _materialize(trainer: TrainerResource, config: TrainingConfig, data, out):
    @dg.asset
    def adapter(context: dg.AssetExecutionContext, trainer: TrainerResource) -> dg.Output:
        metrics = trainer.launch(context, config, data, out)
        context.add_output_metadata({"steps": metrics["steps"]})
        # Pipes modes switch the asset to a typed event stream: the value must come back wrapped
        # in dg.Output (a bare dict is refused), with metadata from add_output_metadata kept.
        return dg.Output(metrics)

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([adapter], resources={"trainer": trainer}, instance=instance)
    assert result.success
    messages = [e.user_message for e in instance.all_logs(result.run_id)]
    [materialization] = result.asset_materializations_for_node("adapter")
    assert materialization.metadata["steps"].value == result.output_for_node("adapter")["steps"]
    return result.output_for_node("adapter"), messages


def test_in_process_logs_progress(tiny_model_dir, export_dir, tmp_path):
    config = tiny_config(tiny_model_dir, max_steps=4, logging_steps=2)
    metrics, messages = _materialize(TrainerResource(), config, export_dir, tmp_path / "out")
    assert metrics["steps"] == 4 and (tmp_path / "out" / "adapter_model.safetensors").is_file()
    assert any(m.startswith("step 2/4: loss=") for m in messages)
    assert any(m.startswith("training done: 4 steps") for m in messages)


def test_subprocess_reports_metrics_over_pipes(tiny_model_dir, export_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    config = tiny_config(tiny_model_dir, max_steps=4, logging_steps=2)
    metrics, messages = _materialize(TrainerResource(mode="subprocess"), config, export_dir, tmp_path / "out")
    assert metrics["steps"] == 4
    assert metrics == json.loads((tmp_path / "out" / "metrics.json").read_text())
    # These lines were written by the child process and arrived through the Pipes channel.
    assert any(m.startswith("step 4/4: loss=") for m in messages)
    assert any(m.startswith("training done: 4 steps") for m in messages)


def test_ddp_two_cpu_ranks(tiny_model_dir, export_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    config = tiny_config(tiny_model_dir, max_steps=4, logging_steps=2, per_device_batch_size=2)
    trainer = TrainerResource(mode="accelerate", num_processes=2)
    metrics, messages = _materialize(trainer, config, export_dir, tmp_path / "out")
    assert metrics["world_size"] == 2 and metrics["steps"] == 4
    # Rank 0 alone talks to Dagster and writes the adapter.
    assert sum(m.startswith("training done") for m in messages) == 1
    assert sorted(p.name for p in (tmp_path / "out").glob("adapter_*")) == [
        "adapter_config.json", "adapter_model.safetensors"]
    assert not (tmp_path / "out" / ".partial").exists()


def test_commands_per_mode(monkeypatch, tmp_path):
    config = TrainingConfig()
    sub = TrainerResource(mode="subprocess", python="/py").command(config, tmp_path / "d", tmp_path / "o", 7)
    assert sub[:3] == ["/py", "-m", "ft_pipeline.core.training.pipes_entry"]
    assert TrainingConfig.from_dict(json.loads(sub[sub.index("--config-json") + 1])) == config
    assert sub[-2:] == ["--max-steps", "7"]

    monkeypatch.setattr(resources, "_has_cuda", lambda: False)
    cpu = TrainerResource(mode="accelerate", num_processes=2, python="/py").command(config, tmp_path, tmp_path)
    assert cpu[:7] == ["/py", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]
    monkeypatch.setattr(resources, "_has_cuda", lambda: True)
    gpu = TrainerResource(mode="accelerate", num_processes=4, python="/py").command(config, tmp_path, tmp_path)
    assert gpu[:6] == ["/py", "-m", "accelerate.commands.launch", "--num_processes", "4", "--multi_gpu"]
    fsdp = TrainerResource(mode="accelerate", num_processes=4, accelerate_config="fsdp.yaml").command(
        config, tmp_path, tmp_path)
    assert "--config_file" in fsdp and "--multi_gpu" not in fsdp


def test_ecs_run_task_request(tmp_path):
    trainer = TrainerResource(mode="ecs", ecs_cluster="ml", ecs_task_definition="ft-trainer:3",
                              ecs_subnets="subnet-a, subnet-b", ecs_security_groups="sg-1")
    config = TrainingConfig(method="dpo")
    params = trainer.ecs_run_task_params(config, tmp_path / "data", tmp_path / "out")
    assert params["cluster"] == "ml" and params["taskDefinition"] == "ft-trainer:3"
    net = params["networkConfiguration"]["awsvpcConfiguration"]
    assert net["subnets"] == ["subnet-a", "subnet-b"] and net["securityGroups"] == ["sg-1"]
    override = params["overrides"]["containerOverrides"][0]
    assert override["name"] == "trainer"
    command = override["command"]
    assert command[:3] == ["python", "-m", "ft_pipeline.core.training.pipes_entry"]
    assert TrainingConfig.from_dict(json.loads(command[command.index("--config-json") + 1])) == config
    assert {"name": "HF_HUB_OFFLINE", "value": "1"} in override["environment"]


def test_ecs_needs_its_settings(tmp_path):
    with pytest.raises(ValueError, match="ecs_cluster"):
        TrainerResource(mode="ecs").ecs_run_task_params(TrainingConfig(), tmp_path, tmp_path)


def test_ecs_settings_can_come_from_env(monkeypatch):
    monkeypatch.setenv("FT_ECS_CLUSTER", "from-env")

    @dg.asset
    def probe(trainer: TrainerResource) -> str:
        return trainer.ecs_cluster

    result = dg.materialize([probe], resources={"trainer": TrainerResource(
        mode="ecs", ecs_cluster=dg.EnvVar("FT_ECS_CLUSTER"))}, instance=dg.DagsterInstance.ephemeral())
    assert result.output_for_node("probe") == "from-env"


@pytest.mark.parametrize("variable, value, overrides, says", [
    ("FT_PIPELINE_TRAINER_PROCESSES", "two", {},
     "FT_PIPELINE_TRAINER_PROCESSES='two': must be a whole number >= 1 (training processes)"),
    ("FT_PIPELINE_TRAINER_PROCESSES", "0", {},
     "FT_PIPELINE_TRAINER_PROCESSES='0': must be a whole number >= 1 (training processes)"),
    ("FT_PIPELINE_TRAINER_MODE", "slurm", {},
     "FT_PIPELINE_TRAINER_MODE / TrainerResource.mode='slurm': must be one of in_process, subprocess, accelerate, ecs, ray"),
    # a mistake only the trainer can find, reported as `ft-pipeline train` reports it (exit 2 there)
    ("FT_PIPELINE_TRAINER_MODE", "in_process", {"price_per_hour": 1e9, "budget_usd": 0.0},
     "TrainingConfig.budget_usd=0.0: estimated cost $"),
])
def test_a_trainer_mistake_fails_training_in_one_line(monkeypatch, tiny_model_dir, export_dir, tmp_path,
                                                      variable, value, overrides, says):
    from ft_pipeline.defs.resources import resources

    monkeypatch.setenv(variable, value)
    trainer = resources().resources["trainer"]  # as the code location builds it when it loads

    @dg.asset
    def adapter(context: dg.AssetExecutionContext, trainer: TrainerResource) -> dict:
        return trainer.launch(context, tiny_config(tiny_model_dir, **overrides), export_dir, tmp_path / "o")

    result = dg.materialize([adapter], resources={"trainer": trainer}, instance=dg.DagsterInstance.ephemeral(),
                            raise_on_error=False)
    [failure] = [e.step_failure_data for e in result.all_events if e.is_step_failure]
    description = failure.user_failure_data.description
    assert description.startswith(says) and "\n" not in description
    assert not (tmp_path / "o" / "adapter_model.safetensors").exists()


def test_the_code_location_loads_with_a_mistaken_trainer_variable():
    import os
    import subprocess
    import sys

    code = "from ft_pipeline.definitions import defs; print(defs.resources['trainer'].setup_error)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "FT_PIPELINE_TRAINER_PROCESSES": "two"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "FT_PIPELINE_TRAINER_PROCESSES='two': must be a whole number >= 1 (training processes)"
