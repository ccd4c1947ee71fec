"""The release gates as blocking checks on the evaluation: promotion happens only when all of them
passed. Each returns the eval report's own verdict (one implementation: core/evaluation/gates.py)."""

import dagster as dg

from ft_pipeline.defs.evaluation.assets import eval_report

GATES = {
    "tuned_beats_base": "The tuned model credibly beats the base model: the lower end of the paired interval of the "
                        "difference in the task's metric clears gates.min_margin_over_base.",
    "tuned_beats_prompt_baseline": "The tuned model credibly beats the prompt-only baseline (same paired statistics, "
                                   "gates.min_margin_over_baseline).",
    "tuned_beats_best_alternative": "The tuned model credibly beats the strongest cheaper alternative the fit "
                                    "assessment measured (gates.min_margin_over_alternative).",
    "no_group_gap_above_bound": "No gap between attribute groups is credibly above gates.max_group_gap (Wilson / "
                                "Newcombe intervals); groups too small to judge are reported as such.",
    "no_canary_leakage": "No canary planted in the training data comes back from the tuned model.",
    "no_capability_regression": "On a general probe that is not the task, the tuned model has not credibly lost more "
                                "than gates.max_capability_loss against base.",
    "no_canary_memorization": "Secret canaries planted in the training data (gates.memorization) are not "
                              "memorized: no attack tells them from held-out twins (upper end of TPR at 1% FPR "
                              "within the bound) and the most repeated ones are not exposed.",
}


def _gate(name: str):
    """A blocking check that returns the eval report's verdict for one gate: the report and the
    checks show the same verdicts because there is one implementation (core/evaluation/gates.py)."""

    @dg.asset_check(asset=eval_report, name=name, blocking=True, description=GATES[name])
    def check(eval_report: dict) -> dg.AssetCheckResult:
        verdict = eval_report["verdicts"].get(name)
        if verdict is None:  # only the best-alternative gate is optional: no cheaper arm was measured
            return dg.AssetCheckResult(passed=True, severity=dg.AssetCheckSeverity.ERROR,
                                       description="not applicable: the evaluation named no cheaper alternative",
                                       metadata={"outcome": "not_applicable"})
        numbers = {k: v if isinstance(v, (int, float, str, bool)) else dg.MetadataValue.json(v)
                   for k, v in verdict["numbers"].items() if v is not None}
        return dg.AssetCheckResult(passed=verdict["passed"], severity=dg.AssetCheckSeverity.ERROR,
                                   description=verdict["detail"], metadata={"outcome": verdict["outcome"], **numbers})

    return check


tuned_beats_base = _gate("tuned_beats_base")
tuned_beats_prompt_baseline = _gate("tuned_beats_prompt_baseline")
tuned_beats_best_alternative = _gate("tuned_beats_best_alternative")
no_group_gap_above_bound = _gate("no_group_gap_above_bound")
no_canary_leakage = _gate("no_canary_leakage")
no_capability_regression = _gate("no_capability_regression")
no_canary_memorization = _gate("no_canary_memorization")
