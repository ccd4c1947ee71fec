import pytest

from ft_pipeline.core.training.config import TrainingConfig
from ft_pipeline.core.training.cost import PEAK_FLOPS, estimate_cost, model_size_guidance


def test_flops_and_dollars_arithmetic():
    config = TrainingConfig(gpu_type="A100", price_per_hour=4.0, epochs=2, budget_usd=1.0)
    est = estimate_cost(config, n_train_tokens=1_000_000, n_params=7_000_000_000, n_trainable=40_000_000)
    assert est["flops"] == pytest.approx(6 * 7e9 * 1e6 * 2)  # 8.4e16
    # 8.4e16 FLOPs at 40% of 312 TFLOP/s = 673 s = 0.187 GPU-hours = $0.75 at $4/h
    assert est["wall_seconds"] == pytest.approx(8.4e16 / (312e12 * 0.4))
    assert est["device_hours"] == pytest.approx(est["wall_seconds"] / 3600)
    assert est["usd"] == pytest.approx(est["device_hours"] * 4.0)
    assert est["within_budget"] is True
    assert est["trainable_fraction"] == pytest.approx(40e6 / 7e9)


def test_more_gpus_same_gpu_hours_less_wall_time():
    one = estimate_cost(TrainingConfig(gpu_type="H100"), 1_000_000, 13_000_000_000)
    four = estimate_cost(TrainingConfig(gpu_type="H100", num_gpus=4), 1_000_000, 13_000_000_000)
    assert four["wall_seconds"] == pytest.approx(one["wall_seconds"] / 4)
    assert four["device_hours"] == pytest.approx(one["device_hours"])


def test_budget_exceeded_and_grpo_multiplier():
    sft = estimate_cost(TrainingConfig(gpu_type="L4", price_per_hour=1.0, budget_usd=0.01), 10**8, 7 * 10**9)
    assert sft["within_budget"] is False
    grpo = estimate_cost(TrainingConfig(method="grpo", num_generations=4, gpu_type="L4"), 10**8, 7 * 10**9)
    assert grpo["flops"] == pytest.approx(4 * sft["flops"])


def test_peak_table_covers_documented_gpus():
    assert {"cpu", "A10G", "L4", "A100", "H100", "H200"} <= set(PEAK_FLOPS)


@pytest.mark.parametrize(
    ("n", "task", "size"),
    [(3000, "classification", "7B"), (200, "classification", "7B"), (2000, "summarization", "13B"),
     (50000, "open_qa", "70B")],
)
def test_model_size_guidance(n, task, size):
    out = model_size_guidance(n, n * 200, task)
    assert out["recommended"] == size and out["reasons"] and out["hardware"]
