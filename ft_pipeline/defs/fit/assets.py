"""The fit assessment (core/fit/): should this task be fine-tuned at all, measured before any GPU
hour is spent. In the `training` group of the UI, where a user decides whether to train."""

from pathlib import Path

import dagster as dg

from ft_pipeline.defs.common import file_metadata, log_progress, run_dir, task_config, task_metadata
from ft_pipeline.defs.failures import user_failure
from ft_pipeline.defs.fit.configs import FitAssessmentConfig
from ft_pipeline.defs.training.resources import TrainingPlanResource

GROUP = "training"


@dg.asset(group_name=GROUP, kinds={"transformers", "bm25s"}, code_version="3")
def fit_assessment(
    context: dg.AssetExecutionContext,
    config: FitAssessmentConfig,
    training_plan: TrainingPlanResource,
    base_model: dict,
    jsonl_export: dict,
    task: dict,
) -> dict:
    """Should this task be fine-tuned at all? The cheaper alternatives — zero-shot, few-shot,
    retrieved few-shot and RAG over the task's knowledge folder — measured on the held-out split in
    the task's metric with intervals, priced at the task's request volume against the training
    run's cost, and an optional pilot learning curve. Recommends the cheapest arm that reaches the
    target with confidence, fine-tuning only when none does."""
    from ft_pipeline.core.fit.assessment import run_assessment

    spec = task_config(task)
    fit_config = spec.sections.fit
    with user_failure(ValueError):
        training = training_plan.training_config(spec.method, spec.privacy)
    out = run_dir("reports", "fit_assessment", context.run_id)
    try:
        # a knowledge folder that is not there, no held-out items
        with user_failure(FileNotFoundError, ValueError):
            result = run_assessment(spec, fit_config, Path(jsonl_export["path"]), base_model["path"], training,
                                    n_params=base_model["n_params"], max_items=config.max_examples,
                                    progress=lambda what: log_progress(context, what), log=context.log.info,
                                    warn=context.log.warning, workdir=out)
    except OSError as exc:  # a base model that cannot be loaded (a hub id, offline)
        raise dg.Failure(description=f"base model {base_model['name']!r}: cannot load it ({str(exc).splitlines()[0]})") from None
    report, figures = result.write(spec, out)
    context.add_output_metadata({**file_metadata(out / "fit_assessment.md"), **task_metadata(task),
                                 **_fit_metadata(spec, result, config, out, report, figures)})
    return {**result.as_dict(), "path": str(out / "fit_assessment.md"),
            "predictions_path": str(out / "arm_predictions.jsonl"), "budget_usd": training.budget_usd,
            "override": config.override, "override_reason": config.override_reason}


def _fit_metadata(spec, result, config: FitAssessmentConfig, out: Path, report: str, figures: str) -> dict:
    """What the asset page shows: the recommendation and its reasons, each arm's metric with its
    interval and monthly cost, the planned run's cost, the pilot, the charts."""
    from ft_pipeline.core.fit import fit

    decision, pilot = result.decision, result.decision.get("pilot")
    return {
        "predictions_path": dg.MetadataValue.path(str(out / "arm_predictions.jsonl")),
        "recommendation": decision["recommendation"],
        "winner": decision["winner"],
        "best_alternative": decision["best_alternative"],
        "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in decision["reasons"])),
        "metric": spec.metric,
        "target": spec.target,
        "arms": dg.MetadataValue.json(fit.arms_metadata(decision["arms"])),
        **{f"{arm}_{spec.metric}": r["metric"] for arm, r in decision["arms"].items()},
        "held_out_examples": len(result.test_ids),
        "requests_per_month": spec.requests_per_month,
        "fine_tune_cost": dg.MetadataValue.json(decision["fine_tune"]),
        **({"pilot": dg.MetadataValue.json({k: v for k, v in pilot.items() if k != "summary"})} if pilot else {}),
        "override": config.override,
        "override_reason": config.override_reason,
        "estimated_cost_usd": result.cost["usd"],
        "estimated_device_hours": result.cost["device_hours"],
        "cost_estimate": dg.MetadataValue.json(result.cost),
        "model_size_guidance": dg.MetadataValue.json(result.size_guidance),
        "arms_chart": dg.MetadataValue.md(figures),
        "report": dg.MetadataValue.md(report),
    }
