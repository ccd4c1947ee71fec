"""Model selection, the fit assessment and training. GPU work happens in the standalone trainer;
these assets only prepare, launch through the trainer resource, and report."""

import json
from pathlib import Path

import dagster as dg

from ft_pipeline.core import answers, paths
from ft_pipeline.core.training import model_stats
from ft_pipeline.core.jsonl import iter_jsonl
from ft_pipeline.defs.common import file_metadata, log_progress, run_dir, task_config, task_metadata
from ft_pipeline.defs.data.assets import jsonl_export
from ft_pipeline.defs.gates import require_gates
from ft_pipeline.defs.training.configs import BaseModelConfig, FitAssessmentConfig
from ft_pipeline.defs.training.resources import TrainerResource, TrainingPlanResource

GROUP = "training"


@dg.asset(group_name=GROUP, kinds={"transformers"}, code_version="1")
def base_model(context: dg.AssetExecutionContext, config: BaseModelConfig) -> dict:
    """The base model as a local Hugging Face directory (the bundled SmolLM2 is converted from
    GGUF once and cached under $FT_PIPELINE_HOME/models/)."""
    from ft_pipeline.core.training.base_model import ensure_base_model

    try:  # a path that is not a model: one line naming it, no traceback
        path = ensure_base_model(config.name_or_path)
        n_params = model_stats.count_parameters(Path(path)) if Path(path).is_dir() else None
    except FileNotFoundError as exc:
        raise dg.Failure(description=str(exc)) from None
    if n_params is None:  # a hub id: resolved by from_pretrained at load time
        context.add_output_metadata({"hub_id": str(path)})
        return {"path": str(path), "name": config.name_or_path, "n_params": None}
    context.add_output_metadata({**file_metadata(Path(path)), "name": config.name_or_path, "parameters": n_params})
    return {"path": str(path), "name": config.name_or_path, "n_params": n_params}


@dg.asset(group_name=GROUP, kinds={"transformers"}, code_version="2")
def fit_assessment(
    context: dg.AssetExecutionContext,
    config: FitAssessmentConfig,
    training_plan: TrainingPlanResource,
    base_model: dict,
    jsonl_export: dict,
    task: dict,
) -> dict:
    """Should this task be fine-tuned at all? The base model with the task's instructions (and
    few-shot examples if the task asks) on the held-out split, against the task's target; plus
    the cost of the planned training run and model-size guidance."""
    from ft_pipeline.core import plots
    from ft_pipeline.core.release import evaluation, fit
    from ft_pipeline.core.release.generation import generate
    from ft_pipeline.core.release.prompts import baseline_system_prompt, label_set
    from ft_pipeline.core.training.cost import estimate_cost, model_size_guidance

    spec = task_config(task)
    export_dir = Path(jsonl_export["path"])
    test = list(iter_jsonl(export_dir / "test.jsonl"))
    if config.max_examples:
        test = test[: config.max_examples]
    labels = label_set(spec, iter_jsonl(export_dir / "train.jsonl"))
    system_prompt = baseline_system_prompt(spec, labels)
    shots = list(iter_jsonl(export_dir / "train.jsonl"))[: spec.few_shot] if spec.few_shot else []
    prompts = [fit.build_prompt(answers.prompt_turns(r), system_prompt, shots) for r in test]
    context.log.info(f"prompt-only baseline on {len(prompts)} held-out examples")
    predictions = generate(base_model["path"], prompts, max_new_tokens=spec.max_new_tokens,
                           stop_after_json=spec.type == "structured",
                           progress=log_progress(context, "baseline generation"))

    out = run_dir("reports", "fit_assessment", context.run_id)
    with open(out / "baseline_predictions.jsonl", "w", encoding="utf-8") as fh:
        for record, text in zip(test, predictions):
            fh.write(json.dumps({"id": record["id"], "prediction": text}, ensure_ascii=False) + "\n")
    result = evaluation.evaluate_variants(spec, test, {"prompt_baseline": predictions}, labels=labels)
    baseline = result.variants["prompt_baseline"]
    assessment = fit.assess_fit(baseline, spec.target, task_profile={"task": spec.type}, metric=spec.metric)

    try:
        training = training_plan.training_config(spec.method)
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from None
    train_texts = (m["content"] for r in iter_jsonl(export_dir / "train.jsonl") for m in r["messages"])
    tokenizer_dir = Path(base_model["path"]) if Path(base_model["path"]).is_dir() else None
    n_tokens = model_stats.count_tokens(train_texts, tokenizer_dir)
    n_params = base_model["n_params"] or 0
    cost = estimate_cost(training, n_tokens, n_params)
    guidance = model_size_guidance(jsonl_export["counts"]["train"], n_tokens, spec.type)

    report = fit.render_markdown(assessment)
    chart = plots.bar_chart({f"baseline {spec.metric}": baseline[spec.metric], "target": spec.target},
                            "Prompt-only baseline vs target")
    context.add_output_metadata({
        **file_metadata(out / "baseline_predictions.jsonl"),
        **task_metadata(task),
        "recommendation": assessment["recommendation"],
        "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in assessment["reasons"])),
        "metric": spec.metric,
        f"baseline_{spec.metric}": baseline[spec.metric],
        "target": spec.target,
        "held_out_examples": len(test),
        "override": config.override,
        "override_reason": config.override_reason,
        "estimated_cost_usd": cost["usd"],
        "estimated_device_hours": cost["device_hours"],
        "cost_estimate": dg.MetadataValue.json(cost),
        "model_size_guidance": dg.MetadataValue.json(guidance),
        "baseline_vs_target": dg.MetadataValue.md(plots.png_to_markdown(chart, "baseline vs target")),
        "report": dg.MetadataValue.md(report),
    })
    return {
        **assessment,
        "path": str(out / "baseline_predictions.jsonl"),
        "baseline": baseline,
        "predictions_path": str(out / "baseline_predictions.jsonl"),
        "system_prompt": system_prompt,
        "few_shot_ids": [s["id"] for s in shots],
        "labels": labels,
        "test_ids": [r["id"] for r in test],
        "cost": cost,
        "budget_usd": training.budget_usd,
        "size_guidance": guidance,
        "override": config.override,
        "override_reason": config.override_reason,
    }


@dg.asset(group_name=GROUP, kinds={"peft", "trl"}, code_version="2")
def adapter_weights(
    context: dg.AssetExecutionContext,
    trainer: TrainerResource,
    training_plan: TrainingPlanResource,
    base_model: dict,
    jsonl_export: dict,
    fit_assessment: dict,
    task: dict,
) -> dg.Output:
    """The LoRA adapter, trained by the standalone trainer with the planned preset (method by the
    task unless the plan says otherwise). Refuses to start unless every blocking gate upstream
    passed on the exact materializations it reads."""
    from ft_pipeline.core import plots
    from ft_pipeline.core.release import erasure_marks

    gates = require_gates(context)
    try:
        training = training_plan.training_config(task_config(task).method)
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from None
    training.base_model = base_model["path"]
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
        **task_metadata(task),
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
