import pytest

from ft_pipeline.core.data import bias
from ft_pipeline.core.task import TaskConfig

TASK = TaskConfig(name="claims", type="structured", key_fields=["intent", "priority"],
                  outcome={"field": "priority", "positive": ["high", "urgent"]})


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
    [region] = bias.audit(dataset(0.45), TASK, bias.BiasConfig())
    assert region.passed
    assert region.parity_difference == pytest.approx(0.05)
    assert region.groups["EU"]["selection_rate"] == pytest.approx(0.45)


def test_disparity_fails_with_fairlearn_numbers():
    [region] = bias.audit(dataset(0.1), TASK, bias.BiasConfig(max_parity_difference=0.2))
    assert not region.passed
    assert region.parity_difference == pytest.approx(0.4)
    assert region.parity_ratio == pytest.approx(0.2)


def test_small_groups_are_flagged_not_gated():
    [region] = bias.audit(dataset(0.45, small_group=5), TASK, bias.BiasConfig(min_group_size=20))
    assert region.small_groups == ["APAC"]
    assert region.passed


def test_markdown_report_names_groups_and_verdict():
    results = bias.audit(dataset(0.1), TASK, bias.BiasConfig())
    md = bias.render_markdown(results, TASK, bias.BiasConfig())
    assert "## region — FAIL" in md and "| EU |" in md


def test_labels_and_outcome_come_from_the_task():
    [region] = bias.audit(dataset(0.45), TASK)
    assert region.groups["NA"]["labels"] == {"claim_status": 1.0}  # the first key field is the label
    # A classification task's outcome is the label itself.
    sentiment = TaskConfig(name="s", type="classification", outcome={"field": "label", "positive": ["approve"]})
    records = [{"id": f"r{i}", "messages": [{"role": "assistant", "content": "approve" if i % 4 else "deny"}],
                "attributes": {"region": "NA" if i < 40 else "EU"}} for i in range(80)]
    [region] = bias.audit(records, sentiment)
    assert region.groups["EU"]["selection_rate"] == pytest.approx(0.75)
    assert region.groups["EU"]["labels"] == {"approve": 0.75, "deny": 0.25}


def test_without_a_declared_outcome_parity_is_not_judged():
    no_outcome = TaskConfig(name="claims", type="structured", key_fields=["intent", "priority"])
    [region] = bias.audit(dataset(0.1), no_outcome)
    assert region.parity_difference is None and region.passed
    assert "declares no outcome" in bias.render_markdown([region], no_outcome, bias.BiasConfig())


@pytest.mark.parametrize("kwargs", [{"max_parity_difference": 1.5}, {"min_parity_ratio": -0.1}, {"min_group_size": 0}])
def test_config_validation(kwargs):
    with pytest.raises(ValueError):
        bias.BiasConfig(**kwargs)
