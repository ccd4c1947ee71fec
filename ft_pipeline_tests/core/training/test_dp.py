"""Differentially private SFT (privacy: {dp: true}): real Opacus DP-SGD on the tiny Llama."""
import dataclasses
import json
import math

import pytest

from ft_pipeline.core.training.config import TrainingConfig
from ft_pipeline.core.training.train import main, train
from ft_pipeline_tests.core.training.helpers import tiny_config

DP = {"dp": True, "target_epsilon": 8}


@pytest.fixture(scope="module")
def dp_run(tiny_model_dir, tiny_export, tmp_path_factory):
    out = tmp_path_factory.mktemp("dp")
    events = []
    metrics = train(tiny_config(tiny_model_dir, max_steps=12, logging_steps=4, privacy=DP), tiny_export, out,
                    callback=events.append)
    return {"out": out, "metrics": metrics, "events": events}


def lora_and_base(model):
    """({lora name: weight}, {base name: weight}), named alike whether `model` is the PeftModel or
    the model get_peft_model wrapped."""
    lora = {n.replace("base_model.model.", ""): p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    base = {n.replace("base_model.model.", "").replace(".base_layer", ""): p.detach().clone()
            for n, p in model.named_parameters() if "lora_" not in n}
    return lora, base


# --- the config switch ---------------------------------------------------------------------

@pytest.mark.parametrize("method", ["dpo", "grpo"])
def test_dpo_and_grpo_refuse_dp_by_name(method):
    with pytest.raises(ValueError, match=rf"^TrainingConfig\.privacy\.dp=True: DP-SGD is implemented for SFT only; {method}"):
        TrainingConfig(method=method, privacy=DP)


@pytest.mark.parametrize("method", ["dpo", "grpo"])
def test_cli_refuses_dp_for_dpo_and_grpo_with_one_line(method, tmp_path, capsys):
    path = tmp_path / "preset.yaml"
    path.write_text(f"method: {method}\nprivacy: {{dp: true, target_epsilon: 8}}\n")
    assert main(["--config", str(path), "--data", str(tmp_path), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {path}: TrainingConfig.privacy.dp=True: DP-SGD is implemented for SFT only; {method} "
                   "would train without it. Set privacy.dp: false or method: sft")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("privacy", "field"), [
    ({"target_epsilon": 0}, "target_epsilon"),
    ({"target_epsilon": "lots"}, "target_epsilon"),
    ({"delta": 1.5}, "delta"),
    ({"max_grad_norm": 0}, "max_grad_norm"),
    ({"dp": "yes"}, "dp"),
    ({"grad_sample_mode": "exact"}, "grad_sample_mode"),
])
def test_bad_privacy_field_is_named(privacy, field):
    with pytest.raises(ValueError, match=rf"^TrainingConfig\.privacy\.{field}="):
        TrainingConfig(privacy=privacy)


@pytest.mark.parametrize(("overrides", "says"), [
    ({"packing": True}, "packed row"),
    ({"gradient_checkpointing": True}, "gradient_checkpointing"),
    ({"init_adapter": "adapters/sft"}, "init_adapter"),
    ({"privacy": {**DP, "epsilon": 3}}, "unknown field(s): epsilon"),
])
def test_what_dp_cannot_honour_is_refused(overrides, says):
    with pytest.raises(ValueError, match="TrainingConfig.privacy") as info:
        TrainingConfig(**{"privacy": DP, **overrides})
    assert says in str(info.value)


def test_privacy_round_trips_through_yaml_with_yaml_1_1_numbers(tmp_path):
    path = tmp_path / "preset.yaml"
    path.write_text("method: sft\nprivacy:\n  dp: true\n  target_epsilon: 4\n  delta: 1e-5\n  max_grad_norm: 0.5\n")
    config = TrainingConfig.from_yaml(path)
    assert config.privacy.delta == 1e-5 and config.privacy.target_epsilon == 4.0 and config.privacy.dp
    config.to_yaml(tmp_path / "again.yaml")
    assert TrainingConfig.from_yaml(tmp_path / "again.yaml") == config
    assert TrainingConfig.from_dict(config.to_dict()) == config
    # A DP run is another run: it never resumes a non-DP run's checkpoints.
    assert config.fingerprint() != dataclasses.replace(config, privacy=None).fingerprint()


def test_no_privacy_block_means_no_dp():
    assert TrainingConfig().privacy.dp is False


# --- the DP run ----------------------------------------------------------------------------

def test_dp_run_reports_spent_epsilon_within_target(dp_run):
    record = json.loads((dp_run["out"] / "privacy.json").read_text())
    assert record == dp_run["metrics"]["privacy"]
    assert record["dp"] and 0 < record["epsilon"] <= 8 and math.isfinite(record["epsilon"])
    assert record["delta"] == 1 / 32 and record["max_grad_norm"] == 1.0 and record["steps"] == 12
    assert record["sampling"] == "poisson" and record["sample_rate"] == 4 / 32
    # The budget is spent step by step: epsilon grows with every logged step.
    spent = [h["epsilon"] for h in dp_run["metrics"]["history"]]
    assert len(spent) == 3 and spent == sorted(spent) and spent[0] < spent[-1] == record["epsilon"]


def test_recorded_noise_and_steps_account_to_the_recorded_epsilon(dp_run):
    """An auditor can recompute epsilon from privacy.json alone."""
    from opacus.accountants import PRVAccountant

    record = dp_run["metrics"]["privacy"]
    accountant = PRVAccountant()
    accountant.history = [(record["noise_multiplier"], record["sample_rate"], record["steps"])]
    assert accountant.get_epsilon(record["delta"]) == pytest.approx(record["epsilon"], rel=1e-6)


def test_dp_adapter_is_a_normal_adapter_and_changes_the_model(dp_run, tiny_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = dp_run["out"]
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "metrics.json"):
        assert (out / name).is_file(), name
    assert TrainingConfig.from_yaml(out / "training_config.yaml").privacy.dp
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.tensor([[1, 5, 9, 30, 2]])
    before = base(input_ids=ids).logits
    tuned = PeftModel.from_pretrained(base, out)
    lora, _ = lora_and_base(tuned)
    assert lora and all(torch.isfinite(p).all() for p in lora.values())
    assert all(p.abs().sum() > 0 for n, p in lora.items() if "lora_B" in n)  # B starts at zero
    assert not torch.allclose(tuned(input_ids=ids).logits, before)


def test_callback_sees_epsilon_in_every_log(dp_run):
    kinds = [e["event"] for e in dp_run["events"]]
    assert kinds[0] == "start" and kinds[-1] == "end"
    logs = [e for e in dp_run["events"] if e["event"] == "log"]
    assert [e["step"] for e in logs] == [4, 8, 12] and all(e["epsilon"] > 0 for e in logs)


def test_first_dp_step_moves_the_lora_the_model_uses_and_not_the_base(tiny_model_dir, tiny_export, tmp_path):
    """Opacus issue 820: DP-LoRA runs that report epsilon and a falling loss, yet whose saved model is
    unusable, from the order of get_peft_model, device placement and the optimizer. One DP step,
    then: every LoRA weight is finite, B moved off zero and A off its init, the saved adapter holds
    exactly the weights trained in memory, and no base weight moved."""
    import time

    import torch
    from peft import PeftModel, get_peft_model
    from safetensors.torch import load_file
    from transformers import set_seed

    from ft_pipeline.core.training.base_model import load_model_and_tokenizer
    from ft_pipeline.core.training.data import load_datasets
    from ft_pipeline.core.training.dp import train_private
    from ft_pipeline.core.training.model_setup import lora_config

    config = tiny_config(tiny_model_dir, max_steps=1, privacy=DP)
    fresh, _ = load_model_and_tokenizer(tiny_model_dir, dtype="float32")
    set_seed(config.seed)
    init, _ = lora_and_base(get_peft_model(fresh, lora_config(config)))

    model, tokenizer = load_model_and_tokenizer(tiny_model_dir, dtype="float32")
    train_ds, eval_ds = load_datasets("sft", tiny_export)
    run = {"model_path": tiny_model_dir, "n_params": model.num_parameters(), "n_tokens": 1000, "precision": "fp32",
           "cuda": False, "started": time.time()}
    metrics = train_private(config, model, tokenizer, train_ds, eval_ds, tmp_path, run=run)
    assert metrics["steps"] == 1 and metrics["privacy"]["epsilon"] > 0

    lora, base = lora_and_base(model)  # get_peft_model wrapped the very model passed in
    assert lora.keys() == init.keys() and len(lora) == 2 * 2 * 7  # A and B, 7 projections, 2 layers
    assert all(torch.isfinite(p).all() for p in lora.values())
    assert all(not torch.equal(lora[n], init[n]) for n in lora)  # B off zero, A off init (noise)
    saved = PeftModel.from_pretrained(load_model_and_tokenizer(tiny_model_dir, dtype="float32")[0], tmp_path)
    assert all(torch.equal(p, lora[n]) for n, p in lora_and_base(saved)[0].items())
    on_disk = load_file(tiny_model_dir / "model.safetensors")
    assert on_disk and all(torch.equal(base[n], on_disk[n]) for n in on_disk)


def test_empty_poisson_draws_still_take_a_noised_step(tiny_model_dir, tiny_export, tmp_path, monkeypatch):
    """At one expected example per step, about a third of the draws are empty; each is still a
    step the accountant counts (skipping it would spend less noise than accounted)."""
    from ft_pipeline.core.training import dp

    empty = []
    real = dp.noise_only_batch
    monkeypatch.setattr(dp, "noise_only_batch", lambda pad_id: empty.append(1) or real(pad_id))
    metrics = train(tiny_config(tiny_model_dir, max_steps=8, per_device_batch_size=1, logging_steps=4, privacy=DP),
                    tiny_export, tmp_path)
    assert empty, "no empty draw in 8 steps at q = 1/32 (p ~ 0.03): the seed changed?"
    assert metrics["steps"] == 8 and metrics["privacy"]["steps"] == 8
    assert 0 < metrics["privacy"]["epsilon"] <= 8


def test_ghost_clipping_trains_exactly_as_per_example_gradients(tiny_model_dir, tiny_export, tmp_path):
    """Ghost clipping computes the same clipped, noised update without per-example gradients."""
    import torch
    from safetensors.torch import load_file

    runs = {}
    for mode in ("ghost", "hooks"):
        config = tiny_config(tiny_model_dir, max_steps=3, logging_steps=1, privacy={**DP, "grad_sample_mode": mode})
        runs[mode] = train(config, tiny_export, tmp_path / mode)
    assert [h["loss"] for h in runs["ghost"]["history"]] == pytest.approx([h["loss"] for h in runs["hooks"]["history"]], rel=1e-4)
    ghost, hooks = (load_file(tmp_path / m / "adapter_model.safetensors") for m in ("ghost", "hooks"))
    assert all(torch.allclose(ghost[n], hooks[n], atol=1e-5) for n in ghost)


def test_a_non_dp_rerun_into_a_dp_folder_drops_its_privacy_record(dp_run, tiny_model_dir, tiny_export, tmp_path):
    out = tmp_path / "adapter"
    out.mkdir()
    (out / "privacy.json").write_text((dp_run["out"] / "privacy.json").read_text())
    metrics = train(tiny_config(tiny_model_dir, max_steps=2), tiny_export, out)
    assert "privacy" not in metrics and not (out / "privacy.json").exists()


# --- the task-file switch ------------------------------------------------------------------

def write_task(tmp_path, privacy: str, type_: str = "classification"):
    path = tmp_path / "task.yaml"
    path.write_text(f"name: t\ntype: {type_}\nprivacy: {privacy}\n")
    return path


@pytest.mark.parametrize(("privacy", "says"), [
    ("{dp: true, target_epsilon: 0}", "field privacy.target_epsilon: must be > 0"),
    ("{dp: true, epsilon: 3}", "field privacy: unknown field(s): epsilon"),
    ("yes", "field privacy: must be a mapping"),
])
def test_a_bad_privacy_block_in_the_task_file_is_named(tmp_path, privacy, says):
    from ft_pipeline.core.task import TaskConfig, TaskError

    with pytest.raises(TaskError) as info:
        TaskConfig.from_yaml(write_task(tmp_path, privacy))
    assert says in str(info.value) and "\n" not in str(info.value)


def test_a_preference_task_refuses_dp(tmp_path):
    from ft_pipeline.core.task import TaskConfig, TaskError

    with pytest.raises(TaskError, match="field privacy.dp: DP-SGD is implemented for SFT only; this task trains dpo"):
        TaskConfig.from_yaml(write_task(tmp_path, "{dp: true}", "preference"))


def test_the_task_files_privacy_overrides_the_presets():
    from ft_pipeline.defs.training.resources import TrainingPlanResource

    config = TrainingPlanResource().training_config("sft", {"dp": True, "target_epsilon": 4})
    assert config.privacy.dp and config.privacy.target_epsilon == 4 and config.privacy.max_grad_norm == 1.0
    assert config.lora_rank == TrainingPlanResource().training_config("sft").lora_rank  # the rest is the preset's
    with pytest.raises(ValueError, match=r"smollm2-cpu-dpo.yaml with the task file's privacy: TrainingConfig\.privacy"
                                         r"\.dp=True: DP-SGD is implemented for SFT only; dpo"):
        TrainingPlanResource(method="dpo").training_config("sft", {"dp": True})


def test_run_with_a_dp_task_and_method_dpo_exits_2_in_one_line(tmp_path, capsys):
    from ft_pipeline import cli

    source = tmp_path / "s.jsonl"
    source.write_text('{"id": "a", "prompt": "hi", "completion": "billing"}\n')
    assert cli.main(["run", str(source), "--task", str(write_task(tmp_path, "{dp: true}")), "--method", "dpo"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "with the task file's privacy: TrainingConfig.privacy.dp=True: DP-SGD is implemented " \
                               "for SFT only; dpo" in err
