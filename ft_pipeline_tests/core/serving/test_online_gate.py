"""The online gate on made-up paired answers (no model): it judges intervals, not point estimates,
needs enough requests, reads its thresholds from the task file and names a bad one."""
from __future__ import annotations

import pytest

from ft_pipeline.core.release.rollout_config import RolloutConfig
from ft_pipeline.core.serving.online_gate import Arm, online_gate
from ft_pipeline.core.task import TaskConfig, TaskError

TASK = TaskConfig(name="queue", type="classification", labels=["billing", "shipping"])


def arm(n, errors=0, answer="billing", latency=10.0, refusals=0, pii=0) -> Arm:
    a = Arm()
    for k in range(n):
        failed = k < errors
        text = "I'm sorry, but I cannot help" if k < refusals else answer
        a.add({"status": 500 if failed else 200, "answer": None if failed else text, "latency_ms": latency,
               "pii_masked_answer": {"EMAIL_ADDRESS": 1} if k >= n - pii else {}},
              RolloutConfig().refusal_pattern)
    return a


def verdicts(incumbent, candidate, labels=None, **knobs):
    n = len(candidate.valid)
    return online_gate(TASK, incumbent, candidate, labels or [None] * n, RolloutConfig(**knobs))


def test_equal_versions_pass_once_there_are_enough_requests():
    passed = verdicts(arm(200), arm(200), ["billing"] * 200)
    assert all(v.passed for v in passed.values()), {k: v.detail for k, v in passed.items()}
    few = verdicts(arm(150), arm(150))
    assert not few["enough_requests"].passed and few["enough_requests"].outcome == "too_few"


def test_a_rise_within_tolerance_by_point_estimate_but_not_ruled_out_fails():
    """2 errors in 60 against none: +0.033, under the 0.05 tolerated, but a rise of 0.1 is not ruled out."""
    result = verdicts(arm(60), arm(60, errors=2), min_requests=10, max_error_increase=0.05)
    assert not result["error_rate"].passed and result["error_rate"].outcome == "inconclusive"
    assert "cannot be ruled out" in result["error_rate"].detail


def test_each_harm_is_caught_by_its_own_gate():
    worse = verdicts(arm(300, latency=10.0), arm(300, errors=30, refusals=60, answer="shipping", latency=40.0, pii=60),
                     ["billing"] * 300)
    failed = {name for name, v in worse.items() if not v.passed}
    assert failed == {"schema_valid", "task_metric", "refusal_rate", "pii_filter_hits", "error_rate", "p95_latency"}
    assert all(worse[name].outcome == "worse" for name in failed) and worse["task_metric"].numbers["n"] == 300


def test_the_task_metric_is_judged_on_labelled_requests_only():
    labels = ["billing"] * 40 + [None] * 160
    result = verdicts(arm(200), arm(200), labels)
    assert result["task_metric"].numbers["n"] == 40
    unlabelled = verdicts(arm(200), arm(200))
    assert unlabelled["task_metric"].passed and unlabelled["task_metric"].outcome == "not_judged"


@pytest.mark.parametrize("section, field", [
    ({"share": 1.5}, "rollout.share"), ({"mode": "blue-green"}, "rollout.mode"), ({"min_requests": 2.5}, "rollout.min_requests"),
    ({"max_error_increase": -0.1}, "rollout.max_error_increase"), ({"refusal_pattern": "(a+)+$"}, "rollout.refusal_pattern"),
    ({"canary": 0.1}, "rollout.canary"), ({"hold_new_versions": "yes"}, "rollout.hold_new_versions"),
])
def test_bad_rollout_thresholds_name_their_field(tmp_path, section, field):
    import yaml

    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump({"name": "queue", "type": "classification", "rollout": section}))
    with pytest.raises(TaskError, match=rf"line \d+: field {field}:"):
        TaskConfig.from_yaml(path)
    assert RolloutConfig.from_dict({}).min_requests == 200  # safe defaults when the section is absent
