"""The evaluation (core/evaluation/): the tuned model against base, the prompt-only baseline and the
fit assessment's strongest alternative, in the task's metric with paired statistics, judged by the
release gates. In the `release` group of the UI, beside the promotion it decides."""

from pathlib import Path

import dagster as dg

from ft_pipeline.core.jsonl import iter_jsonl
from ft_pipeline.defs.common import file_metadata, log_progress, run_dir, task_config, task_metadata
from ft_pipeline.defs.evaluation.configs import EvalConfig
from ft_pipeline.defs.tracking.resources import MlflowResource

GROUP = "release"


def alternatives(fit_assessment: dict, task_type: str) -> tuple[dict | None, str | None]:
    """The fit assessment's answers the tuned model is compared with, by variant, and the variant
    named as the best cheaper alternative: the zero-shot arm is the prompt-only baseline; the
    strongest arm joins as itself (or is the baseline, when zero-shot was the strongest)."""
    if task_type == "preference":  # no generated answers to compare: base is the alternative
        return None, None
    rows = list(iter_jsonl(fit_assessment["predictions_path"]))
    column = {arm: {row["id"]: row[arm] for row in rows} for arm in (rows[0] if rows else {}) if arm != "id"}
    fixed = {"prompt_baseline": column["zero_shot"]}
    best = fit_assessment.get("best_alternative")
    if best in column and best != "zero_shot":
        fixed[best] = column[best]
        return fixed, best
    return fixed, "prompt_baseline"


@dg.asset(group_name=GROUP, kinds={"transformers", "scipy"}, code_version="4")
def eval_report(
    context: dg.AssetExecutionContext,
    config: EvalConfig,
    mlflow: MlflowResource,
    base_model: dict,
    jsonl_export: dict,
    fit_assessment: dict,
    adapter_weights: dict,
    task: dict,
) -> dict:
    """Base vs prompt-only baseline (vs the best cheaper alternative) vs tuned on the same held-out
    items, in the task's metric: paired comparisons with intervals, per-group intervals, a leakage
    probe and a general capability probe, judged by the release gates (one implementation, also
    behind the blocking checks)."""
    from ft_pipeline.core.data.redaction import Redactor, recorded_config
    from ft_pipeline.core.evaluation.evaluate import Inputs, evaluate

    spec = task_config(task)
    gate_config = spec.sections.gates
    fixed, alternative = alternatives(fit_assessment, spec.type)
    inputs = Inputs(task=spec, export_dir=Path(jsonl_export["path"]), sidecar_dir=Path(jsonl_export["sidecars"]),
                    base_model=base_model["path"],
                    adapter=adapter_weights["path"], test_ids=fit_assessment.get("test_ids"),
                    fixed=fixed, alternative=alternative,
                    labels=fit_assessment.get("labels"), max_examples=config.max_examples,
                    # the rules the training data was redacted under: the probe and the data agree
                    pii_finder=Redactor(recorded_config(jsonl_export)).find_pii)
    result = evaluate(inputs, gate_config, lambda what: log_progress(context, what))
    out = run_dir("reports", "eval_report", context.run_id)
    figures = result.write(out)
    context.add_output_metadata({**file_metadata(out / "eval_report.md"), **task_metadata(task),
                                 **_eval_metadata(result, figures)})
    value = {"path": str(out / "eval_report.md"), "predictions_path": str(out / "predictions.jsonl"),
             **result.report.as_dict()}
    mlflow.log_evaluation(context, task=task, adapter_weights=adapter_weights, report=value)
    return value


def _eval_metadata(result, figures: str) -> dict:
    """What the asset page shows: each variant's metric, the paired comparisons, per-group
    intervals, the failed gates, the probes, the report and its charts."""
    judged, metric = result.report, result.report.metric
    return {
        "metric": metric,
        **{f"{v}_{metric}": m[metric] for v, m in judged.variants.items()},
        "held_out_examples": next(iter(judged.variants.values()))["n"],
        "comparisons": dg.MetadataValue.json(judged.comparisons),
        "groups_with_intervals": dg.MetadataValue.json(judged.groups_with_intervals),
        "gates_failed": dg.MetadataValue.json([name for name, v in judged.verdicts.items() if not v.passed]),
        "canaries_planted": result.canaries,
        "canary_leaks": judged.leakage["canary_leaks"],
        "capability_probe": dg.MetadataValue.json(judged.capability),
        "report": dg.MetadataValue.md(result.markdown),
        "comparison": dg.MetadataValue.md(figures),
    }
