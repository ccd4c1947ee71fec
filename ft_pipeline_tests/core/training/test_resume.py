"""Kill a training run after its first checkpoint; the rerun resumes there and stops at max_steps."""
import dataclasses
import json
import signal
import subprocess
import sys
import time

from ft_pipeline_tests.core.training.helpers import child_env, tiny_config

MAX_STEPS = 150


def _command(cfg, data, out):
    return [sys.executable, "-m", "ft_pipeline.core.training.train", "--config", str(cfg), "--data", str(data),
            "--output", str(out)]


def test_resume_after_sigkill(tmp_path, tiny_model_dir, tiny_export):
    cfg, out = tmp_path / "c.yaml", tmp_path / "out"
    tiny_config(tiny_model_dir, max_steps=MAX_STEPS, save_steps=5, per_device_batch_size=2,
                max_length=48).to_yaml(cfg)
    proc = subprocess.Popen(_command(cfg, tiny_export, out), env=child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if any((c / "trainer_state.json").is_file() for c in (out / "checkpoints").glob("checkpoint-*")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the first run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (out / "metrics.json").exists() and not (out / "adapter_model.safetensors").exists()

    rerun = subprocess.run(_command(cfg, tiny_export, out), env=child_env(), capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from"] is not None and metrics["resumed_from"] % 5 == 0
    assert 5 <= metrics["resumed_from"] < MAX_STEPS
    assert metrics["steps"] == MAX_STEPS
    # Log history survives the kill: it starts at the first logging step, not at the resume point.
    logged = [h["step"] for h in metrics["history"] if "loss" in h]
    assert logged[0] == 5 and logged[-1] == MAX_STEPS


class Interrupted(Exception):
    pass


def _interrupted_run(config, data, out):
    """A real run interrupted at step 3, after its step-2 checkpoint was saved."""
    import pytest

    from ft_pipeline.core.training.train import train

    def stop_at_step_3(event):
        if event["event"] == "log" and event["step"] == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(config, data, out, callback=stop_at_step_3)
    assert (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file()


def test_changed_config_does_not_resume(tmp_path, tiny_model_dir, tiny_export):
    """Real checkpoints of another config (a run interrupted after its step-2 checkpoint) are
    discarded, not resumed into the wrong run; the same config resumes from them."""
    import shutil

    from ft_pipeline.core.training.train import train

    first = tiny_config(tiny_model_dir, max_steps=4, save_steps=2, logging_steps=3)
    _interrupted_run(first, tiny_export, tmp_path / "same")
    shutil.copytree(tmp_path / "same", tmp_path / "changed")

    changed = train(dataclasses.replace(first, learning_rate=1e-3), tiny_export, tmp_path / "changed")
    assert changed["resumed_from"] is None and changed["steps"] == 4
    same = train(first, tiny_export, tmp_path / "same")
    assert same["resumed_from"] == 2 and same["steps"] == 4


def test_changed_data_does_not_resume(tmp_path, tiny_model_dir, tiny_export, capfd):
    """The same config on other data starts afresh and says why: resuming trained on a mix of the
    two datasets and recorded only the second as what the adapter was trained on."""
    import shutil

    from ft_pipeline.core.training.train import train

    config = tiny_config(tiny_model_dir, max_steps=4, save_steps=2, logging_steps=3)
    _interrupted_run(config, tiny_export, tmp_path / "run")
    changed = tmp_path / "changed-data"
    shutil.copytree(tiny_export, changed)
    rows = (changed / "train.jsonl").read_text().splitlines(keepends=True)
    (changed / "train.jsonl").write_text("".join(rows[1:]))  # one record fewer (an erasure, say)
    capfd.readouterr()

    metrics = train(config, changed, tmp_path / "run")
    assert metrics["resumed_from"] is None and metrics["steps"] == 4
    assert "not resumed, the training data changed" in capfd.readouterr().err


def test_folders_a_kill_left_incomplete_are_dropped_before_resuming(tmp_path, tiny_model_dir):
    """A kill half-way through rotating checkpoint-6 away left it empty with a fresh mtime, and the
    next rotation (by mtime) kept it and deleted checkpoint-8, the last complete one before the
    newest. Resuming drops such folders first; complete ones stay."""
    from ft_pipeline.core.training.checkpoints import prepare_checkpoints

    config = tiny_config(tiny_model_dir)
    ckpt = tmp_path / "checkpoints"
    prepare_checkpoints(ckpt, config, True, "data")  # records the run
    for step in (6, 8, 10, 12):
        (ckpt / f"checkpoint-{step}").mkdir()
    for step in (8, 10):
        (ckpt / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (ckpt / "checkpoint-12" / "adapter_model.safetensors").write_bytes(b"half")  # killed while saving
    resume, why = prepare_checkpoints(ckpt, config, True, "data")
    assert (resume, why) == (str(ckpt / "checkpoint-10"), None)
    assert sorted(p.name for p in ckpt.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-8"]
