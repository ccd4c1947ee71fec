import pytest

from ft_pipeline.core.fit import fit, pilot
from ft_pipeline.core.fit.fit_config import FitConfig
from ft_pipeline.core.metrics import Scores
from ft_pipeline.core.task import TaskConfig, TaskError

TUNED = {"usd_per_month": 30.0, "one_off_usd": 120.0, "amortize_months": 12, "prompt_tokens": 60.0,
         "serving_usd_per_month": 20.0}


def _arm(metric, low, high, usd, tokens=100.0, n=50):
    return {"metric": metric, "low": low, "high": high, "usd_per_month": usd, "prompt_tokens": tokens, "n": n}


def test_cheapest_arm_that_reaches_the_target_with_confidence_wins():
    arms = {"zero_shot": _arm(0.70, 0.60, 0.80, 10.0),
            "few_shot": _arm(0.90, 0.82, 0.95, 40.0, 400),
            "retrieved_few_shot": _arm(0.93, 0.85, 0.97, 45.0, 450)}
    out = fit.assess(arms, target=0.8, metric="accuracy", fine_tune=TUNED, requests_per_month=50_000)
    assert out["recommendation"] == "prompt_engineering" and out["winner"] == "few_shot"
    assert out["best_alternative"] == "retrieved_few_shot"  # the strongest arm, whatever it costs
    assert "0.820" in out["reasons"][0] and "$40.00/month" in out["reasons"][0]
    # The tuned model would serve cheaper: said, with the payback, but not chosen.
    assert any("pays back" in r for r in out["reasons"])


def test_rag_wins_when_it_is_the_cheapest_arm_that_reaches():
    arms = {"zero_shot": _arm(0.2, 0.1, 0.3, 10.0), "rag": _arm(0.95, 0.85, 0.99, 60.0)}
    out = fit.assess(arms, target=0.8, metric="accuracy", fine_tune=TUNED, requests_per_month=1000)
    assert (out["recommendation"], out["winner"]) == ("rag", "rag")


def test_fine_tune_only_when_no_arm_reaches_and_a_point_estimate_is_not_enough():
    arms = {"zero_shot": _arm(0.3, 0.2, 0.4, 10.0), "few_shot": _arm(0.82, 0.70, 0.90, 40.0)}
    out = fit.assess(arms, target=0.8, metric="exact_match", fine_tune=TUNED, requests_per_month=1000)
    assert out["recommendation"] == "fine_tune" and out["winner"] == "fine_tune"
    assert out["best_alternative"] == "few_shot"
    assert any("point estimate only" in r for r in out["reasons"])
    text = fit.render_markdown(out)
    assert "fine tune" in text and "| few-shot | 0.820 | 0.700–0.900 |" in text and "$120.00 once" in text


def test_assess_refuses_a_target_outside_unit_interval():
    with pytest.raises(ValueError, match="target"):
        fit.assess({"zero_shot": _arm(0.5, 0.4, 0.6, 1.0)}, target=1.5, metric="accuracy", fine_tune=TUNED,
                   requests_per_month=1)


def test_interval_is_wilson_for_shares_and_bootstrap_otherwise():
    binary = Scores("accuracy", {"accuracy": 0.8}, {"accuracy": [1.0] * 8 + [0.0] * 2}, n=10)
    low, high = fit.interval(binary, binary=True)
    assert low == pytest.approx(0.490, abs=0.01) and high == pytest.approx(0.943, abs=0.01)
    continuous = Scores("rouge_l", {"rouge_l": 0.5}, {"rouge_l": [0.4, 0.6] * 20}, n=40)
    low, high = fit.interval(continuous, binary=False)
    assert 0.45 < low < 0.5 < high < 0.55


def test_monthly_cost_is_tokens_times_volume_times_price():
    assert fit.monthly_usd(900, 100, 50_000, 0.20) == pytest.approx(10.0)


def test_arms_metadata_has_the_keys_tools_read():
    meta = fit.arms_metadata({"zero_shot": {**_arm(0.5, 0.41234, 0.6, 3.14159), "accuracy": 0.5}})
    assert meta == {"zero_shot": {"metric": 0.5, "low": 0.4123, "high": 0.6, "usd_per_month": 3.14}}


def test_fit_config_validates_like_the_task_file():
    assert FitConfig.from_dict({}).arms == ["zero_shot", "few_shot", "retrieved_few_shot", "rag"]
    assert FitConfig.from_dict({"shots": 0}).k(task_few_shot=5) == 5 and FitConfig().k(0) == 3
    with pytest.raises(TaskError, match="field fit.arms: 'rgb' is not an arm"):
        FitConfig.from_dict({"arms": ["zero_shot", "rgb"]})
    with pytest.raises(TaskError, match="must include zero_shot"):
        FitConfig.from_dict({"arms": ["rag"]})
    with pytest.raises(TaskError, match="field fit.shots: 'three' is not a number"):
        FitConfig.from_dict({"shots": "three"})
    with pytest.raises(TaskError, match="field fit.max_item: is not a fit setting"):
        FitConfig.from_dict({"max_item": 3})


def test_a_task_file_with_a_bad_fit_knob_fails_on_load_naming_file_line_and_field(tmp_path):
    path = tmp_path / "task.yaml"
    path.write_text("name: t\ntype: classification\nmetric: accuracy\ntarget: 0.8\n"
                    "fit:\n  pilot: yes please\n")
    with pytest.raises(TaskError) as err:
        TaskConfig.from_yaml(path)
    # the knob's own line (6), not its section's (5)
    assert str(err.value) == f"{path} line 6: field fit.pilot: 'yes please' must be true or false"


def test_pilot_extrapolates_along_log_work_to_the_planned_run_and_says_what_it_means():
    curve = [{"fraction": 0.25, "examples": 50, "steps": 6, "metric": 0.30, "low": 0.2, "high": 0.4},
             {"fraction": 0.5, "examples": 100, "steps": 12, "metric": 0.45, "low": 0.35, "high": 0.55}]
    # The plan (24 steps) is one doubling past the half pilot: 0.45 + 0.15.
    short = pilot.extrapolate(curve, 0.8, "accuracy", planned_steps=24)
    assert short["verdict"] == "needs_more" and short["projected_full"] == pytest.approx(0.6)
    assert short["doublings_to_plan"] == 1.0
    assert "about 2 more doubling(s)" in short["summary"] and "(4x the plan)" in short["summary"]
    # Four times the half pilot's steps: two doublings, 0.75.
    assert pilot.extrapolate(curve, 0.8, "accuracy", planned_steps=48)["projected_full"] == pytest.approx(0.75)
    assert pilot.extrapolate(curve, 0.55, "accuracy", planned_steps=24)["verdict"] == "likely_reaches"
    flat = pilot.extrapolate([curve[1], {**curve[1], "metric": 0.44}], 0.8, "accuracy", planned_steps=24)
    assert flat["verdict"] == "flat" and "flat" in flat["summary"]


def test_pilot_steps_scale_with_the_data_share():
    assert pilot.pilot_steps(48, 0.25) == 12 and pilot.pilot_steps(48, 0.5) == 24
    assert pilot.pilot_steps(48, 0.25, half_steps=8) == 4 and pilot.pilot_steps(48, 0.5, half_steps=8) == 8
    assert pilot.pilot_steps(2, 0.25) == 1
