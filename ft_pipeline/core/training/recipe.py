"""Recipes: a preset whose `init_adapter` is `adapters/<another preset>` continues that preset's
stage (SFT, then GRPO or DPO on it). `plan` lists the stages a run must train before the one asked
for, so one run trains them all on the same export:

    smollm2-cpu-grpo.yaml  init_adapter: adapters/smollm2-cpu-sft
    -> stage 1: smollm2-cpu-sft.yaml into $FT_PIPELINE_HOME/adapters/smollm2-cpu-sft (unless the
                adapter there is complete, of the same config, and trained on this very export)
    -> stage 2: smollm2-cpu-grpo.yaml on top of it

An earlier stage's adapter is reused only when its training manifest (manifest.py) names the same
export: a GRPO run on new data that continued an SFT adapter of the old data would train on a mix
and record neither. `check` is the up-front half: an init_adapter that is not there and that no
preset can train stops `ft-pipeline run` before any ingest.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ft_pipeline.core import paths
from ft_pipeline.core.digest import sha256_dir
from ft_pipeline.core.training import presets
from ft_pipeline.core.training.config import TrainingConfig
from ft_pipeline.core.training.manifest import read_training_manifest

ADAPTERS = "adapters"  # where `ft-pipeline train` writes adapters/<preset name> by default
PRESETS_DIR = paths.REPO_ROOT / presets.PRESETS_DIR  # the bundled presets


@dataclass
class Stage:
    name: str  # the preset's name (its file stem), which is also its adapter's folder name
    preset: Path
    config: TrainingConfig
    output: Path  # where its adapter lives: what the next stage's init_adapter names
    reuse: bool = False  # its adapter there is complete and was trained on this export

    def record(self, export_sha256: str, metrics: dict | None = None) -> dict:
        """What lineage, manifests and the model card say about this stage."""
        metrics = metrics if metrics is not None else _metrics(self.output)
        return {"stage": self.name, "method": self.config.method, "preset": _shown(self.preset),
                "adapter": _shown(self.output), "init_adapter": self.config.init_adapter,
                "export_sha256": export_sha256, "reused": self.reuse,
                "steps": metrics.get("steps"), "final_loss": metrics.get("final_loss")}


def stage_preset(location: str, preset: Path) -> Path | None:
    """The preset that trains `location` (an init_adapter): adapters/<name> is trained by
    <name>.yaml beside the preset that continues it, else by the bundled one of that name."""
    parts = PurePosixPath(location).parts
    if len(parts) != 2 or parts[0] != ADAPTERS or Path(location).expanduser().is_absolute():
        return None  # an adapter the user placed somewhere: only they know how it was made
    for folder in dict.fromkeys((Path(preset).parent, PRESETS_DIR)):
        candidate = folder / f"{parts[1]}.yaml"
        if candidate.is_file():
            return candidate
    return None


def plan(config: TrainingConfig, preset: Path, export_dir: Path | None = None, *, max_steps: int = 0,
         base_model: str | None = None) -> list[Stage]:
    """The stages to train before `config` (read from `preset`), first first; empty when it
    continues nothing, or continues an adapter the user placed that is there. Each stage gets the
    run's base model and step override. With `export_dir`, a stage whose adapter was trained on
    that export with the same config is marked `reuse` (and so is everything before it). A
    ValueError names the preset and its init_adapter when nothing can satisfy it."""
    stages: list[Stage] = []
    seen = {Path(preset).resolve()}
    while config.init_adapter:
        location, source = config.init_adapter, Path(preset)
        output = paths.home_relative(location)
        preset = stage_preset(location, source)
        if preset is None:
            if not (output / "adapter_config.json").is_file():
                raise ValueError(f"{source}: field init_adapter: {location!r} holds no LoRA adapter and no preset "
                                 f"trains one (adapters/<name> is trained by <name>.yaml in {source.parent} "
                                 f"or {PRESETS_DIR})")
            break  # the user's own adapter, used as it is
        if preset.resolve() in seen:
            raise ValueError(f"{source}: field init_adapter: {location!r} continues itself ({preset} comes back)")
        seen.add(preset.resolve())
        config = TrainingConfig.from_yaml(preset)
        config = dataclasses.replace(config, **{k: v for k, v in (("max_steps", max_steps),
                                                                 ("base_model", base_model)) if v})
        stages.insert(0, Stage(preset.stem, preset, config, output))
    if export_dir is not None:
        export_sha = sha256_dir(Path(export_dir))
        for stage in stages:  # a stage retrained makes every later one stale
            stage.reuse = _trained_on(stage, export_sha)
            if not stage.reuse:
                break
    return stages


def check(config: TrainingConfig, preset: Path) -> list[Stage]:
    """Up front, before any data is read: raises the one-line ValueError `plan` would."""
    return plan(config, preset)


def _trained_on(stage: Stage, export_sha: str) -> bool:
    """Complete (metrics.json is written last), of this stage's config, and trained on this export."""
    if not (stage.output / "metrics.json").is_file():
        return False
    trained = read_training_manifest(stage.output) or {}
    if trained.get("export_sha256") != export_sha or trained.get("method") != stage.config.method:
        return False
    try:
        saved = TrainingConfig.from_yaml(stage.output / "training_config.yaml")
    except (OSError, ValueError):
        return False
    # The base model is compared as this run names it: `ft-pipeline train` records a name where the
    # asset records the converted folder, and both are the same weights.
    return dataclasses.replace(saved, base_model=stage.config.base_model).fingerprint() == stage.config.fingerprint()


def _metrics(output: Path) -> dict:
    try:
        return json.loads((output / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}


def _shown(path: Path) -> str:
    """Paths as lineage shows them: relative to the home or the repo, so no host path is recorded."""
    for root in (paths.pipeline_home(), paths.REPO_ROOT):
        try:
            return Path(path).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
    return str(path)
