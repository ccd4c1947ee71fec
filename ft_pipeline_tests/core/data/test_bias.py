import json

import pytest

from ft_pipeline.core.data import bias

PRIORITY = bias.BiasConfig(outcome_field="priority", positive_values=("high", "urgent"))


def answer(record, key):
    return json.loads(record["messages"][-1]["content"])[key]


def run(records, config=PRIORITY):
    return bias.audit(records, config, label_of=lambda r: answer(r, "intent"),
                      outcome_of=lambda r: answer(r, config.outcome_field) if config.outcome_field else None)


def rec(i, region, priority):
    return {
        "id": f"r{i}",
        "messages": [{"role": "user", "content": "x"},
                     {"role": "assistant", "content": f'{{"intent": "claim_status", "priority": "{priority}"}}'}],
        "attributes": {"region": region},
    }


def dataset(eu_high_share: float, n: int = 100, small_group: int = 0):
    out = []
    for i in range(n):
        out.append(rec(i, "NA", "high" if i % 2 == 0 else "low"))  # 50% selected
    k = int(n * eu_high_share)
    for i in range(n):
        out.append(rec(1000 + i, "EU", "urgent" if i < k else "normal"))
    for i in range(small_group):
        out.append(rec(5000 + i, "APAC", "low"))  # 0% selected, but too small to judge
    return out


def test_balanced_groups_pass():
    [region] = run(dataset(0.45)).attributes
    assert region.passed
    assert region.parity_difference == pytest.approx(0.05)
    assert region.groups["EU"]["selection_rate"] == pytest.approx(0.45)


def test_disparity_fails_with_fairlearn_numbers():
    [region] = run(dataset(0.1), bias.BiasConfig("priority", ("high", "urgent"), max_parity_difference=0.2)).attributes
    assert not region.passed
    assert region.parity_difference == pytest.approx(0.4)
    assert region.parity_ratio == pytest.approx(0.2)


def test_small_groups_are_flagged_not_gated():
    [region] = run(dataset(0.45, small_group=5), bias.BiasConfig("priority", ("high", "urgent"), min_group_size=20)).attributes
    assert region.small_groups == ["APAC"]
    assert region.passed


def test_markdown_report_names_groups_and_verdict():
    report = run(dataset(0.1))
    md = bias.render_markdown(report, PRIORITY)
    assert "## region — FAIL" in md and "| EU |" in md and "**Verdict: FAIL**" in md


def test_data_without_attributes_is_not_judged_and_says_so():
    records = [{k: v for k, v in r.items() if k != "attributes"} for r in dataset(0.1)]
    report = run(records)
    assert report.passed and not report.judged and report.verdict == "NOT JUDGED"
    assert "no attributes" in report.not_judged_reason
    assert "Not judged" in bias.render_markdown(report, PRIORITY)


def test_a_task_without_an_outcome_is_not_judged_even_when_parity_would_fail():
    report = run(dataset(0.1), bias.BiasConfig())
    assert report.passed and not report.judged
    assert report.attributes[0].parity_difference is None
    assert "declares no outcome" in report.not_judged_reason
    assert bias.representation(report)["region=EU"]["share of records"] == pytest.approx(0.5)


def test_an_outcome_needs_positive_values():
    with pytest.raises(ValueError):
        bias.BiasConfig(outcome_field="priority")


@pytest.mark.parametrize("kwargs", [{"max_parity_difference": 1.5}, {"min_parity_ratio": -0.1}, {"min_group_size": 0}])
def test_config_validation(kwargs):
    with pytest.raises(ValueError):
        bias.BiasConfig(**kwargs)
