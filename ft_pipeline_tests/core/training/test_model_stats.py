"""Model sizes for the cost estimate: every weight format counts, none counts as 0."""
import shutil

import pytest

from ft_pipeline.core.training.cost import estimate_cost
from ft_pipeline.core.training.config import TrainingConfig
from ft_pipeline.core.training.model_stats import count_parameters


def test_a_bin_only_checkpoint_is_sized_like_its_safetensors_twin(tiny_model_dir, tmp_path):
    """pytorch_model.bin as older transformers and many hub repos ship it: the tied lm_head shares
    the embedding's storage and is counted once, as in safetensors."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    bin_dir = tmp_path / "bin-only"
    shutil.copytree(tiny_model_dir, bin_dir, ignore=shutil.ignore_patterns("*.safetensors"))
    torch.save(model.state_dict(), bin_dir / "pytorch_model.bin")
    assert "lm_head.weight" in model.state_dict()  # the tied copy is in the pickle
    assert count_parameters(bin_dir) == count_parameters(tiny_model_dir) == model.num_parameters() > 0
    assert AutoModelForCausalLM.from_pretrained(bin_dir).num_parameters() == model.num_parameters()
    cost = estimate_cost(TrainingConfig(price_per_hour=1.0, budget_usd=0.0), 10_000, count_parameters(bin_dir))
    assert cost["usd"] > 0 and cost["within_budget"] is False  # a $0 estimate would pass any budget


def test_a_directory_without_weights_is_an_error_not_zero(tiny_model_dir, tmp_path):
    empty = tmp_path / "config-only"
    shutil.copytree(tiny_model_dir, empty, ignore=shutil.ignore_patterns("*.safetensors"))
    with pytest.raises(FileNotFoundError, match=rf"base_model: {empty} has no weights to size the model by"):
        count_parameters(empty)
