"""Gates before any GPU hour is spent: is fine-tuning warranted, and is it within budget."""

import dagster as dg

from ft_pipeline.defs.fit.assets import fit_assessment


@dg.asset_check(asset=fit_assessment, blocking=True, description="The fit assessment recommends fine-tuning, or an override with a reason is recorded.")
def fine_tuning_is_warranted(fit_assessment: dict) -> dg.AssetCheckResult:
    recommended = fit_assessment["recommendation"] == "fine_tune"
    overridden = fit_assessment["override"] and bool(fit_assessment["override_reason"].strip())
    if recommended:
        description = "fine-tuning recommended"
    elif overridden:
        description = f"recommendation {fit_assessment['recommendation']} overridden: {fit_assessment['override_reason']}"
    elif fit_assessment["override"]:
        description = "override requested without override_reason; a reason is required and recorded"
    else:
        description = f"not fine-tuning: {fit_assessment['recommendation']} is recommended"
    return dg.AssetCheckResult(
        passed=recommended or overridden,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={"recommendation": fit_assessment["recommendation"], "override": fit_assessment["override"],
                  "override_reason": fit_assessment["override_reason"]},
    )


@dg.asset_check(asset=fit_assessment, blocking=True, description="The estimated training cost is within the training config's budget_usd.")
def training_cost_within_budget(fit_assessment: dict) -> dg.AssetCheckResult:
    cost, budget = fit_assessment["cost"], fit_assessment["budget_usd"]
    passed = budget is None or cost["usd"] <= budget
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"estimated ${cost['usd']:.2f} ({cost['device_hours']:.3f} device-hours on {cost['gpu_type']}) "
        + ("with no budget set" if budget is None else f"against a budget of ${budget:.2f}"),
        metadata={"estimated_usd": cost["usd"], "budget_usd": budget if budget is not None else -1.0,
                  "device_hours": cost["device_hours"], "flops": cost["flops"]},
    )
