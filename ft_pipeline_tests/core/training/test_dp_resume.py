"""A DP run interrupted after a checkpoint resumes there and spends exactly the privacy budget of an
uninterrupted run: the accountant's history and the RNG states are restored, not restarted."""
import dataclasses
import json

import pytest

from ft_pipeline.core.training.train import train
from ft_pipeline_tests.core.training.helpers import tiny_config

DP = {"dp": True, "target_epsilon": 8}
STEPS, SAVE = 6, 2


class Interrupted(Exception):
    pass


def dp_config(tiny_model_dir, **overrides):
    return tiny_config(tiny_model_dir, **{"max_steps": STEPS, "save_steps": SAVE, "logging_steps": 1, "privacy": DP,
                                          **overrides})


def interrupted_run(config, data, out):
    """A real DP run stopped at step 3, after its step-2 checkpoint was written."""
    def stop_at_step_3(event):
        if event["event"] == "log" and event["step"] == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(config, data, out, callback=stop_at_step_3)
    assert (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file()
    assert not (out / "metrics.json").exists()


@pytest.fixture(scope="module")
def uninterrupted(tiny_model_dir, tiny_export, tmp_path_factory):
    out = tmp_path_factory.mktemp("dp-whole")
    return {"out": out, "metrics": train(dp_config(tiny_model_dir), tiny_export, out)}


def test_resumed_dp_run_spends_the_epsilon_of_an_uninterrupted_run(uninterrupted, tiny_model_dir, tiny_export,
                                                                   tmp_path, monkeypatch):
    import peft
    import torch
    from safetensors.torch import load_file

    out = tmp_path / "out"
    interrupted_run(dp_config(tiny_model_dir), tiny_export, out)
    saved = torch.load(out / "checkpoints" / "checkpoint-2" / "state.pt", weights_only=True)
    assert saved["lora"] and all("lora_" in name for name in saved["lora"])  # only LoRA is trained and saved

    wrapped = []  # the model the resumed run trains, to check its base afterwards
    real = peft.get_peft_model
    monkeypatch.setattr(peft, "get_peft_model", lambda model, cfg: wrapped.append(model) or real(model, cfg))
    metrics = train(dp_config(tiny_model_dir), tiny_export, out)
    whole = uninterrupted["metrics"]

    assert metrics["resumed_from"] == 2 and metrics["steps"] == whole["steps"] == STEPS
    assert metrics["privacy"]["steps"] == STEPS
    assert metrics["privacy"]["epsilon"] == pytest.approx(whole["privacy"]["epsilon"], abs=1e-9)
    assert json.loads((out / "privacy.json").read_text())["epsilon"] == metrics["privacy"]["epsilon"]
    # The log covers the whole run, and the loss at each step is the uninterrupted run's: the
    # restored RNG drew the same Poisson batches and the same noise as the run that was not killed.
    assert [h["step"] for h in metrics["history"]] == list(range(1, STEPS + 1))
    assert [h["epsilon"] for h in metrics["history"]] == pytest.approx([h["epsilon"] for h in whole["history"]],
                                                                       abs=1e-9)
    assert [h.get("loss") for h in metrics["history"]] == pytest.approx([h.get("loss") for h in whole["history"]],
                                                                        rel=1e-5)
    lora = load_file(out / "adapter_model.safetensors")
    reference = load_file(uninterrupted["out"] / "adapter_model.safetensors")
    assert lora.keys() == reference.keys() and all(torch.isfinite(t).all() for t in lora.values())
    assert all(torch.allclose(lora[n], reference[n], atol=1e-6) for n in lora)
    at_checkpoint = {n.replace(".default", ""): t for n, t in saved["lora"].items()}
    assert at_checkpoint.keys() == lora.keys()
    assert all(not torch.equal(lora[n], t) for n, t in at_checkpoint.items())  # trained on past the checkpoint
    on_disk = load_file(tiny_model_dir / "model.safetensors")
    base = {n.replace("base_model.model.", "").replace(".base_layer", ""): p
            for n, p in wrapped[0].named_parameters() if "lora_" not in n}
    assert on_disk and all(torch.equal(base[n], on_disk[n]) for n in on_disk)  # the base stayed frozen
    assert not (out / "checkpoints").exists()  # complete: the adapter supersedes them


def test_a_changed_dp_config_starts_afresh_and_says_why(uninterrupted, tiny_model_dir, tiny_export, tmp_path, capfd):
    out = tmp_path / "out"
    interrupted_run(dp_config(tiny_model_dir), tiny_export, out)
    capfd.readouterr()
    changed = dp_config(tiny_model_dir, privacy={**DP, "target_epsilon": 4})
    metrics = train(changed, tiny_export, out)
    assert metrics["resumed_from"] is None and metrics["steps"] == STEPS
    assert "not resumed, the training config changed" in capfd.readouterr().err
    # Noise sized for epsilon 4 over all six steps: the interrupted epsilon-8 steps are not in it.
    assert metrics["privacy"]["epsilon"] <= 4 < uninterrupted["metrics"]["privacy"]["epsilon"]


def test_a_checkpoint_killed_while_saving_is_not_resumed(tiny_model_dir, tiny_export, tmp_path):
    """A checkpoint whose trainer_state.json was never written is skipped for the one before it."""
    out = tmp_path / "out"
    config = dataclasses.replace(dp_config(tiny_model_dir), save_steps=1, save_total_limit=3)
    interrupted_run(config, tiny_export, out)
    (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").unlink()
    assert train(config, tiny_export, out)["resumed_from"] == 1


def test_dp_run_killed_after_a_checkpoint_resumes_with_the_whole_runs_epsilon(tmp_path, tiny_model_dir, tiny_export):
    """SIGKILL, as an OOM killer or a preempted node would: the rerun resumes the last complete
    checkpoint, and its epsilon is what the accountant gives for every step the run took."""
    import signal
    import subprocess
    import sys
    import time

    from opacus.accountants import PRVAccountant

    from ft_pipeline_tests.core.training.helpers import child_env

    cfg, out, steps = tmp_path / "c.yaml", tmp_path / "out", 60
    dp_config(tiny_model_dir, max_steps=steps, logging_steps=10).to_yaml(cfg)
    command = [sys.executable, "-m", "ft_pipeline.core.training.train", "--config", str(cfg), "--data",
               str(tiny_export), "--output", str(out)]
    proc = subprocess.Popen(command, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
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
    assert not (out / "metrics.json").exists()

    rerun = subprocess.run(command, env=child_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from"] is not None and metrics["resumed_from"] % SAVE == 0
    assert SAVE <= metrics["resumed_from"] < steps and metrics["steps"] == steps
    record = json.loads((out / "privacy.json").read_text())
    accountant = PRVAccountant()
    accountant.history = [(record["noise_multiplier"], record["sample_rate"], steps)]
    assert record["steps"] == steps
    assert record["epsilon"] == pytest.approx(accountant.get_epsilon(record["delta"]), abs=1e-9)
    assert [h["step"] for h in metrics["history"]] == list(range(10, steps + 1, 10))


def test_a_checkpoint_half_written_is_never_resumed_and_erasure_still_finds_it(tmp_path, monkeypatch):
    """A kill between the tensors and trainer_state.json leaves checkpoint-N.partial: not taken as
    complete, matched by the checkpoint-* pattern erasure deletes by, and cleared by the next save."""
    import torch

    from ft_pipeline.core.erasure.adapters import checkpoints_of
    from ft_pipeline.core.training import dp_checkpoints
    from ft_pipeline.core.training.checkpoints import last_complete_checkpoint

    ckpt = tmp_path / "run" / "checkpoints"
    tensors = {"lora": {"w": torch.ones(2)}}
    dp_checkpoints.save(ckpt, 2, tensors, {"step": 2}, keep=2)
    real = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, path: real(obj, path) or (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        dp_checkpoints.save(ckpt, 4, tensors, {"step": 4}, keep=2)
    monkeypatch.undo()
    assert last_complete_checkpoint(ckpt) == str(ckpt / "checkpoint-2")
    assert ckpt / "checkpoint-4.partial" in checkpoints_of(tmp_path / "run")
    dp_checkpoints.save(ckpt, 6, tensors, {"step": 6}, keep=2)
    assert sorted(p.name for p in ckpt.iterdir()) == ["checkpoint-2", "checkpoint-6"]
    dp_checkpoints.save(ckpt, 8, tensors, {"step": 8}, keep=2)
    assert sorted(p.name for p in ckpt.iterdir()) == ["checkpoint-6", "checkpoint-8"]
    assert dp_checkpoints.load(ckpt / "checkpoint-8")[1] == {"step": 8}
