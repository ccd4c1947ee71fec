"""DPO and GRPO on the tiny model: they run end to end and the learning signal moves."""
import pytest

from ft_pipeline_tests.core.training.helpers import tiny_config


def test_dpo_raises_the_reward_margin(tiny_model_dir, tiny_export, tmp_path):
    from ft_pipeline.core.training.train import train

    metrics = train(tiny_config(tiny_model_dir, method="dpo", max_steps=20, dpo_beta=0.5, max_length=96),
                    tiny_export, tmp_path)
    margins = [h["rewards/margins"] for h in metrics["history"] if "rewards/margins" in h]
    losses = [h["loss"] for h in metrics["history"] if "loss" in h]
    assert len(margins) == 4
    assert margins[-1] > margins[0] and losses[-1] < losses[0]
    assert (tmp_path / "adapter_model.safetensors").is_file()
    assert metrics["eval"]["eval_loss"] > 0  # preference_eval.jsonl was evaluated


def test_grpo_scores_samples_and_writes_adapter(tiny_model_dir, tiny_export, tmp_path):
    from ft_pipeline.core.training.train import train

    config = tiny_config(tiny_model_dir, method="grpo", max_steps=2, per_device_batch_size=2,
                         num_generations=2, max_completion_length=8, logging_steps=1)
    metrics = train(config, tiny_export, tmp_path)
    logged = [h for h in metrics["history"] if "reward" in h]
    assert len(logged) == 2
    # Both of the task's rewards ran on every sampled batch (a random model earns 0, which is the
    # point: the numbers exist and are bounded).
    assert all(0.0 <= h["rewards/format_reward/mean"] <= 1.0 for h in logged)
    assert all(0.0 <= h["rewards/correctness_reward/mean"] <= 1.0 for h in logged)
    assert logged[-1]["completions/max_length"] <= 8
    assert (tmp_path / "adapter_config.json").is_file() and metrics["steps"] == 2


def test_grpo_continues_an_sft_adapter(tiny_model_dir, tiny_export, tmp_path):
    """init_adapter: GRPO starts from the SFT adapter's weights, not from a fresh LoRA."""
    import pytest
    from safetensors.torch import load_file

    from ft_pipeline.core.training.train import train

    sft_dir, grpo_dir = tmp_path / "sft", tmp_path / "grpo"
    train(tiny_config(tiny_model_dir, max_steps=3), tiny_export, sft_dir)
    sft = load_file(sft_dir / "adapter_model.safetensors")
    assert any(t.abs().sum() > 0 for k, t in sft.items() if "lora_B" in k)  # SFT moved lora_B off zero

    config = tiny_config(tiny_model_dir, method="grpo", max_steps=1, per_device_batch_size=2, num_generations=2,
                         max_completion_length=8, learning_rate=1e-12, init_adapter=str(sft_dir))
    metrics = train(config, tiny_export, grpo_dir)
    grpo = load_file(grpo_dir / "adapter_model.safetensors")
    assert metrics["steps"] == 1 and sft.keys() == grpo.keys()
    # a step at lr 1e-12 leaves the weights where they started: at the SFT adapter's
    assert all(grpo[k].allclose(sft[k], atol=1e-6) for k in sft)

    with pytest.raises(FileNotFoundError, match="init_adapter=.*adapter_config.json missing"):
        train(tiny_config(tiny_model_dir, max_steps=1, init_adapter=str(tmp_path / "nowhere")), tiny_export,
              tmp_path / "x")


@pytest.mark.parametrize("method, steps, logged", [
    ("sft", 7, [5, 7]),  # max_steps not a multiple of logging_steps
    ("dpo", 2, [2]),  # a run shorter than one logging interval
])
def test_every_run_logs_its_last_step(tiny_model_dir, tiny_export, tmp_path, method, steps, logged):
    from ft_pipeline.core.training.train import train

    events = []
    metrics = train(tiny_config(tiny_model_dir, method=method, max_steps=steps, logging_steps=5, max_length=96),
                    tiny_export, tmp_path, callback=events.append)
    losses = [h for h in metrics["history"] if "loss" in h]
    assert [h["step"] for h in losses] == logged
    assert metrics["final_loss"] == losses[-1]["loss"] > 0
    assert [e["step"] for e in events if e["event"] == "log" and "loss" in e] == logged  # the run log too
