"""The one gate implementation, on constructed per-item predictions."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ft_pipeline.core.evaluation.gates import (
    EvalEvidence,
    GateConfig,
    check_result,
    comparisons,
    gates_markdown,
    groups_with_intervals,
    release_gates,
)
from ft_pipeline.core.evaluation.statistics import compare_binary
from ft_pipeline.core.task import TaskConfig, TaskError

CLEAN = {"canary_leaks": 0, "canaries": 3, "generations": 12}


def paired(both: int, only_tuned: int, only_other: int, neither: int) -> tuple[list[int], list[int]]:
    tuned = [1] * both + [1] * only_tuned + [0] * only_other + [0] * neither
    other = [1] * both + [0] * only_tuned + [1] * only_other + [0] * neither
    return tuned, other


def evidence(tuned, base, *, baseline=None, groups=None, capability="same", binary=True, **extra) -> EvalEvidence:
    variants = {"tuned": list(tuned), "base": list(base), "prompt_baseline": list(base if baseline is None else baseline)}
    probe = {"tuned": [1] * 150 + [0] * 90, "base": [1] * 150 + [0] * 90} if capability == "same" else capability
    return EvalEvidence(metric="exact_match", binary=binary, variants=variants, groups=groups or {},
                        leakage=CLEAN, capability=probe, **extra)


def test_a_true_improvement_on_400_items_passes():
    tuned, base = paired(200, 100, 20, 80)  # +0.20
    verdict = release_gates(evidence(tuned, base), GateConfig())["tuned_beats_base"]
    assert verdict.passed and verdict.outcome == "clears_margin"
    assert verdict.numbers["difference"] == pytest.approx(0.2) and verdict.numbers["low"] > 0.1
    assert verdict.detail.startswith("tuned is ahead of base on exact_match by 0.20 (95% interval")


def test_the_same_difference_on_30_items_fails_as_not_significant():
    tuned, base = paired(15, 7, 1, 7)  # +0.20 too
    verdict = release_gates(evidence(tuned, base), GateConfig())["tuned_beats_base"]
    assert not verdict.passed and verdict.outcome == "not_significant"
    assert verdict.numbers["difference"] == pytest.approx(0.2) and verdict.numbers["low"] < 0.1
    assert "could be chance" in verdict.detail


@pytest.mark.parametrize("n,passes", [(400, True), (30, False)])
def test_continuous_metric_gates_on_the_paired_bootstrap(n, passes):
    rng = np.random.default_rng(n)
    base = rng.uniform(0.2, 0.6, n)
    tuned = base + 0.2 + rng.normal(0, 0.35, n)  # ROUGE-like, +0.2 on average with wide item noise
    tuned = tuned - (tuned.mean() - base.mean() - 0.2)  # exactly +0.20 observed
    verdict = release_gates(evidence(tuned, base, binary=False), GateConfig())["tuned_beats_base"]
    assert verdict.numbers["difference"] == pytest.approx(0.2)
    assert verdict.passed is passes and verdict.numbers["method"].startswith("paired bootstrap")
    assert verdict.outcome == ("clears_margin" if passes else "not_significant")


def test_a_difference_below_the_margin_is_named_so():
    tuned, base = paired(200, 30, 10, 160)  # +0.05, credibly positive but under 0.10
    verdict = release_gates(evidence(tuned, base), GateConfig())["tuned_beats_base"]
    assert not verdict.passed and verdict.outcome == "below_margin"


@pytest.mark.parametrize("gate,knob,other", [
    ("tuned_beats_base", "min_margin_over_base", "base"),
    ("tuned_beats_prompt_baseline", "min_margin_over_baseline", "prompt_baseline"),
])
def test_verdicts_flip_exactly_at_the_configured_margin(gate, knob, other):
    tuned, base = paired(120, 50, 15, 55)
    low = compare_binary(tuned, base, alpha=0.05).low
    at = release_gates(evidence(tuned, base), GateConfig(**{knob: low}))[gate]
    above = release_gates(evidence(tuned, base), GateConfig(**{knob: math.nextafter(low, 1.0)}))[gate]
    assert at.passed and not above.passed


def test_alpha_is_a_knob():
    tuned, base = paired(60, 22, 6, 32)  # +0.16 on 120
    strict, lenient = (release_gates(evidence(tuned, base), GateConfig(alpha=a, min_margin_over_base=0.05))
                       ["tuned_beats_base"] for a in (0.01, 0.2))
    assert strict.numbers["low"] < lenient.numbers["low"]
    assert "99% interval" in strict.detail and "80% interval" in lenient.detail


def test_a_missing_variant_or_probe_fails_its_gate():
    tuned, base = paired(200, 100, 20, 80)
    ev = EvalEvidence(metric="exact_match", binary=True, variants={"tuned": tuned, "base": base}, leakage=None,
                      capability=None, alternative="few_shot_prompt")
    verdicts = release_gates(ev, GateConfig())
    assert verdicts["tuned_beats_base"].passed
    for name, outcome in [("tuned_beats_prompt_baseline", "missing"), ("tuned_beats_best_alternative", "missing"),
                          ("no_canary_leakage", "not_run"), ("no_capability_regression", "not_run")]:
        assert not verdicts[name].passed and verdicts[name].outcome == outcome
    assert set(comparisons(ev, GateConfig())) == {"tuned_vs_base"}


def test_the_best_alternative_gate_appears_only_when_named():
    tuned, base = paired(200, 100, 20, 80)
    plain = release_gates(evidence(tuned, base), GateConfig())
    ev = evidence(tuned, base, alternative="rag")
    ev.variants["rag"] = list(base)
    named = release_gates(ev, GateConfig())
    assert "tuned_beats_best_alternative" not in plain
    assert named["tuned_beats_best_alternative"].passed
    assert set(comparisons(ev, GateConfig())) >= {"tuned_vs_base", "tuned_vs_prompt_baseline", "tuned_vs_best_alternative"}


def test_comparisons_carry_the_names_outside_tools_read():
    tuned, base = paired(200, 100, 20, 80)
    out = comparisons(evidence(tuned, base), GateConfig())
    for key in ("tuned_vs_base", "tuned_vs_prompt_baseline"):
        assert {"difference", "low", "high", "p_value", "n"} <= set(out[key]) and out[key]["n"] == 400


# --- groups, leakage, capability -----------------------------------------------------------------


def test_a_noise_group_gap_passes_and_a_real_one_fails():
    tuned, base = paired(200, 100, 20, 80)  # tuned: 0.75 overall
    labels = ["north"] * 200 + ["south"] * 200
    noise = release_gates(evidence(tuned, base, groups={"region": ["north", "south"] * 200}), GateConfig())
    real = release_gates(evidence(tuned, base, groups={"region": labels}), GateConfig())  # 1.00 vs 0.50
    assert noise["no_group_gap_above_bound"].passed and noise["no_group_gap_above_bound"].outcome == "within"
    gate = real["no_group_gap_above_bound"]
    assert not gate.passed and gate.outcome == "exceeds" and "credibly above the bound 0.35" in gate.detail


@pytest.mark.parametrize("required", [False, True])
def test_no_judgeable_group_is_reported_not_silently_passed(required):
    tuned, base = paired(200, 100, 20, 80)
    labels = [f"customer{i % 50}" for i in range(400)]  # 50 groups of 8 < min_group_size
    gate = release_gates(evidence(tuned, base, groups={"customer": labels}),
                         GateConfig(require_group_judgement=required))["no_group_gap_above_bound"]
    assert gate.outcome == "not_judged" and gate.passed is (not required)
    assert "not judged" in gate.detail and "too small to judge: customer=customer0 (n=8;" in gate.detail


def test_canary_leakage_fails():
    tuned, base = paired(200, 100, 20, 80)
    ev = evidence(tuned, base)
    ev.leakage = {"canary_leaks": 1, "canaries": 3, "generations": 12}
    assert release_gates(ev, GateConfig())["no_canary_leakage"].outcome == "leaked"


def test_a_model_that_lost_the_general_probe_fails_the_regression_gate():
    tuned, base = paired(200, 100, 20, 80)
    kept, lost = paired(140, 10, 12, 78), paired(110, 8, 42, 80)  # -0.01 and -0.14 on 240 items
    keeps = release_gates(evidence(tuned, base, capability={"tuned": kept[0], "base": kept[1]}), GateConfig())
    loses = release_gates(evidence(tuned, base, capability={"tuned": lost[0], "base": lost[1]}), GateConfig())
    assert keeps["no_capability_regression"].passed and keeps["no_capability_regression"].outcome == "within_tolerance"
    gate = loses["no_capability_regression"]
    assert not gate.passed and gate.outcome == "regressed" and "tuned is behind base" in gate.detail


def test_a_small_probe_cannot_rule_out_a_loss():
    tuned, base = paired(200, 100, 20, 80)
    probe = paired(10, 3, 3, 4)  # no difference, 20 items
    gate = release_gates(evidence(tuned, base, capability={"tuned": probe[0], "base": probe[1]}),
                         GateConfig())["no_capability_regression"]
    assert not gate.passed and gate.outcome == "inconclusive"


# --- one implementation, one config -----------------------------------------------------------


@pytest.mark.parametrize("model", ["passing", "failing"])
def test_report_and_checks_show_the_same_verdicts(model):
    tuned, base = paired(200, 100, 20, 80) if model == "passing" else paired(15, 7, 1, 7)
    verdicts = release_gates(evidence(tuned, base), GateConfig())
    table = gates_markdown(verdicts)
    for name, verdict in verdicts.items():
        check = check_result(verdict)
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        assert check["passed"] is verdict.passed
        assert row.split(" | ")[1] == ("PASS" if check["passed"] else "FAIL")
        assert check["description"] in row
    assert all(v.passed for v in verdicts.values()) is (model == "passing")


def test_verdicts_are_deterministic():
    rng = np.random.default_rng(1)
    base = rng.random(200)
    ev = evidence(base + 0.1, base, binary=False, groups={"seg": ["a", "b"] * 100})
    assert release_gates(ev, GateConfig()) == release_gates(ev, GateConfig())


def test_gate_config_comes_from_the_task_file(tmp_path):
    path = tmp_path / "task.yaml"
    path.write_text("name: t\ntype: classification\ngates:\n  alpha: 0.1\n  min_margin_over_base: 0.05\n")
    config = GateConfig.from_dict(TaskConfig.from_yaml(path).gates, str(path))
    assert (config.alpha, config.min_margin_over_base, config.max_group_gap) == (0.1, 0.05, 0.35)


@pytest.mark.parametrize("gates,field", [
    ({"min_margin": 0.1}, "gates.min_margin"),
    ({"alpha": 0.7}, "gates.alpha"),
    ({"min_group_size": 2.5}, "gates.min_group_size"),
    ({"require_group_judgement": "yes"}, "gates.require_group_judgement"),
    ({"max_capability_loss": True}, "gates.max_capability_loss"),
])
def test_bad_gate_settings_name_the_key(gates, field):
    with pytest.raises(TaskError, match=rf"task.yaml: field {field}: "):
        GateConfig.from_dict(gates, "task.yaml")


def test_misaligned_evidence_is_refused():
    with pytest.raises(ValueError, match="aligned"):
        EvalEvidence(metric="accuracy", binary=True, variants={"tuned": [1, 0], "base": [1]})


def test_groups_with_intervals_chart_with_error_bars():
    from ft_pipeline.core import plots

    tuned, base = paired(200, 100, 20, 80)
    ev = evidence(tuned, base, groups={"region": ["north", "south"] * 200, "tier": ["gold"] * 395 + ["new"] * 5})
    table = groups_with_intervals(ev, GateConfig())
    assert table["tier"]["new"]["small"] and table["region"]["north"]["n"] == 200
    assert all(r["low"] <= r["metric"] <= r["high"] for groups in table.values() for r in groups.values())
    png = plots.interval_bars(table, "exact match by group (95% Wilson intervals)")
    assert png.startswith(b"\x89PNG") and len(png) < 60_000
