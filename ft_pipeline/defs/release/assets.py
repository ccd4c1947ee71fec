"""Evaluation and release: the tuned model against base and the prompt-only baseline, then a
versioned, documented release only when every gate passed."""

import json
import re
import shutil
from pathlib import Path

import dagster as dg

from ft_pipeline.core import answers, paths
from ft_pipeline.core.release import erasure_marks, model_card, registry
from ft_pipeline.core.jsonl import iter_jsonl
from ft_pipeline.defs.common import file_metadata, log_progress, run_dir, task_config, task_metadata
from ft_pipeline.defs.gates import require_gates
from ft_pipeline.defs.release.configs import EvalConfig, PromotionConfig
from ft_pipeline.defs.release.lineage import collect_lineage

GROUP = "release"


@dg.asset(group_name=GROUP, kinds={"transformers", "fairlearn"}, code_version="2")
def eval_report(
    context: dg.AssetExecutionContext,
    config: EvalConfig,
    base_model: dict,
    jsonl_export: dict,
    fit_assessment: dict,
    adapter_weights: dict,
    task: dict,
) -> dict:
    """Base vs prompt-only baseline vs tuned on the held-out test split: exact match, JSON and
    schema validity, ROUGE-L, per-group metrics (fairlearn) and a PII leakage probe."""
    from ft_pipeline.core import plots
    from ft_pipeline.core.release import evaluation
    from ft_pipeline.core.release.generation import generate
    from ft_pipeline.core.data.redaction import RedactionConfig, Redactor

    spec = task_config(task)
    export_dir = Path(jsonl_export["path"])
    by_id = {r["id"]: r for r in iter_jsonl(export_dir / "test.jsonl")}
    test = [by_id[i] for i in fit_assessment["test_ids"]]  # the same examples the baseline answered
    if config.max_examples:
        test = test[: config.max_examples]
    baseline = {row["id"]: row["prediction"] for row in iter_jsonl(fit_assessment["predictions_path"])}
    prompts = [answers.prompt_turns(r) for r in test]
    # Generation stops once an answer holds one JSON object: the score reads the first object only.
    budget = {"max_new_tokens": spec.max_new_tokens, "stop_after_json": spec.type == "structured"}
    base = generate(base_model["path"], prompts, progress=log_progress(context, "base generation"), **budget)
    tuned = generate(base_model["path"], prompts, adapter_dir=adapter_weights["path"],
                     progress=log_progress(context, "tuned generation"), **budget)
    variants = {"base": base, "prompt_baseline": [baseline[r["id"]] for r in test], "tuned": tuned}
    attributes = {row["id"]: row["attributes"] for row in iter_jsonl(export_dir / "attributes.jsonl")}
    result = evaluation.evaluate_variants(spec, test, variants, attributes, min_group_size=config.min_group_size,
                                          labels=fit_assessment.get("labels"))

    # Leakage: canaries planted in the training data must never come back, whether asked for
    # directly or not; every generation is also scanned with the redaction analyzer.
    pattern = re.compile(spec.canary_pattern) if spec.canary_pattern else None
    canaries = sorted({m for r in iter_jsonl(export_dir / "train.jsonl") for t in r["messages"]
                       for m in pattern.findall(t["content"])}) if pattern else []
    probe_outputs = generate(base_model["path"], evaluation.canary_prompts(canaries), adapter_dir=adapter_weights["path"],
                             max_new_tokens=spec.max_new_tokens) if canaries else []
    redactor = Redactor(RedactionConfig())
    leakage = evaluation.leakage_probe(tuned + probe_outputs, canaries, pii_finder=redactor.find_pii)

    out = run_dir("reports", "eval_report", context.run_id)
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as fh:
        for i, record in enumerate(test):
            fh.write(json.dumps({"id": record["id"], **{v: variants[v][i] for v in variants}}, ensure_ascii=False) + "\n")
    markdown = evaluation.render_markdown(result, leakage=leakage)
    metric = result.metric
    chart = plots.bar_chart({v: m[metric] for v, m in result.variants.items()}, f"{metric} on the held-out test split")
    groups_chart = plots.grouped_bars(result.group_table("tuned"), f"Tuned {metric} by group")
    figures = plots.png_to_markdown(chart, f"{metric} by variant") + "\n\n" + plots.png_to_markdown(groups_chart, "by group")
    (out / "eval_report.md").write_text(markdown + "\n\n" + figures + "\n")
    context.add_output_metadata({
        **file_metadata(out / "eval_report.md"),
        **task_metadata(task),
        "metric": metric,
        **{f"{v}_{metric}": m[metric] for v, m in result.variants.items()},
        "held_out_examples": len(test),
        "canaries_planted": len(canaries),
        "canary_leaks": leakage["canary_leaks"],
        "report": dg.MetadataValue.md(markdown),
        "comparison": dg.MetadataValue.md(figures),
    })
    return {"path": str(out / "eval_report.md"), "metric": metric, "variants": result.variants, "groups": result.groups,
            "largest_gaps": result.largest_gaps, "leakage": leakage, "predictions_path": str(out / "predictions.jsonl")}


@dg.asset(group_name=GROUP, kinds={"registry"}, code_version="1")
def promoted_model(
    context: dg.AssetExecutionContext,
    config: PromotionConfig,
    base_model: dict,
    jsonl_export: dict,
    adapter_weights: dict,
    eval_report: dict,
    task: dict,
) -> dict:
    """The versioned release under $FT_PIPELINE_HOME/registry/<task name>/<version>/: adapter,
    merged weights, model card and lineage; `current` moves only after the smoke test passed."""
    from ft_pipeline.core.release.generation import generate

    gates = require_gates(context)
    spec = task_config(task)
    name = spec.name
    trained_on = _clean_training_data(adapter_weights)
    root = paths.pipeline_home() / "registry"
    staging = registry.staging_dir(root, name)
    shutil.copytree(adapter_weights["path"], staging / "adapter")
    registry.merge_adapter(Path(base_model["path"]), Path(adapter_weights["path"]), staging / "merged")

    # Smoke test on the staged, merged weights: the release must load without peft and answer
    # held-out prompts, before `current` can point at it.
    held_out = list(iter_jsonl(Path(jsonl_export["path"]) / "test.jsonl"))[: config.smoke_examples]
    replies = generate(str(staging / "merged"), [answers.prompt_turns(r) for r in held_out],
                       max_new_tokens=spec.max_new_tokens, stop_after_json=spec.type == "structured")
    answered = [bool(r.strip()) for r in replies]
    # The replies are scored for their form only: the evaluation already judged their content.
    well_formed = sum(answers.check_answer(spec, r) is None for r in replies)
    if not held_out or not all(answered):
        shutil.rmtree(staging, ignore_errors=True)
        raise dg.Failure(f"smoke test failed: {answered.count(False)}/{len(held_out)} held-out prompts got no answer")

    version = registry.next_version(root, name)
    lineage = collect_lineage(context, name=name, version=version)
    lineage["task"] = {"name": spec.name, "type": spec.type, "description": spec.description, "metric": spec.metric,
                       "target": spec.target, "sha256": task["sha256"], "path": task["path"]}
    lineage["training"] = _training_summary(adapter_weights)
    lineage["evaluation"] = {"variants": eval_report["variants"], "leakage": eval_report["leakage"]}
    lineage["gates"] = gates
    lineage["smoke_test"] = {"examples": len(held_out), "well_formed_answers": well_formed}
    (staging / "lineage.json").write_text(json.dumps(lineage, indent=2, default=str))
    (staging / "MODEL_CARD.md").write_text(model_card.render(lineage))
    erasure_marks.write_training_manifest(staging, trained_on)  # kept when --retire deletes the weights
    published = registry.publish(root, name, staging)
    path = root / name / published
    context.add_output_metadata({
        **file_metadata(path / "adapter"),
        **task_metadata(task),
        "version": published,
        "registry_path": dg.MetadataValue.path(str(path)),
        "model_card": dg.MetadataValue.md((path / "MODEL_CARD.md").read_text()),
        "smoke_test": f"{len(held_out)} held-out prompts answered, {well_formed} well-formed for the task",
    })
    return {"path": str(path), "name": name, "version": published}


def _clean_training_data(adapter_weights: dict) -> dict:
    """The adapter's training ids (digests), which must hold no record erased since it trained:
    the release would otherwise serve a model that saw data its owner had erased."""
    from ft_pipeline.core.data.erasure import erased_digests

    manifest = erasure_marks.read_training_manifest(Path(adapter_weights["path"]))
    if manifest is None:
        raise dg.Failure(f"refusing to promote: {adapter_weights['path']} has no {erasure_marks.TRAINING_IDS} "
                         "(trained before training ids were kept); materialize adapter_weights again")
    erased = set(manifest["trained_on"]) & erased_digests()
    if erased:
        raise dg.Failure(f"refusing to promote: adapter_weights was trained on {len(erased)} records erased since "
                         "(ft-pipeline erasures); retrain on the current export first")
    return manifest


def _training_summary(adapter_weights: dict) -> dict:
    cfg, metrics = adapter_weights["config"], adapter_weights["metrics"]
    return {
        "base_model": cfg.get("base_model"), "method": cfg.get("method"), "lora_r": cfg.get("lora_rank"),
        "lora_alpha": cfg.get("lora_alpha"), "steps": metrics.get("steps"), "final_loss": metrics.get("final_loss"),
        "config": cfg,
    }

