"""Builds a small demo slice and the run config that materializes the whole graph on the tiny model."""
from __future__ import annotations

import json
from pathlib import Path

from ft_pipeline_tests.conftest import DEMO_RECORDS, REPO

DEMO_TASK = REPO / "configs" / "tasks" / "demo-triage.yaml"

TINY_PRESET = """\
method: sft
base_model: tiny
lora_rank: 8
lora_alpha: 16
lora_dropout: 0.0
target_modules: [q_proj, v_proj]
learning_rate: 5.0e-3
max_steps: {max_steps}
per_device_batch_size: 8
gradient_accumulation: 1
max_length: 256
assistant_only_loss: true
precision: fp32
logging_steps: 2
save_steps: {save_steps}
gpu_type: cpu
price_per_hour: 1.0
budget_usd: {budget}
"""


# The tiny random model cannot beat a baseline: tests that need a promotion lower the release
# bounds in the task file's `gates:`, as an operator could (and the task's sha256 in the audit
# trail records). The capability probe is cut to a few items: the tiny model knows no capitals.
RELAXED_GATES = {"min_margin_over_base": -1.0, "min_margin_over_baseline": -1.0, "min_margin_over_alternative": -1.0,
                 "max_group_gap": 1.0,
                 "max_capability_loss": 1.0, "capability_items": 8, "n_boot": 200}


def demo_slice(path: Path, per_split: dict[str, int] | None = None, extra: list[dict] = ()) -> Path:
    """The first records of each split of the bundled demo (a few confidential ones included)."""
    want = per_split or {"train": 40, "eval": 6, "test": 12}
    taken = {k: 0 for k in want}
    rows, confidential = [], 0
    for line in DEMO_RECORDS.read_text().splitlines():
        record = json.loads(line)
        split = record.get("split")
        is_confidential = "CONFIDENTIAL" in line or "BEGIN RSA" in line or "AKIA" in line
        if is_confidential and confidential < 2:
            rows.append(line)
            confidential += 1
        elif split in taken and taken[split] < want[split] and not is_confidential:
            rows.append(line)
            taken[split] += 1
    rows += [json.dumps(r) for r in extra]
    path.write_text("\n".join(rows) + "\n")
    return path


def write_preset(path: Path, max_steps: int = 6, save_steps: int = 3, budget: float = 100.0) -> Path:
    path.write_text(TINY_PRESET.format(max_steps=max_steps, save_steps=save_steps, budget=budget))
    return path


def add_source(instance, source: Path | str) -> str:
    """Registers `source` as a raw_files partition (as the sensors and the demo do); returns its key
    (the location, or its alias when the name holds PII)."""
    from ft_pipeline.defs.data.partitions import partition_key_for, register_sources

    key = partition_key_for(str(source))
    register_sources(instance, [key])
    return key


def run_config(model_dir: Path, preset: Path, **overrides) -> dict:
    ops = {"base_model": {"config": {"name_or_path": str(model_dir)}}}
    for op, config in overrides.items():
        ops.setdefault(op, {"config": {}})["config"].update(config)
    return {"ops": ops, "resources": plan(preset)}


def demo_task(path: Path, **changes) -> Path:
    """The demo's task file with some fields changed (e.g. few_shot), written to `path` as given:
    a mistake in `changes` is left for the code under test to find."""
    import yaml

    from ft_pipeline.core.task import TaskConfig

    data = {k: v for k, v in TaskConfig.from_yaml(DEMO_TASK).to_dict().items() if k != "source_path"}
    path.write_text(yaml.safe_dump({**data, **changes}, sort_keys=False, allow_unicode=True))
    return path


def plan(preset: Path) -> dict:
    """The training_plan resource's run config: the one knob both the cost estimate and training read."""
    return {"training_plan": {"config": {"preset": str(preset)}}}


def pipeline_keys(defs) -> list:
    """Every asset of the pipeline in one run: all but the serving group's production_traffic,
    partitioned by day, which cannot share a run with a source partition."""
    import dagster as dg

    return sorted((dg.AssetSelection.all() - dg.AssetSelection.groups("serving")).resolve(defs.resolve_asset_graph()))
