"""SIGKILL the standalone trainer at random points, again and again (while it starts, between
steps, while it writes a checkpoint), then let it finish: it ends with the adapter and the losses
of a run that was never killed. A resume that lost its place in the data, its optimizer state or
a half-written checkpoint would train other steps and end elsewhere. One kill is placed on purpose
right behind a checkpoint in the second epoch, where a resume once trained the rest of the epoch on
another order (the length-grouped sampler's order came from the RNG before it was restored)."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ft_pipeline_tests.core.training.helpers import child_env, tiny_config, write_export

KILLS = 12 if os.environ.get("FT_ATTACK_FULL") else 3
MAX_STEPS = 8 * KILLS + 8  # room for every kill to land before the run ends
SEED = int(os.environ.get("FT_ATTACK_SEED", "23"))


def _command(cfg: Path, data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "ft_pipeline.core.training.train", "--config", str(cfg), "--data", str(data),
            "--output", str(out)]


def _latest_checkpoint(out: Path) -> int:
    steps = [int(c.name.split("-")[1]) for c in (out / "checkpoints").glob("checkpoint-*")
             if (c / "trainer_state.json").is_file()]
    return max(steps, default=0)


def _run_and_kill(cfg: Path, data: Path, out: Path, rng: random.Random) -> str:
    """One trainer process killed at a random point: during start-up (a quarter of the time), or a
    random moment after it saved a checkpoint newer than any before, so each kill moves it on."""
    proc = subprocess.Popen(_command(cfg, data, out), env=child_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        if rng.random() < 0.25:
            time.sleep(rng.uniform(0.1, 3.0))
            where = "start-up"
        else:
            seen, deadline = _latest_checkpoint(out), time.time() + 240
            while _latest_checkpoint(out) <= seen and proc.poll() is None and time.time() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.5))
            where = f"after checkpoint {_latest_checkpoint(out)}"
        assert proc.poll() is None, f"the trainer ended ({proc.returncode}) before kill {where}: raise MAX_STEPS"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return where
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _finish(cfg: Path, data: Path, out: Path) -> dict:
    done = subprocess.run(_command(cfg, data, out), env=child_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((out / "metrics.json").read_text())


def _adapter(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    return write_export(tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def unkilled(tmp_path_factory, tiny_model_dir, export) -> tuple[Path, dict]:
    """(config, result dir): the run that was never killed, which every killed run must end as."""
    root = tmp_path_factory.mktemp("unkilled")
    cfg = root / "config.yaml"
    # 32 training rows at 2 per step: 16-step epochs, so kills land in the first and later epochs.
    tiny_config(tiny_model_dir, max_steps=MAX_STEPS, save_steps=2, logging_steps=2, per_device_batch_size=2,
                max_length=48).to_yaml(cfg)
    _finish(cfg, export, root / "out")
    return cfg, root / "out"


def _assert_same_run(reference: Path, out: Path, why) -> None:
    """Same logged steps, losses within 1e-4 relative, every adapter tensor within 1e-4."""
    import torch

    losses = {name: [(h["step"], h["loss"]) for h in json.loads((d / "metrics.json").read_text())["history"]
                     if "loss" in h] for name, d in (("unkilled", reference), ("killed", out))}
    assert [s for s, _ in losses["killed"]] == [s for s, _ in losses["unkilled"]], why
    off = [(step, a, b) for (step, a), (_, b) in zip(losses["unkilled"], losses["killed"])
           if abs(a - b) > 1e-4 * abs(a)]
    assert not off, (why, off[:3])
    got, want = _adapter(out), _adapter(reference)
    assert got.keys() == want.keys()
    apart = [name for name in want if not torch.allclose(got[name], want[name], rtol=1e-4, atol=1e-6)]
    assert not apart, (why, apart[:3])


def test_a_trainer_killed_anywhere_resumes_to_the_unkilled_result(tmp_path, unkilled, export):
    cfg, reference = unkilled
    out, rng = tmp_path / "killed", random.Random(SEED)
    kills = [_run_and_kill(cfg, export, out, rng) for _ in range(KILLS)]
    assert not (out / "metrics.json").exists(), "a killed run left a result behind"
    resumed = _finish(cfg, export, out)
    assert resumed["resumed_from"] is not None and resumed["steps"] == MAX_STEPS, kills
    _assert_same_run(reference, out, kills)


# Kills the trainer from inside, at once after it saved checkpoint-N (rotation done): the same
# point on every machine, however loaded.
KILL_BEHIND_CHECKPOINT = """
import os, signal, sys
import transformers.trainer as T
step, save = int(sys.argv[1]), T.Trainer._save_checkpoint
def save_then_die(self, model, trial):
    save(self, model, trial)
    if self.state.global_step == step:
        os.kill(os.getpid(), signal.SIGKILL)
T.Trainer._save_checkpoint = save_then_die
from ft_pipeline.core.training.train import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("step", [18])  # 2 steps into the second 16-step epoch
def test_a_trainer_killed_right_behind_a_checkpoint_of_a_later_epoch_resumes_exactly(tmp_path, unkilled, export,
                                                                                     step):
    cfg, reference = unkilled
    out = tmp_path / "killed"
    killed = subprocess.run([sys.executable, "-c", KILL_BEHIND_CHECKPOINT, str(step), *_command(cfg, export, out)[3:]],
                            env=child_env(), capture_output=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert _latest_checkpoint(out) == step
    resumed = _finish(cfg, export, out)
    assert resumed["resumed_from"] == step and resumed["steps"] == MAX_STEPS
    _assert_same_run(reference, out, f"killed behind checkpoint {step}")
