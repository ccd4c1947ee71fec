"""A release, outside Dagster: stage the adapter and the merged weights, smoke-test the merged
weights on held-out prompts, then write the lineage, the model card and the training manifest and
publish the version (registry.publish moves `current` only after all of that is on disk).

The promoted_model asset collects the lineage of the assets upstream (that part needs Dagster's
event log) and calls `stage`, `record` and `publish`.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from ft_pipeline.core import answers
from ft_pipeline.core.jsonl import iter_jsonl
from ft_pipeline.core.release import model_card, registry
from ft_pipeline.core.training.manifest import write_training_manifest
from ft_pipeline.core.task import TaskConfig

EVALUATION_KEYS = ("metric", "variants", "comparisons", "groups_with_intervals", "leakage", "capability",
                   "memorization")


class ReleaseError(Exception):
    """The staged release failed its smoke test; nothing was published."""


@dataclass
class Staged:
    path: Path  # the staging folder: adapter/ and merged/
    prompts: int  # held-out prompts the merged weights answered
    well_formed: int  # of those, answers of the task's form (scored for form only: eval_report judged content)


def stage(root: Path, task: TaskConfig, base_model: str | Path, adapter: str | Path, export_dir: str | Path,
          smoke_examples: int) -> Staged:
    """Adapter copied and base + adapter merged into plain weights under a staging folder; the merged
    weights must load without peft and answer every held-out smoke prompt (ReleaseError otherwise,
    and the staging folder is removed)."""
    from ft_pipeline.core.evaluation.generation import generate

    staging = registry.staging_dir(root, task.name)
    shutil.copytree(adapter, staging / "adapter")
    registry.merge_adapter(Path(base_model), Path(adapter), staging / "merged")
    prompts = smoke_prompts(Path(export_dir), smoke_examples)
    replies = generate(str(staging / "merged"), prompts, max_new_tokens=max(task.max_new_tokens, 16),
                       stop_after_json=task.type == "structured")
    unanswered = sum(not r.strip() for r in replies)
    if not prompts or unanswered:
        shutil.rmtree(staging, ignore_errors=True)
        raise ReleaseError(f"smoke test failed: {unanswered}/{len(prompts)} held-out prompts got no answer")
    well_formed = sum(task.type == "preference" or answers.check_answer(task, r) is None for r in replies)
    return Staged(staging, len(prompts), well_formed)


def smoke_prompts(export_dir: Path, n: int) -> list[list[dict]]:
    """Held-out prompts for the smoke test: test conversations, else held-out preference prompts."""
    prompts = [answers.prompt_turns(r) for r in iter_jsonl(export_dir / "test.jsonl")][:n]
    for name in ("preference_test.jsonl", "preference_eval.jsonl"):
        prompts += [r["prompt"] for r in iter_jsonl(export_dir / name)][: n - len(prompts)]
    return prompts


def record(task: TaskConfig, task_file: dict, adapter_weights: dict, eval_report: dict, gates: dict,
           staged: Staged) -> dict:
    """The lineage sections a release adds to its upstream lineage: the task file (by digest), the
    training run, the evaluation with every gate's verdict, the gates re-verified, the smoke test."""
    cfg, metrics = adapter_weights["config"], adapter_weights["metrics"]
    evaluation = {key: eval_report.get(key) for key in EVALUATION_KEYS}
    evaluation["verdicts"] = {name: {k: v[k] for k in ("passed", "outcome", "detail")}
                              for name, v in eval_report.get("verdicts", {}).items()}
    return {
        "task": {"name": task.name, "type": task.type, "description": task.description, "metric": task.metric,
                 "target": task.target, "sha256": task_file["sha256"], "path": task_file["path"]},
        "training": {"base_model": cfg.get("base_model"), "method": cfg.get("method"), "lora_r": cfg.get("lora_rank"),
                     "lora_alpha": cfg.get("lora_alpha"), "steps": metrics.get("steps"),
                     "final_loss": metrics.get("final_loss"), "config": cfg,
                     # the evidence bundle's compute estimate: 6 * total_params * train_tokens
                     **{k: metrics.get(k) for k in ("total_params", "trainable_params", "train_tokens", "train_examples")},
                     # spent epsilon, delta, clip norm of a DP-SGD run (the adapter's privacy.json); None: no DP
                     "privacy": metrics.get("privacy"),
                     # the training run's and the fit assessment's pilots' epsilon composed (privacy.total_privacy)
                     "privacy_total": adapter_weights.get("privacy_total"),
                     # a recipe (SFT, then GRPO on it): every stage's adapter, data and steps, first first
                     "stages": adapter_weights.get("stages") or []},
        "evaluation": evaluation,
        "gates": gates,
        "smoke_test": {"examples": staged.prompts, "well_formed_answers": staged.well_formed},
    }


def publish(root: Path, name: str, staged: Staged, lineage: dict, trained_on: dict, make_current: bool = True) -> Path:
    """lineage.json, MODEL_CARD.md and the training manifest (kept when --retire deletes the
    weights) written into the staged version, which is then published (as current, or beside it
    to wait for a rollout); returns its folder."""
    from ft_pipeline.core.data.suppression import erased_digests, erasure_lock

    (staged.path / "lineage.json").write_text(json.dumps(lineage, indent=2, default=str))
    (staged.path / "MODEL_CARD.md").write_text(model_card.render(lineage))
    write_training_manifest(staged.path, trained_on)
    # Under the erasure lock: a forget either finished before this check (and the adapter's
    # training data is checked against it here) or starts after the publish (and marks the new
    # version). Training takes hours, and a forget may well land while it runs.
    with erasure_lock():
        erased = erased_digests() & set(trained_on.get("trained_on", []))
        if erased:
            shutil.rmtree(staged.path, ignore_errors=True)
            raise ReleaseError(f"refusing to promote: {len(erased)} of its training records were erased while it "
                               "trained or since; retrain on the current data")
        version = registry.publish(root, name, staged.path, make_current)
    current = registry.current_version(root, name)
    if current != version:  # held: live.py starts its rollout in the server
        registry.record_rollout(registry.model_root(root, name) / version,
                                {"event": "held", "version": version, "incumbent": current})
    return registry.model_root(root, name) / version
