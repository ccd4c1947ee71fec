"""ft-pipeline train's entry point: user errors are one line and exit 2; success prints JSON last."""
import json
import re
import subprocess
import sys

import pytest

from ft_pipeline.core.training.train import main
from ft_pipeline_tests.core.training.helpers import child_env, tiny_config


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("method: sft\nlora_rank: [8\n", "invalid YAML"),
        ("method: sft\nlora_rank: 0\n", "lora_rank"),
        ("method: rlhf\n", "method"),
        ("nonsense_field: 1\n", "nonsense_field"),
    ],
)
def test_config_errors_exit_2_with_one_line(tmp_path, capsys, yaml_text, expected):
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    assert main(["--config", str(path), "--data", str(tmp_path), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and expected in err and "\n" not in err and "Traceback" not in err


def test_missing_config_and_data_exit_2(tmp_path, tiny_model_dir, capsys):
    assert main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    cfg = tmp_path / "c.yaml"
    tiny_config(tiny_model_dir).to_yaml(cfg)
    assert main(["--config", str(cfg), "--data", str(tmp_path / "nodata"), "--output", str(tmp_path / "o")]) == 2
    assert "nodata" in capsys.readouterr().err


def test_a_base_model_that_cannot_be_loaded_exits_2_naming_it(tmp_path, tiny_export, capsys):
    """A hub id with a typo (the hub is unreachable here, as offline anywhere)."""
    cfg = tmp_path / "c.yaml"
    tiny_config(tmp_path, base_model="Qwen/Qwen2.5-7B-Instrct").to_yaml(cfg)
    assert main(["--config", str(cfg), "--data", str(tiny_export), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err  # after the datasets library's progress bars (\r-separated)
    assert err.splitlines()[-1].startswith("error: TrainingConfig.base_model='Qwen/Qwen2.5-7B-Instrct': cannot load it (")
    assert "Traceback" not in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize(("task_yaml", "expected"), [
    (None, r"task.yaml: no task file; GRPO scores answers with the task's verifier"),
    ("name: t\ntype: essay\n", r"task.yaml line 2: field type: 'essay' is not a task type"),
])
def test_grpo_without_a_valid_task_file_exits_2_naming_it(tmp_path, tiny_model_dir, capsys, task_yaml, expected):
    from ft_pipeline_tests.core.training.helpers import write_export

    data = write_export(tmp_path / "export", repeats=1)
    (data / "task.yaml").unlink()
    if task_yaml:
        (data / "task.yaml").write_text(task_yaml)
    cfg = tmp_path / "c.yaml"
    tiny_config(tiny_model_dir, method="grpo").to_yaml(cfg)
    assert main(["--config", str(cfg), "--data", str(data), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {data / 'task.yaml'}") and "\n" not in err
    assert re.search(expected, err), err
    assert not (tmp_path / "o").exists()  # stopped before any training


def test_cli_trains_and_prints_json_summary_last(tmp_path, tiny_model_dir, tiny_export):
    cfg = tmp_path / "c.yaml"
    tiny_config(tiny_model_dir, logging_steps=1, max_eval_examples=1).to_yaml(cfg)
    proc = subprocess.run(
        [sys.executable, "-m", "ft_pipeline.core.training.train", "--config", str(cfg), "--data", str(tiny_export),
         "--output", str(tmp_path / "out"), "--max-steps", "3"],
        capture_output=True, text=True, env=child_env(), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 3 and summary["output"] == str(tmp_path / "out")
    assert summary["eval_examples"] == 1  # max_eval_examples bounds the trainer's own end-of-run evaluation
    assert "it/s" in proc.stderr or "s/it" in proc.stderr  # the tqdm progress bar
    # What it trained on, as digests, beside the adapter: an erasure finds an adapter trained here
    # and any adapter later continued from it.
    from ft_pipeline.core.training.manifest import read_training_manifest, training_manifest

    manifest = read_training_manifest(tmp_path / "out")
    assert manifest == training_manifest(tiny_export, "sft")
