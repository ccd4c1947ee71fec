"""Evaluation and release: the tuned model against base and the prompt-only baseline, then a
versioned, documented release only when every gate passed."""

import json
import re
import shutil
from pathlib import Path

import dagster as dg

from ft_pipeline.core import answers, paths
from ft_pipeline.core.release import model_card, registry
from ft_pipeline.core.jsonl import iter_jsonl
from ft_pipeline.defs.common import file_metadata, log_progress, run_dir
from ft_pipeline.defs.gates import require_gates
from ft_pipeline.defs.release.configs import EvalConfig, PromotionConfig
from ft_pipeline.defs.release.lineage import collect_lineage

GROUP = "release"


@dg.asset(group_name=GROUP, kinds={"transformers", "fairlearn"}, code_version="1")
def eval_report(
    context: dg.AssetExecutionContext,
    config: EvalConfig,
    base_model: dict,
    jsonl_export: dict,
    fit_assessment: dict,
    adapter_weights: dict,
) -> dict:
    """Base vs prompt-only baseline vs tuned on the held-out test split: exact match, JSON and
    schema validity, ROUGE-L, per-group metrics (fairlearn) and a PII leakage probe."""
    from ft_pipeline.core import plots
    from ft_pipeline.core.release import evaluation
    from ft_pipeline.core.release.generation import generate
    from ft_pipeline.core.data.redaction import Redactor, recorded_config

    export_dir = Path(jsonl_export["path"])
    by_id = {r["id"]: r for r in iter_jsonl(export_dir / "test.jsonl")}
    test = [by_id[i] for i in fit_assessment["test_ids"]]  # the same examples the baseline answered
    if config.max_examples:
        test = test[: config.max_examples]
    baseline = {row["id"]: row["prediction"] for row in iter_jsonl(fit_assessment["predictions_path"])}
    prompts = [answers.prompt_turns(r) for r in test]
    # Generation stops once an answer holds one JSON object: the score reads the first object only.
    budget = {"max_new_tokens": config.max_new_tokens, "stop_after_json": True}
    base = generate(base_model["path"], prompts, progress=log_progress(context, "base generation"), **budget)
    tuned = generate(base_model["path"], prompts, adapter_dir=adapter_weights["path"],
                     progress=log_progress(context, "tuned generation"), **budget)
    variants = {"base": base, "prompt_baseline": [baseline[r["id"]] for r in test], "tuned": tuned}
    attributes = {row["id"]: row["attributes"] for row in iter_jsonl(export_dir / "attributes.jsonl")}
    result = evaluation.evaluate_variants(test, variants, attributes, min_group_size=config.min_group_size)

    # Leakage: canaries planted in the training data must never come back, whether asked for
    # directly or not; every generation is also scanned with the redaction analyzer.
    pattern = re.compile(config.canary_pattern)
    canaries = sorted({m for r in iter_jsonl(export_dir / "train.jsonl") for t in r["messages"] for m in pattern.findall(t["content"])})
    probe_outputs = generate(base_model["path"], evaluation.canary_prompts(canaries), adapter_dir=adapter_weights["path"],
                             max_new_tokens=config.max_new_tokens) if canaries else []
    redactor = Redactor(recorded_config(jsonl_export))  # the rules the training data was redacted under
    leakage = evaluation.leakage_probe(tuned + probe_outputs, canaries, pii_finder=redactor.find_pii)

    out = run_dir("reports", "eval_report", context.run_id)
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as fh:
        for i, record in enumerate(test):
            fh.write(json.dumps({"id": record["id"], **{v: variants[v][i] for v in variants}}, ensure_ascii=False) + "\n")
    markdown = evaluation.render_markdown(result, leakage=leakage)
    chart = plots.bar_chart({v: m["exact_match"] for v, m in result.variants.items()}, "Exact match on held-out test split")
    groups_chart = plots.grouped_bars(result.group_table("tuned") if hasattr(result, "group_table") else {}, "Tuned exact match by group")
    figures = plots.png_to_markdown(chart, "exact match by variant") + "\n\n" + plots.png_to_markdown(groups_chart, "by group")
    (out / "eval_report.md").write_text(markdown + "\n\n" + figures + "\n")
    context.add_output_metadata({
        **file_metadata(out / "eval_report.md"),
        **{f"{v}_exact_match": m["exact_match"] for v, m in result.variants.items()},
        "held_out_examples": len(test),
        "canaries_planted": len(canaries),
        "canary_leaks": leakage["canary_leaks"],
        "report": dg.MetadataValue.md(markdown),
        "comparison": dg.MetadataValue.md(figures),
    })
    return {"path": str(out / "eval_report.md"), "variants": result.variants, "groups": result.groups,
            "largest_gaps": result.largest_gaps, "leakage": leakage, "predictions_path": str(out / "predictions.jsonl")}


@dg.asset(group_name=GROUP, kinds={"registry"}, code_version="1")
def promoted_model(
    context: dg.AssetExecutionContext,
    config: PromotionConfig,
    base_model: dict,
    jsonl_export: dict,
    adapter_weights: dict,
    eval_report: dict,
) -> dict:
    """The versioned release under $FT_PIPELINE_HOME/registry/<name>/<version>/: adapter, merged
    weights, model card and lineage; `current` moves only after the smoke test passed."""
    from ft_pipeline.core.release.generation import generate

    gates = require_gates(context)
    root = paths.pipeline_home() / "registry"
    staging = registry.staging_dir(root, config.name)
    shutil.copytree(adapter_weights["path"], staging / "adapter")
    registry.merge_adapter(Path(base_model["path"]), Path(adapter_weights["path"]), staging / "merged")

    # Smoke test on the staged, merged weights: the release must load without peft and answer
    # held-out prompts, before `current` can point at it.
    held_out = list(iter_jsonl(Path(jsonl_export["path"]) / "test.jsonl"))[: config.smoke_examples]
    replies = generate(str(staging / "merged"), [answers.prompt_turns(r) for r in held_out], max_new_tokens=32, stop_after_json=True)
    answered = [bool(r.strip()) for r in replies]
    json_answers = sum(answers.parse_json_answer(r) is not None for r in replies)
    if not held_out or not all(answered):
        shutil.rmtree(staging, ignore_errors=True)
        raise dg.Failure(f"smoke test failed: {answered.count(False)}/{len(held_out)} held-out prompts got no answer")

    version = registry.next_version(root, config.name)
    lineage = collect_lineage(context, name=config.name, version=version)
    lineage["training"] = _training_summary(adapter_weights)
    lineage["evaluation"] = {"variants": eval_report["variants"], "leakage": eval_report["leakage"]}
    lineage["gates"] = gates
    lineage["smoke_test"] = {"examples": len(held_out), "json_answers": json_answers}
    (staging / "lineage.json").write_text(json.dumps(lineage, indent=2, default=str))
    (staging / "MODEL_CARD.md").write_text(model_card.render(lineage))
    published = registry.publish(root, config.name, staging)
    path = root / config.name / published
    context.add_output_metadata({
        **file_metadata(path / "adapter"),
        "version": published,
        "registry_path": dg.MetadataValue.path(str(path)),
        "model_card": dg.MetadataValue.md((path / "MODEL_CARD.md").read_text()),
        "smoke_test": f"{len(held_out)} held-out prompts answered, {json_answers} with valid JSON",
    })
    return {"path": str(path), "name": config.name, "version": published}


def _training_summary(adapter_weights: dict) -> dict:
    cfg, metrics = adapter_weights["config"], adapter_weights["metrics"]
    return {
        "base_model": cfg.get("base_model"), "method": cfg.get("method"), "lora_r": cfg.get("lora_rank"),
        "lora_alpha": cfg.get("lora_alpha"), "steps": metrics.get("steps"), "final_loss": metrics.get("final_loss"),
        "config": cfg,
    }

