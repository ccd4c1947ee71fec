"""Model selection, the fit assessment and training. GPU work happens in the standalone trainer;
these assets only prepare, launch through the trainer resource, and report."""

import json
from pathlib import Path

import dagster as dg

from ft_pipeline.core import answers, paths
from ft_pipeline.core.training import model_stats
from ft_pipeline.core.jsonl import iter_jsonl
from ft_pipeline.defs.common import file_metadata, log_progress, run_dir
from ft_pipeline.defs.data.assets import jsonl_export
from ft_pipeline.defs.gates import require_gates
from ft_pipeline.defs.training.configs import BaseModelConfig, FitAssessmentConfig, TrainingRunConfig
from ft_pipeline.defs.training.resources import TrainerResource

GROUP = "training"


@dg.asset(group_name=GROUP, kinds={"transformers"}, code_version="1")
def base_model(context: dg.AssetExecutionContext, config: BaseModelConfig) -> dict:
    """The base model as a local Hugging Face directory (the bundled SmolLM2 is converted from
    GGUF once and cached under $FT_PIPELINE_HOME/models/)."""
    from ft_pipeline.core.training.base_model import ensure_base_model

    path = ensure_base_model(config.name_or_path)
    if not Path(path).is_dir():  # a hub id: resolved by from_pretrained at load time
        context.add_output_metadata({"hub_id": str(path)})
        return {"path": str(path), "name": config.name_or_path, "n_params": None}
    n_params = model_stats.count_parameters(Path(path))
    context.add_output_metadata({**file_metadata(Path(path)), "name": config.name_or_path, "parameters": n_params})
    return {"path": str(path), "name": config.name_or_path, "n_params": n_params}


@dg.asset(group_name=GROUP, kinds={"transformers"}, code_version="1")
def fit_assessment(
    context: dg.AssetExecutionContext, config: FitAssessmentConfig, base_model: dict, jsonl_export: dict
) -> dict:
    """Should this task be fine-tuned at all? The base model with a task system prompt (and
    few-shot examples if configured) on the held-out split, against the target; plus the cost of
    the configured training run and model-size guidance."""
    from ft_pipeline.core import plots
    from ft_pipeline.core.release import evaluation, fit
    from ft_pipeline.core.release.generation import generate
    from ft_pipeline.core.training.config import TrainingConfig
    from ft_pipeline.core.training.cost import estimate_cost, model_size_guidance

    export_dir = Path(jsonl_export["path"])
    test = list(iter_jsonl(export_dir / "test.jsonl"))
    if config.max_examples:
        test = test[: config.max_examples]
    space = answers.label_space(iter_jsonl(export_dir / "train.jsonl"))
    system_prompt = answers.task_system_prompt(space)
    shots = list(iter_jsonl(export_dir / "train.jsonl"))[: config.few_shot] if config.few_shot else []
    prompts = [fit.build_prompt(answers.prompt_turns(r), system_prompt, shots) for r in test]
    context.log.info(f"prompt-only baseline on {len(prompts)} held-out examples")
    predictions = generate(base_model["path"], prompts, max_new_tokens=config.max_new_tokens, stop_after_json=True,
                           progress=log_progress(context, "baseline generation"))

    out = run_dir("reports", "fit_assessment", context.run_id)
    with open(out / "baseline_predictions.jsonl", "w", encoding="utf-8") as fh:
        for record, text in zip(test, predictions):
            fh.write(json.dumps({"id": record["id"], "prediction": text}, ensure_ascii=False) + "\n")
    attributes = {row["id"]: row["attributes"] for row in iter_jsonl(export_dir / "attributes.jsonl")}
    result = evaluation.evaluate_variants(test, {"prompt_baseline": predictions}, attributes)
    baseline = result.variants["prompt_baseline"]
    assessment = fit.assess_fit(baseline, config.target_exact_match,
                                task_profile={"needs_fresh_facts": config.needs_fresh_facts, "task": "classification"})

    training = TrainingConfig.from_yaml(config.training_preset)
    train_texts = (m["content"] for r in iter_jsonl(export_dir / "train.jsonl") for m in r["messages"])
    tokenizer_dir = Path(base_model["path"]) if Path(base_model["path"]).is_dir() else None
    n_tokens = model_stats.count_tokens(train_texts, tokenizer_dir)
    n_params = base_model["n_params"] or 0
    cost = estimate_cost(training, n_tokens, n_params)
    guidance = model_size_guidance(jsonl_export["counts"]["train"], n_tokens, "classification")

    report = fit.render_markdown(assessment) if hasattr(fit, "render_markdown") else ""
    chart = plots.bar_chart({"baseline exact match": baseline["exact_match"], "target": config.target_exact_match},
                            "Prompt-only baseline vs target")
    context.add_output_metadata({
        **file_metadata(out / "baseline_predictions.jsonl"),
        "recommendation": assessment["recommendation"],
        "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in assessment["reasons"])),
        "baseline_exact_match": baseline["exact_match"],
        "baseline_json_valid": baseline["json_valid"],
        "target_exact_match": config.target_exact_match,
        "held_out_examples": len(test),
        "override": config.override,
        "override_reason": config.override_reason,
        "estimated_cost_usd": cost["usd"],
        "estimated_device_hours": cost["device_hours"],
        "cost_estimate": dg.MetadataValue.json(cost),
        "model_size_guidance": dg.MetadataValue.json(guidance),
        "baseline_vs_target": dg.MetadataValue.md(plots.png_to_markdown(chart, "baseline vs target")),
        **({"report": dg.MetadataValue.md(report)} if report else {}),
    })
    return {
        **assessment,
        "path": str(out / "baseline_predictions.jsonl"),
        "baseline": baseline,
        "predictions_path": str(out / "baseline_predictions.jsonl"),
        "system_prompt": system_prompt,
        "few_shot_ids": [s["id"] for s in shots],
        "test_ids": [r["id"] for r in test],
        "cost": cost,
        "budget_usd": training.budget_usd,
        "size_guidance": guidance,
        "override": config.override,
        "override_reason": config.override_reason,
    }


@dg.asset(group_name=GROUP, kinds={"peft", "trl"}, code_version="1")
def adapter_weights(
    context: dg.AssetExecutionContext,
    config: TrainingRunConfig,
    trainer: TrainerResource,
    base_model: dict,
    jsonl_export: dict,
    fit_assessment: dict,
) -> dg.Output:
    """The LoRA adapter, trained by the standalone trainer. Refuses to start unless every
    blocking gate upstream passed on the exact materializations it reads."""
    from ft_pipeline.core import plots
    from ft_pipeline.core.release import erasure_marks
    from ft_pipeline.core.training.config import TrainingConfig

    gates = require_gates(context)
    training = TrainingConfig.from_yaml(config.preset)
    training.base_model = base_model["path"]
    if config.max_steps:
        training.max_steps = config.max_steps
    # Same config on the same data trains into the same directory, so a killed run resumes
    # from its last checkpoint when the asset is materialized again.
    data_sha = file_metadata(Path(jsonl_export["path"]))["sha256"].value
    output_dir = paths.pipeline_home() / "models" / "adapter_weights" / f"{training.fingerprint()}-{data_sha[:12]}"
    # The ids the trainer is about to read, as digests, taken before it starts: an erasure that
    # rewrites the export mid-training must still find this adapter (and refuse its promotion).
    trained_on = erasure_marks.training_manifest(Path(jsonl_export["path"]), training.method, training.init_adapter)
    metrics = trainer.launch(context, training, Path(jsonl_export["path"]), output_dir)
    erasure_marks.write_training_manifest(output_dir, trained_on)

    history = [(h["step"], h["loss"]) for h in metrics.get("history", []) if h.get("loss") is not None]
    curve = plots.line_chart({"train loss": history}, "Training loss", "step", "loss") if history else None
    context.add_output_metadata({
        **file_metadata(output_dir),
        "method": training.method,
        "steps": metrics.get("steps"),
        "final_loss": metrics.get("final_loss"),
        "tokens_per_second": metrics.get("tokens_per_s"),
        "peak_memory_mb": round((metrics.get("peak_memory_bytes") or 0) / 2**20, 1),
        "resumed_from_step": metrics.get("resumed_from") or 0,
        "wall_seconds": metrics.get("wall_seconds"),
        "gates_verified": len(gates),
        **({"loss_curve": dg.MetadataValue.md(plots.png_to_markdown(curve, "loss curve"))} if curve else {}),
    })
    # An explicit Output: with Dagster Pipes in play (subprocess / accelerate / ecs), a bare
    # return value is refused.
    return dg.Output({"path": str(output_dir), "metrics": metrics, "config": training.to_dict()})
