import dataclasses
from pathlib import Path

import pytest

from ft_pipeline.core.training.config import TrainingConfig

REPO = Path(__file__).resolve().parents[3]
PRESETS = sorted((REPO / "configs" / "presets").glob("*.yaml"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("method", "ppo"),
        ("lora_rank", 0),
        ("lora_alpha", -1),
        ("lora_dropout", 1.0),
        ("learning_rate", 0.0),
        ("learning_rate", 3.0),
        ("epochs", 0),
        ("max_steps", 0),
        ("per_device_batch_size", 0),
        ("gradient_accumulation", 1.5),
        ("max_length", 0),
        ("precision", "fp8"),
        ("num_generations", 1),
        ("dpo_beta", 0),
        ("gpu_type", "TPUv9"),
        ("price_per_hour", -1.0),
        ("budget_usd", -5.0),
        ("target_modules", []),
        ("base_model", ""),
    ],
)
def test_invalid_field_is_rejected_by_name(field, value):
    with pytest.raises(ValueError, match=rf"TrainingConfig\.{field}="):
        TrainingConfig(**{field: value})


def test_packing_is_sft_only():
    with pytest.raises(ValueError, match="packing"):
        TrainingConfig(method="dpo", packing=True)


def test_qlora_needs_reduced_precision():
    with pytest.raises(ValueError, match="qlora"):
        TrainingConfig(qlora=True, precision="fp32")


def test_yaml_round_trip(tmp_path):
    config = TrainingConfig(method="grpo", lora_rank=4, target_modules=["q_proj", "v_proj"], budget_usd=12.5,
                            num_generations=3, learning_rate=1e-5)
    path = tmp_path / "training_config.yaml"
    config.to_yaml(path)
    assert TrainingConfig.from_yaml(path) == config
    assert TrainingConfig.from_dict(config.to_dict()) == config
    assert TrainingConfig.from_yaml(config.to_yaml()) == config  # YAML text, not a path


def test_every_field_documents_itself():
    undocumented = [f.name for f in dataclasses.fields(TrainingConfig) if not f.metadata.get("help")]
    assert undocumented == []


def test_unknown_field_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("method: sft\nlora_rnak: 8\n")
    with pytest.raises(ValueError, match="lora_rnak"):
        TrainingConfig.from_yaml(path)


def test_bad_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("method: sft\nlora_rank: [8\n")
    with pytest.raises(ValueError, match=r"c\.yaml line \d+: invalid YAML"):
        TrainingConfig.from_yaml(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        TrainingConfig.from_yaml(tmp_path / "nope.yaml")


def test_fingerprint_ignores_bookkeeping_but_not_math():
    base = TrainingConfig()
    assert dataclasses.replace(base, logging_steps=1, save_steps=7).fingerprint() == base.fingerprint()
    assert dataclasses.replace(base, learning_rate=1e-3).fingerprint() != base.fingerprint()


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_presets_load_and_say_how_to_run(preset):
    config = TrainingConfig.from_yaml(preset)
    header = preset.read_text().split("\n\n")[0]
    assert "ft-pipeline train --config" in header and "cost" in header.lower()
    assert config.method in ("sft", "dpo", "grpo")


def test_all_presets_exist():
    names = {p.name for p in PRESETS}
    assert {"smollm2-cpu-sft.yaml", "smollm2-cpu-dpo.yaml", "smollm2-cpu-grpo.yaml", "qwen7b-qlora-1gpu.yaml",
            "llama13b-lora-multigpu.yaml"} <= names


@pytest.mark.parametrize("line, field, value", [
    ("learning_rate: 2e-4", "learning_rate", 0.0002),  # YAML 1.1 reads this as the text "2e-4"
    ("max_steps: 1e3", "max_steps", 1000),
    ("budget_usd: 1_000", "budget_usd", 1000),
    ("epochs: '3'", "epochs", 3),
    ("lora_rank: 16.0", "lora_rank", 16),
])
def test_numbers_are_read_as_a_person_means_them(tmp_path, line, field, value):
    path = tmp_path / "preset.yaml"
    path.write_text(f"method: sft\n{line}\n")
    config = TrainingConfig.from_yaml(path)
    assert getattr(config, field) == value and type(getattr(config, field)) is type(value)


@pytest.mark.parametrize("line, says", [
    ("learning_rate: two", "TrainingConfig.learning_rate='two': must be a number"),
    ("learning_rate: .nan", "TrainingConfig.learning_rate=nan: must be a number"),
    ("max_steps: 10.5", "TrainingConfig.max_steps=10.5: must be a whole number"),
    ("lora_rank: true", "TrainingConfig.lora_rank=True: must be a number"),
    ("packing: 'no'", "TrainingConfig.packing='no': must be true or false"),
    ("method: 3", "TrainingConfig.method=3: must be text"),
    ("lr_scheduler: cosinus", "TrainingConfig.lr_scheduler='cosinus': must be one of linear, cosine,"),
])
def test_a_mistyped_field_is_one_line_naming_file_and_field(tmp_path, line, says):
    path = tmp_path / "preset.yaml"
    path.write_text(f"method: sft\n{line}\n")
    with pytest.raises(ValueError) as info:
        TrainingConfig.from_yaml(path)
    assert str(info.value).startswith(f"{path}: {says}") and "\n" not in str(info.value)


def test_lr_schedulers_are_transformers_own():
    from transformers.trainer_utils import SchedulerType

    from ft_pipeline.core.training.config import LR_SCHEDULERS

    assert set(LR_SCHEDULERS) == {s.value for s in SchedulerType}
