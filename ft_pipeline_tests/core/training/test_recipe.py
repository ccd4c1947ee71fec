"""Recipes (core/training/recipe.py): which stages a preset that continues another must train
first, when an earlier stage's adapter is reused, and the one-line refusal when nothing can make
the adapter it continues."""
from __future__ import annotations

import json

import pytest

from ft_pipeline.core.digest import sha256_dir
from ft_pipeline.core.training import recipe
from ft_pipeline.core.training.config import TrainingConfig
from ft_pipeline.core.training.manifest import write_training_manifest

SFT = "method: sft\nbase_model: tiny\nmax_steps: 6\nlora_rank: 8\n"


def _presets(folder, continued="adapters/tiny-sft"):
    (folder / "tiny-sft.yaml").write_text(SFT)
    (folder / "tiny-dpo.yaml").write_text(f"method: dpo\nbase_model: tiny\nmax_steps: 4\ninit_adapter: {continued}\n")
    return folder / "tiny-dpo.yaml"


def _trained(stage_dir, config: TrainingConfig, export, method="sft"):
    """An adapter folder as a finished stage leaves it: config, manifest, metrics.json last."""
    stage_dir.mkdir(parents=True)
    (stage_dir / "adapter_config.json").write_text("{}")
    config.to_yaml(stage_dir / "training_config.yaml")
    write_training_manifest(stage_dir, {"export_sha256": sha256_dir(export), "method": method, "trained_on": []})
    (stage_dir / "metrics.json").write_text(json.dumps({"steps": config.max_steps, "final_loss": 1.5}))


@pytest.fixture()
def export(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"id": "a"}\n')
    return folder


def test_a_preset_continuing_another_trains_that_stage_first_with_the_runs_base_model_and_steps(tmp_path, ft_home,
                                                                                                export):
    preset = _presets(tmp_path)
    stages = recipe.plan(TrainingConfig.from_yaml(preset), preset, export, max_steps=3, base_model="/models/tiny")
    assert [(s.name, s.config.method, s.reuse) for s in stages] == [("tiny-sft", "sft", False)]
    assert stages[0].output == ft_home / "adapters" / "tiny-sft"
    assert (stages[0].config.max_steps, stages[0].config.base_model) == (3, "/models/tiny")
    record = stages[0].record(sha256_dir(export), {"steps": 3, "final_loss": 2.0})
    assert record["adapter"] == "adapters/tiny-sft" and record["preset"].endswith("tiny-sft.yaml")


def test_the_bundled_grpo_preset_is_a_recipe_on_the_bundled_sft_preset(ft_home):
    preset = recipe.PRESETS_DIR / "smollm2-cpu-grpo.yaml"
    stages = recipe.check(TrainingConfig.from_yaml(preset), preset)
    assert [s.preset for s in stages] == [recipe.PRESETS_DIR / "smollm2-cpu-sft.yaml"]


def test_an_earlier_stage_is_reused_only_when_trained_on_this_export_with_its_config(tmp_path, ft_home, export):
    preset = _presets(tmp_path)
    config = TrainingConfig.from_yaml(preset)
    sft = TrainingConfig.from_yaml(tmp_path / "tiny-sft.yaml")
    _trained(ft_home / "adapters" / "tiny-sft", sft, export)
    assert [s.reuse for s in recipe.plan(config, preset, export)] == [True]
    # the same adapter, asked for with other steps: another config, trained again
    assert [s.reuse for s in recipe.plan(config, preset, export, max_steps=2)] == [False]
    (export / "train.jsonl").write_text('{"id": "b"}\n')  # other data
    assert [s.reuse for s in recipe.plan(config, preset, export)] == [False]


def test_an_unfinished_earlier_stage_is_not_reused(tmp_path, ft_home, export):
    preset = _presets(tmp_path)
    _trained(ft_home / "adapters" / "tiny-sft", TrainingConfig.from_yaml(tmp_path / "tiny-sft.yaml"), export)
    (ft_home / "adapters" / "tiny-sft" / "metrics.json").unlink()  # killed before it finished
    assert [s.reuse for s in recipe.plan(TrainingConfig.from_yaml(preset), preset, export)] == [False]


def test_an_adapter_no_preset_can_train_is_refused_in_one_line_naming_the_preset_and_field(tmp_path, ft_home):
    preset = _presets(tmp_path, continued="adapters/never-made")
    with pytest.raises(ValueError) as err:
        recipe.check(TrainingConfig.from_yaml(preset), preset)
    message = str(err.value)
    assert message.startswith(f"{preset}: field init_adapter: 'adapters/never-made' holds no LoRA adapter")
    assert "\n" not in message


def test_a_users_own_adapter_is_used_as_it_is_when_there(tmp_path, ft_home):
    own = tmp_path / "my-adapter"
    preset = _presets(tmp_path, continued=str(own))
    config = TrainingConfig.from_yaml(preset)
    with pytest.raises(ValueError, match="holds no LoRA adapter"):
        recipe.check(config, preset)
    own.mkdir()
    (own / "adapter_config.json").write_text("{}")
    assert recipe.check(config, preset) == []


def test_presets_that_continue_each_other_are_refused(tmp_path, ft_home):
    (tmp_path / "a.yaml").write_text("method: dpo\nbase_model: tiny\ninit_adapter: adapters/b\n")
    (tmp_path / "b.yaml").write_text("method: sft\nbase_model: tiny\ninit_adapter: adapters/a\n")
    with pytest.raises(ValueError, match="continues itself"):
        recipe.check(TrainingConfig.from_yaml(tmp_path / "a.yaml"), tmp_path / "a.yaml")
