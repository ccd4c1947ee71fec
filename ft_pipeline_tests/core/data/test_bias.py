import pytest

from ft_pipeline.core.data import bias


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
    [region] = bias.audit(dataset(0.45), bias.BiasConfig())
    assert region.passed
    assert region.parity_difference == pytest.approx(0.05)
    assert region.groups["EU"]["selection_rate"] == pytest.approx(0.45)


def test_disparity_fails_with_fairlearn_numbers():
    [region] = bias.audit(dataset(0.1), bias.BiasConfig(max_parity_difference=0.2))
    assert not region.passed
    assert region.parity_difference == pytest.approx(0.4)
    assert region.parity_ratio == pytest.approx(0.2)


def test_small_groups_are_flagged_not_gated():
    [region] = bias.audit(dataset(0.45, small_group=5), bias.BiasConfig(min_group_size=20))
    assert region.small_groups == ["APAC"]
    assert region.passed


def test_markdown_report_names_groups_and_verdict():
    results = bias.audit(dataset(0.1), bias.BiasConfig())
    md = bias.render_markdown(results, bias.BiasConfig())
    assert "## region — FAIL" in md and "| EU |" in md


@pytest.mark.parametrize("kwargs", [{"max_parity_difference": 1.5}, {"min_parity_ratio": -0.1}, {"min_group_size": 0}])
def test_config_validation(kwargs):
    with pytest.raises(ValueError):
        bias.BiasConfig(**kwargs)
