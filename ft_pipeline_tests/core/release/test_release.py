"""A release is published only when its merged weights answer the held-out smoke prompts."""
from __future__ import annotations

import json

import pytest

from ft_pipeline.core.release import registry, release
from ft_pipeline.core.task import TaskConfig

TASK = TaskConfig(name="smoke", type="generation")


def _export(path):
    path.mkdir()
    rows = [{"id": f"t{i}", "messages": [{"role": "user", "content": f"question {i}"},
                                         {"role": "assistant", "content": f"answer {i}"}]} for i in range(3)]
    (path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name in ("preference_test.jsonl", "preference_eval.jsonl"):  # an export writes every file
        (path / name).write_text("")
    return path


def _model_with_adapter(tiny_model_dir, tmp_path, mute: bool):
    """The tiny Llama rewired to write one token forever (attention and MLP outputs zeroed, every
    embedding the same vector, lm_head pointing it at that token) — "y", or, when mute, the special
    token <|endoftext|>, which decodes to nothing — and a fresh LoRA adapter on it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = AutoConfig.from_pretrained(tiny_model_dir)
    config.tie_word_embeddings = False
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.fill_(1.0)
        model.lm_head.weight.zero_()
        model.lm_head.weight[tokenizer.convert_tokens_to_ids("<|endoftext|>" if mute else "y")] = 1.0
    base = tmp_path / "base"
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    adapter = tmp_path / "adapter"
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM")).save_pretrained(adapter)
    return base, adapter


@pytest.mark.parametrize("mute", [False, True], ids=["answers", "mute"])
def test_only_a_release_that_answers_is_published(tiny_model_dir, tmp_path, mute):
    base, adapter = _model_with_adapter(tiny_model_dir, tmp_path, mute)
    root = tmp_path / "registry"
    export = _export(tmp_path / "export")
    if mute:
        with pytest.raises(release.ReleaseError, match=r"smoke test failed: 2/2 held-out prompts got no answer"):
            release.stage(root, TASK, base, adapter, export, smoke_examples=2)
        assert registry.current_version(root, TASK.name) is None
        assert not any(p.is_dir() for p in registry.model_root(root, TASK.name).glob("*"))  # staging removed
        return
    staged = release.stage(root, TASK, base, adapter, export, smoke_examples=2)
    assert staged.prompts == 2 and (staged.path / "merged" / "config.json").is_file()
    lineage = {"name": TASK.name, "version": "v1", "promoted_at": "2026-12-04T00:00:00+00:00", "run_id": "r" * 8,
               "code_version": "test", "assets": [], "checks": [], "erasures": [],
               **release.record(TASK, {"sha256": "0" * 64, "path": "task.yaml"},
                                {"config": {"method": "sft"}, "metrics": {"steps": 3, "final_loss": 1.5}},
                                {"metric": "rouge_l", "variants": {}, "verdicts": {}}, {}, staged)}
    path = release.publish(root, TASK.name, staged, lineage, trained_on={"trained_on": []})
    assert path.name == "v1" and registry.current_version(root, TASK.name) == "v1"
    assert json.loads((path / "lineage.json").read_text())["smoke_test"] == {"examples": 2, "well_formed_answers": 2}
    assert "Training steps: 3, final loss: 1.5" in (path / "MODEL_CARD.md").read_text()


def test_a_dp_release_carries_its_privacy_into_registry_lineage_and_card(tiny_model_dir, tmp_path):
    """The epsilon a DP run spent travels with the adapter (privacy.json), into lineage.json and the card."""
    base, adapter = _model_with_adapter(tiny_model_dir, tmp_path, mute=False)
    privacy = {"dp": True, "epsilon": 7.5, "delta": 0.01, "target_epsilon": 8.0, "max_grad_norm": 1.0,
               "noise_multiplier": 0.7, "steps": 3, "sample_rate": 0.1, "sampling": "poisson",
               "privacy_unit": "one training example (conversation)"}
    (adapter / "privacy.json").write_text(json.dumps(privacy))
    root = tmp_path / "registry"
    staged = release.stage(root, TASK, base, adapter, _export(tmp_path / "export"), smoke_examples=1)
    lineage = {"name": TASK.name, "version": "v1", "promoted_at": "t", "run_id": "r" * 8, "assets": [], "checks": [],
               **release.record(TASK, {"sha256": "0" * 64, "path": "task.yaml"},
                                {"config": {"method": "sft", "privacy": {"dp": True}},
                                 "metrics": {"steps": 3, "final_loss": 1.5, "privacy": privacy}},
                                {"metric": "rouge_l", "variants": {}, "verdicts": {}}, {}, staged)}
    path = release.publish(root, TASK.name, staged, lineage, trained_on={"trained_on": []})
    assert json.loads((path / "adapter" / "privacy.json").read_text()) == privacy
    assert json.loads((path / "lineage.json").read_text())["training"]["privacy"] == privacy
    assert "spent ε = 7.50 at δ = 0.01" in (path / "MODEL_CARD.md").read_text()
