"""The erasure check on the promoted model (the release gates are on the evaluation:
defs/evaluation/checks.py)."""

import dagster as dg

from ft_pipeline.defs.release.assets import promoted_model


@dg.asset_check(asset=promoted_model, blocking=True,
                description="The version `current` points at was not trained on records erased since (right to erasure). "
                            "Judged on the registry, not the run: `ft-pipeline forget` reports it failing when it marks current.")
def current_model_not_trained_on_erased_data(promoted_model: dict) -> dg.AssetCheckResult:
    from ft_pipeline.core import paths
    from ft_pipeline.core.data.suppression import erased_digests
    from ft_pipeline.core.erasure import marks as erasure_marks

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
