"""The general capability probe: its items, and scores on the tiny model taught the probe, then damaged."""
from __future__ import annotations

import shutil
from collections import Counter

import pytest

from ft_pipeline.core.evaluation import generation
from ft_pipeline.core.evaluation.capability import probe_items, probe_scores
from ft_pipeline.core.evaluation.gates import EvalEvidence, GateConfig, release_gates

TAUGHT_ITEMS = 40  # the first 20 countries: capital and continent


def test_probe_is_fixed_large_enough_and_well_formed():
    items = probe_items()
    assert len(items) >= 200 and items == probe_items()
    assert len({item.id for item in items}) == len(items)
    assert Counter(item.family for item in items) == {"capitals": len(items) // 2, "continents": len(items) // 2}
    for item in items:
        assert len(item.choices) == 4 and len(set(item.choices)) == 4 and 0 <= item.answer < 4
        assert all(choice.startswith(" ") and "Ã" not in choice for choice in item.choices)
    kenya = next(item for item in items if item.id == "capital-KE")
    assert kenya.prompt == "The capital of Kenya is" and kenya.choices[kenya.answer] == " Nairobi"


def _save_copy(model, source, path):
    shutil.copytree(source, path, dirs_exist_ok=True)
    model.save_pretrained(path)
    generation.clear_cache()
    return path


@pytest.fixture(scope="module")
def taught_model(tiny_model_dir, tmp_path_factory):
    """The tiny Llama trained on the first probe items' true statements, so it scores well above chance."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    texts = [item.prompt + item.choices[item.answer] for item in probe_items()[:TAUGHT_ITEMS]]
    batch = tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(150):
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return _save_copy(model, tiny_model_dir, tmp_path_factory.mktemp("taught"))


@pytest.fixture(scope="module")
def damaged_model(taught_model, tmp_path_factory):
    """The taught model with Gaussian noise of its own scale added to every weight matrix."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(taught_model)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.add_(torch.randn_like(param) * param.std())
    return _save_copy(model, taught_model, tmp_path_factory.mktemp("damaged"))


def test_probe_runs_on_the_tiny_model(tiny_model_dir):
    scores = probe_scores(tiny_model_dir, max_items=12, batch_size=16)
    assert len(scores) == 12 and set(scores) <= {0.0, 1.0}


def test_a_damaged_model_scores_lower_and_fails_the_regression_gate(taught_model, damaged_model):
    base = probe_scores(taught_model, max_items=TAUGHT_ITEMS, batch_size=32)
    hurt = probe_scores(damaged_model, max_items=TAUGHT_ITEMS, batch_size=32)
    assert sum(base) / len(base) >= 0.8
    assert sum(hurt) < sum(base)
    evidence = EvalEvidence(metric="accuracy", binary=True, variants={}, capability={"base": base, "tuned": hurt})
    verdict = release_gates(evidence, GateConfig())["no_capability_regression"]
    assert not verdict.passed and verdict.outcome == "regressed"
    assert verdict.numbers["n"] == TAUGHT_ITEMS and verdict.numbers["high"] < -0.05

