"""Evaluation and release: the tuned model against base and the prompt-only baseline, then a
versioned, documented release only when every gate passed."""

from pathlib import Path

import dagster as dg

from ft_pipeline.core import paths
from ft_pipeline.core.release import registry
from ft_pipeline.core.training.manifest import TRAINING_IDS, read_training_manifest
from ft_pipeline.core.jsonl import iter_jsonl
from ft_pipeline.defs.common import file_metadata, log_progress, run_dir, task_config, task_metadata
from ft_pipeline.defs.failures import user_failure
from ft_pipeline.defs.gates import require_gates
from ft_pipeline.defs.pools import REGISTRY_POOL
from ft_pipeline.defs.release.configs import EvalConfig, PromotionConfig
from ft_pipeline.defs.release.lineage import collect_lineage
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


@dg.asset(group_name=GROUP, kinds={"registry"}, code_version="1", pool=REGISTRY_POOL)
def promoted_model(
    context: dg.AssetExecutionContext,
    config: PromotionConfig,
    mlflow: MlflowResource,
    base_model: dict,
    jsonl_export: dict,
    adapter_weights: dict,
    eval_report: dict,
    task: dict,
) -> dict:
    """The versioned release under $FT_PIPELINE_HOME/registry/<task name>/<version>/: adapter,
    merged weights, model card and lineage; `current` moves only after the smoke test passed."""
    from ft_pipeline.core.release import release

    gates = require_gates(context)
    spec = task_config(task)
    trained_on = _clean_training_data(adapter_weights)
    root = paths.pipeline_home() / "registry"
    with user_failure(release.ReleaseError):
        staged = release.stage(root, spec, base_model["path"], adapter_weights["path"], jsonl_export["path"],
                               config.smoke_examples)
    lineage = collect_lineage(context, name=spec.name, version=registry.next_version(root, spec.name))
    lineage.update(release.record(spec, task, adapter_weights, eval_report, gates, staged))
    # rollout.hold_new_versions: a new version waits beside current until its rollout passes
    hold = spec.sections.rollout.hold_new_versions and registry.current_version(root, spec.name) is not None
    path = release.publish(root, spec.name, staged, lineage, trained_on, make_current=not hold)
    context.add_output_metadata({
        **file_metadata(path / "adapter"),
        **task_metadata(task),
        "version": path.name,
        "registry_path": dg.MetadataValue.path(str(path)),
        "model_card": dg.MetadataValue.md((path / "MODEL_CARD.md").read_text()),
        "smoke_test": f"{staged.prompts} held-out prompts answered, {staged.well_formed} well-formed for the task",
        "current": registry.current_version(root, spec.name),  # this version unless it waits for a rollout
    })
    mlflow.register_release(context, task=task, adapter_weights=adapter_weights, version_dir=path,
                            base_model_path=base_model["path"], alias="challenger" if hold else "champion")
    return {"path": str(path), "name": spec.name, "version": path.name}


def _clean_training_data(adapter_weights: dict) -> dict:
    """The adapter's training ids (digests), which must hold no record erased since it trained:
    the release would otherwise serve a model that saw data its owner had erased."""
    from ft_pipeline.core.data.suppression import erased_digests

    manifest = read_training_manifest(Path(adapter_weights["path"]))
    if manifest is None:
        raise dg.Failure(f"refusing to promote: {adapter_weights['path']} has no {TRAINING_IDS} "
                         "(trained before training ids were kept); materialize adapter_weights again")
    erased = set(manifest["trained_on"]) & erased_digests()
    if erased:
        raise dg.Failure(f"refusing to promote: adapter_weights was trained on {len(erased)} records erased since "
                         "(ft-pipeline erasures); retrain on the current export first")
    return manifest
