import json
import sys
from types import SimpleNamespace

import pytest

from ft_pipeline.core.training.config import TrainingConfig
from ft_pipeline_tests.core.training.helpers import tiny_config


@pytest.fixture(scope="module")
def sft_run(tiny_model_dir, tiny_export, tmp_path_factory):
    """One 30-step SFT run shared by the assertions below (training is the slow part)."""
    import torch
    from safetensors.torch import load_file

    from ft_pipeline.core.training.train import train

    out = tmp_path_factory.mktemp("sft")
    before = {k: v.clone() for k, v in load_file(tiny_model_dir / "model.safetensors").items()}
    events = []
    metrics = train(tiny_config(tiny_model_dir), tiny_export, out, callback=events.append)
    return {"out": out, "metrics": metrics, "events": events, "before": before, "torch": torch}


def test_loss_falls(sft_run):
    losses = [h["loss"] for h in sft_run["metrics"]["history"] if "loss" in h]
    assert len(losses) == 6  # 30 steps / logging every 5
    # The tiny model's frozen random embeddings cap how far LoRA can push the logits, so the drop
    # is modest (~0.7 nats); an untrained adapter stays within ~0.05 of the start.
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.4


def test_adapter_and_records_written(sft_run):
    out = sft_run["out"]
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json",
                 "training_config.yaml", "metrics.json"):
        assert (out / name).is_file(), name
    assert not (out / ".partial").exists() and not (out / "checkpoints").exists()
    assert json.loads((out / "metrics.json").read_text())["steps"] == 30
    assert TrainingConfig.from_yaml(out / "training_config.yaml").max_steps == 30


def test_lora_moved_and_base_frozen(sft_run, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    torch = sft_run["torch"]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), sft_run["out"])
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # B starts at zero: nonzero means it trained
    state = {n.replace("base_model.model.", "").replace(".base_layer", ""): p
             for n, p in model.named_parameters() if "lora_" not in n}
    before = sft_run["before"]
    unchanged = [torch.equal(state[n], before[n]) for n in before if n in state]
    assert len(unchanged) == len(before) - 1 or len(unchanged) == len(before)  # tied lm_head may be absent
    assert all(unchanged)


def test_metrics_record_throughput_and_memory(sft_run):
    m = sft_run["metrics"]
    assert m["train_tokens"] > 0 and m["tokens_per_s"] > 0
    assert m["peak_memory_bytes"] > 50 * 2**20 and m["peak_memory_kind"] == "process_max_rss"
    assert m["world_size"] == 1 and m["resumed_from"] is None
    assert 0 < m["trainable_params"] < m["total_params"]
    assert m["cost_estimate"]["flops"] > 0


def test_callback_sees_every_log(sft_run):
    kinds = [e["event"] for e in sft_run["events"]]
    assert kinds[0] == "start" and kinds[-1] == "end"
    steps = [e["step"] for e in sft_run["events"] if e["event"] == "log" and "loss" in e]
    assert steps == [5, 10, 15, 20, 25, 30]


def test_assistant_only_mask(tiny_model_dir, tiny_export, tmp_path):
    """Labels are -100 on system and user tokens; the answer and its <|im_end|> are trained."""
    from ft_pipeline.core.training.base_model import load_model_and_tokenizer
    from ft_pipeline.core.training import sft
    from ft_pipeline.core.training.data import load_datasets
    from ft_pipeline.core.training.model_setup import lora_config as _lora_config
    from ft_pipeline.core.training.train import _trainer_args

    config = tiny_config(tiny_model_dir)
    model, tok = load_model_and_tokenizer(tiny_model_dir)
    train_ds, _ = load_datasets("sft", tiny_export)
    trainer = sft.build_trainer(config, model, tok, train_ds, None,
                                _trainer_args(config, tmp_path, "fp32", False, False), _lora_config(config), [])
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    trained = tok.decode(ids[labels != -100])
    answer = json.loads(train_ds[0]["messages"][-1]["content"])
    assert json.loads(trained.removesuffix("<|im_end|>")) == answer
    assert trained.endswith("<|im_end|>")
    assert "triage" in tok.decode(ids) and "triage" not in trained  # the system turn is masked


def test_packing_trains(tiny_model_dir, tiny_export, tmp_path):
    from ft_pipeline.core.training.train import train

    metrics = train(tiny_config(tiny_model_dir, packing=True, max_length=128, max_steps=4, logging_steps=2),
                    tiny_export, tmp_path)
    assert metrics["packing"] is True and metrics["steps"] == 4
    assert (tmp_path / "adapter_model.safetensors").is_file()


def test_qlora_trains_on_a_4bit_base(tiny_model_dir, tiny_export, tmp_path):
    """The QLoRA presets' load path — NF4 base weights (bitsandbytes), LoRA on top — run on
    bitsandbytes' CPU backend: the base really is 4-bit and is sized unpacked for the cost estimate."""
    from ft_pipeline.core.training.model_stats import count_parameters
    from ft_pipeline.core.training.train import train

    metrics = train(tiny_config(tiny_model_dir, qlora=True, max_steps=2, logging_steps=1), tiny_export, tmp_path)
    assert metrics["load_in_4bit"] is True and metrics["precision"] == "bf16" and metrics["steps"] == 2
    assert metrics["total_params"] == count_parameters(tiny_model_dir)  # not the packed half
    assert metrics["final_loss"] > 0 and (tmp_path / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("bitsandbytes, says", [
    (None, "TrainingConfig.qlora=True: 4-bit QLoRA needs bitsandbytes, which is not installed; "
           "pip install 'ft_pipeline[gpu]', or set qlora: false"),
    (SimpleNamespace(supported_torch_devices={"cuda"}),
     "TrainingConfig.qlora=True: 4-bit QLoRA (bitsandbytes) needs a CUDA GPU; this machine has none. "
     "Set qlora: false to train plain LoRA on CPU."),
], ids=["not-installed", "no-cpu-backend"])
def test_qlora_without_a_usable_bitsandbytes_is_one_line(tiny_model_dir, tiny_export, tmp_path, monkeypatch,
                                                          capsys, bitsandbytes, says):
    from ft_pipeline.core.training.train import main

    monkeypatch.setitem(sys.modules, "bitsandbytes", bitsandbytes)  # None: `import bitsandbytes` fails
    config = tmp_path / "qlora.yaml"
    tiny_config(tiny_model_dir, qlora=True).to_yaml(config)
    assert main(["--config", str(config), "--data", str(tiny_export), "--output", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"error: {says}\n"
    assert not (tmp_path / "out").exists()


def test_budget_refuses_to_start(tiny_model_dir, tiny_export, tmp_path):
    from ft_pipeline.core.training.train import train

    config = tiny_config(tiny_model_dir, price_per_hour=1e9, budget_usd=0.0)
    with pytest.raises(ValueError, match="budget_usd"):
        train(config, tiny_export, tmp_path)
    assert not (tmp_path / "adapter_model.safetensors").exists()


def test_truncating_every_answer_away_is_a_clear_error(tiny_model_dir, tmp_path):
    """trl drops examples whose answer max_length cut off; with none left, say so (and why)."""
    from ft_pipeline.core.training.train import train
    from ft_pipeline_tests.core.training.helpers import write_export

    export = write_export(tmp_path / "export")
    with pytest.raises(ValueError, match=r"max_length=4: truncation leaves no answer token"):
        train(tiny_config(tiny_model_dir, max_length=4, max_steps=2), export, tmp_path / "out")
    assert not (tmp_path / "out" / "adapter_model.safetensors").exists()


def test_group_by_length_batches_similar_lengths(tiny_model_dir, tiny_export, tmp_path, monkeypatch):
    """Unpacked rows are batched by length (the demo preset's speed-up on CPU)."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from ft_pipeline.core.training import sft
    from ft_pipeline.core.training.train import train

    seen = []
    original = sft.build_trainer

    def spy(*args, **kwargs):
        trainer = original(*args, **kwargs)
        seen.append(trainer._get_train_sampler())
        return trainer

    monkeypatch.setattr(sft, "build_trainer", spy)
    metrics = train(tiny_config(tiny_model_dir, max_steps=2, group_by_length=True), tiny_export, tmp_path)
    assert isinstance(seen[0], LengthGroupedSampler) and metrics["steps"] == 2
    assert metrics["train_examples_dropped_by_truncation"] == 0
