"""The `ray` trainer launcher: Ray Train's TorchTrainer running the standalone trainer on 2 CPU
workers (gloo), against the in-process launcher on the same tiny-model SFT."""
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ft_pipeline.core.training import manifest
from ft_pipeline.defs.training.resources import TrainerResource
from ft_pipeline_tests.core.training.helpers import tiny_config, write_export

pytest.importorskip("ray")
BIN = Path(sys.executable).parent / "ft-pipeline"


def _launch(trainer: TrainerResource, config, data: Path, out: Path) -> tuple[dict, list[str]]:
    """adapter_weights' order: the manifest written first, then the launcher trains into `out`."""
    @dg.asset
    def adapter(context: dg.AssetExecutionContext, trainer: TrainerResource) -> dg.Output:
        manifest.write_training_manifest(out, manifest.training_manifest(data, config.method))
        return dg.Output(trainer.launch(context, config, data, out))

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([adapter], resources={"trainer": trainer}, instance=instance)
    assert result.success
    return result.output_for_node("adapter"), [e.user_message for e in instance.all_logs(result.run_id)]


def _adapter_config(adapter_dir: Path) -> dict:
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    # peft writes target_modules from a set: its order follows each process's string hashing.
    return {**config, "target_modules": sorted(config["target_modules"])}


def _shapes(adapter_dir: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(adapter_dir / "adapter_model.safetensors"), "pt") as fh:
        return {name: tuple(fh.get_slice(name).get_shape()) for name in fh.keys()}


def test_ray_launcher_trains_the_in_process_adapter_into_the_same_place(tiny_model_dir, tmp_path, monkeypatch):
    from ft_pipeline.core.scale.ray_data import shutdown

    monkeypatch.setenv("FT_PIPELINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    data = write_export(tmp_path / "export")
    config = tiny_config(tiny_model_dir, max_steps=4, logging_steps=2, per_device_batch_size=2)
    local, _ = _launch(TrainerResource(), config, data, tmp_path / "local")
    try:
        on_ray, messages = _launch(TrainerResource(mode="ray", num_processes=2), config, data, tmp_path / "ray")
    finally:
        shutdown()
    local_dir, ray_dir = tmp_path / "local", tmp_path / "ray"
    assert on_ray["world_size"] == 2 and on_ray["steps"] == local["steps"] == 4
    assert on_ray == json.loads((ray_dir / "metrics.json").read_text())
    assert any(m.startswith("training done: 4 steps") for m in messages)
    # The same files, the same adapter config and tensor shapes, the same manifest of what it read.
    assert sorted(p.name for p in ray_dir.iterdir()) == sorted(p.name for p in local_dir.iterdir())
    assert _adapter_config(ray_dir) == _adapter_config(local_dir)
    assert _shapes(ray_dir) == _shapes(local_dir)
    assert manifest.read_training_manifest(ray_dir) == manifest.read_training_manifest(local_dir)
    assert not (ray_dir / "checkpoints").exists() and not (ray_dir / ".partial").exists()
    # Ray's run state and the session of the Ray started here are in the raw zone, not /tmp/ray.
    raw = tmp_path / "home" / "raw"
    assert list((raw / "ray-train").glob("train-ray*"))
    sessions = [p for p in (raw / "ray").glob("session_*") if not p.is_symlink()]
    assert sessions and any((s / "logs").is_dir() for s in sessions)


def test_a_trainer_mistake_on_ray_is_one_line(tiny_model_dir, tmp_path, monkeypatch):
    """The trainer's own refusal (max_length leaves no answer token) comes back from the Ray worker
    as the same one line the in-process launcher gives, not a worker's traceback."""
    from ft_pipeline.core.scale.ray_data import shutdown

    monkeypatch.setenv("FT_PIPELINE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    data = write_export(tmp_path / "export", repeats=1)
    config = tiny_config(tiny_model_dir, max_steps=2, max_length=8)

    @dg.asset
    def adapter(context: dg.AssetExecutionContext, trainer: TrainerResource) -> dict:
        return trainer.launch(context, config, data, tmp_path / "out")

    try:
        result = dg.materialize([adapter], resources={"trainer": TrainerResource(mode="ray")},
                                instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    finally:
        shutdown()
    assert not result.success
    [failure] = [e.step_failure_data for e in result.all_events if e.is_step_failure]
    description = failure.user_failure_data.description
    assert description.startswith("TrainingConfig.max_length=8: truncation leaves no answer token"), description
    assert "\n" not in description


def test_run_names_a_trainer_cluster_that_does_not_answer_before_any_work(tmp_path):
    """FT_PIPELINE_TRAINER_MODE=ray with a RAY_ADDRESS where no Ray listens: `ft-pipeline run` stops
    at the request check, exit 2 and one line, before ingesting anything."""
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "FT_PIPELINE_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path / "dh"),
           "FT_PIPELINE_TRAINER_MODE": "ray", "RAY_ADDRESS": "127.0.0.1:9",
           "RAY_gcs_server_port_wait_time_s": "1"}
    (tmp_path / "dh").mkdir()
    out = subprocess.run([str(BIN), "run", str(repo / "data" / "demo" / "records.jsonl"),
                          "--task", str(repo / "configs" / "tasks" / "demo-triage.yaml")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 2, out.stderr[-800:]
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith(
        "ft-pipeline run: error: FT_PIPELINE_TRAINER_MODE=ray: RAY_ADDRESS=127.0.0.1:9")
    assert not (tmp_path / "home" / "raw" / "raw_dataset").exists()
