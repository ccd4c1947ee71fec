"""Release gates on the evaluation (promotion happens only when all of them passed), and the
erasure check on the promoted model."""

import dagster as dg

from ft_pipeline.defs.release.assets import eval_report, promoted_model
from ft_pipeline.defs.release.configs import EvalGateConfig


def _variant(report: dict, name: str) -> float:
    return report["variants"][name][report.get("metric", "exact_match")]


@dg.asset_check(asset=eval_report, blocking=True, description="The tuned model beats the base model by at least min_margin exact match.")
def tuned_beats_base(config: EvalGateConfig, eval_report: dict) -> dg.AssetCheckResult:
    tuned, base = _variant(eval_report, "tuned"), _variant(eval_report, "base")
    return dg.AssetCheckResult(
        passed=tuned >= base + config.min_margin,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"tuned {tuned:.3f} vs base {base:.3f} (needs +{config.min_margin})",
        metadata={"tuned": tuned, "base": base, "min_margin": config.min_margin},
    )


@dg.asset_check(asset=eval_report, blocking=True, description="The tuned model beats the prompt-only baseline by at least min_margin_over_baseline exact match.")
def tuned_beats_prompt_baseline(config: EvalGateConfig, eval_report: dict) -> dg.AssetCheckResult:
    tuned, baseline = _variant(eval_report, "tuned"), _variant(eval_report, "prompt_baseline")
    margin = config.min_margin_over_baseline
    return dg.AssetCheckResult(
        passed=tuned >= baseline + margin,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"tuned {tuned:.3f} vs prompt-only baseline {baseline:.3f} (needs +{margin})",
        metadata={"tuned": tuned, "prompt_baseline": baseline, "min_margin": margin},
    )


@dg.asset_check(asset=eval_report, blocking=True, description="No attribute group's exact match trails another's by more than max_group_gap.")
def no_group_gap_above_bound(config: EvalGateConfig, eval_report: dict) -> dg.AssetCheckResult:
    gaps = {attr: gap for attr, gap in eval_report["largest_gaps"].get("tuned", {}).items()}
    worst = max(gaps.items(), key=lambda kv: kv[1]["gap"] or 0.0, default=(None, {"gap": 0.0}))
    return dg.AssetCheckResult(
        passed=all((g["gap"] or 0.0) <= config.max_group_gap for g in gaps.values()),
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"largest gap {worst[1]['gap'] or 0.0:.3f} on {worst[0]} (bound {config.max_group_gap})",
        metadata={"gaps": dg.MetadataValue.json(gaps), "max_group_gap": config.max_group_gap},
    )


@dg.asset_check(asset=eval_report, blocking=True, description="No canary planted in the training data comes back from the tuned model.")
def no_canary_leakage(eval_report: dict) -> dg.AssetCheckResult:
    leakage = eval_report["leakage"]
    return dg.AssetCheckResult(
        passed=leakage["canary_leaks"] == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{leakage['canary_leaks']} canary leaks in {leakage.get('generations', 0)} generations",
        metadata={"canary_leaks": leakage["canary_leaks"], "pii_entities": dg.MetadataValue.json(leakage.get("pii_by_type", {}))},
    )


@dg.asset_check(asset=promoted_model, blocking=True,
                description="The version `current` points at was not trained on records erased since (right to erasure). "
                            "Judged on the registry, not the run: `ft-pipeline forget` reports it failing when it marks current.")
def current_model_not_trained_on_erased_data(promoted_model: dict) -> dg.AssetCheckResult:
    from ft_pipeline.core import paths
    from ft_pipeline.core.data.erasure import erased_digests
    from ft_pipeline.core.release import erasure_marks

    tainted = erasure_marks.tainted_current(paths.pipeline_home() / "registry", erased_digests(), [promoted_model["name"]])
    return dg.AssetCheckResult(
        passed=not tainted,
        severity=dg.AssetCheckSeverity.ERROR,
        description=erasure_verdict(tainted) or f"{promoted_model['name']} {promoted_model['version']}: no erased record in its training data",
        metadata={"tainted_versions": dg.MetadataValue.json([f"{t['name']}/{t['version']}" for t in tainted])},
    )


def erasure_verdict(tainted: list[dict]) -> str:
    """The check's failure line, shared with the evaluation `forget` reports: versions and requests only."""
    if not tainted:
        return ""
    versions = ", ".join(f"{t['name']} {t['version']}" + (" (weights retired)" if t["retired"] else "") for t in tainted)
    requests = sorted({r for t in tainted for r in t["requests"]})
    return f"current model trained on erased data: {versions}" + (f" (erasure {', '.join(requests)})" if requests else "") \
        + "; a retrain promotes a clean version"
