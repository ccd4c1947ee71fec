"""A canary in steps (`rollout.steps`), replayed on the real path (trained tiny adapters, the
engine, the guard, the online gate): a worse version is rolled back at the first step, after the
fewest of its answers reached clients; an equal one moves share by share, each step judged on its
own pairs and recorded with the gate's numbers, and becomes current only after the last."""
from __future__ import annotations

import subprocess
import sys

import pytest

from ft_pipeline.core.release import registry
from ft_pipeline.core.release.rollout_config import RolloutConfig
from ft_pipeline.core.serving import rollout
from ft_pipeline.core.task import TaskConfig, TaskError
from ft_pipeline_tests.core.serving.rollout_helpers import TASK, publish_trained, write_replay

# 30 pairs a step: with 30 of 30 alike a rate's 95% interval spans about +-0.11, within the helpers' 0.15
STEPPED = TASK.replace("min_requests: 20", "min_requests: 30\n  steps: [50, 100]")


def test_a_worse_candidate_stops_at_the_first_step_and_an_equal_one_moves_share_by_share(ft_home, tiny_model_dir,
                                                                                         tmp_path, monkeypatch):
    from ft_pipeline.core.tracking import models

    monkeypatch.setattr(models, "mirror_alias", lambda *a, **k: None)
    publish = lambda answer, seed, current: publish_trained(ft_home, tiny_model_dir, tmp_path, answer, seed, current,  # noqa: E731
                                                            task=STEPPED)
    root, replay_file = ft_home / "registry", write_replay(tmp_path / "replay.jsonl", n=130)
    assert [publish("billing", 0, True), publish("shipping", 0, False)] == ["v1", "v2"]

    worse = rollout.run(root, "ticket-queue", "v2", replay_file)
    assert not worse["passed"] and registry.current_version(root, "ticket-queue") == "v1"
    # judged on the first step's 30 pairs: only those canary answers reached clients, the rest never replayed
    assert worse["answered_by_candidate"] == worse["paired_requests"] == 30 and worse["requests"] < 100
    events = registry.rollout_events(root / "ticket-queue" / "v2")
    assert [e["event"] for e in events] == ["canary_started", "gate", "rolled_back"]
    assert events[0]["steps"] == [50, 100] and events[0]["share"] == 0.5
    assert (events[-1]["step"], events[-1]["share"]) == (1, 0.5) and "task_metric" in events[-1]["failed_gates"]

    assert publish("billing", 1, False) == "v3"
    equal = rollout.run(root, "ticket-queue", "v3", replay_file)
    assert equal["passed"], equal["failed_gates"]
    assert registry.current_version(root, "ticket-queue") == "v3"
    events = registry.rollout_events(root / "ticket-queue" / "v3")
    assert [e["event"] for e in events] == ["canary_started", "gate", "step", "gate", "switched"]
    first, moved, last = events[1], events[2], events[3]
    assert (first["step"], first["share"], first["paired_requests"]) == (1, 0.5, 30)
    assert (moved["from_share"], moved["share"], moved["step"]) == (0.5, 1.0, 2)
    # the step carries the gate's numbers: each gate's difference and interval
    assert moved["numbers"]["schema_valid"] == {"difference": 0.0, "low": moved["numbers"]["schema_valid"]["low"],
                                                "high": moved["numbers"]["schema_valid"]["high"], "tolerance": 0.15}
    assert moved["numbers"]["schema_valid"]["low"] < 0 < moved["numbers"]["schema_valid"]["high"]
    # the last step judged its own pairs only: every request left, all of them canary at share 1.0
    assert equal["requests"] == 130 and last["step"] == 2
    assert last["paired_requests"] == equal["paired_requests"] == 130 - _replayed_at_first_step(replay_file, 30)
    audit = subprocess.run([sys.executable, "-m", "ft_pipeline.cli", "audit", "--name", "ticket-queue", "--version", "v3"],
                           capture_output=True, text=True)
    assert audit.returncode == 0, audit.stderr
    assert "| step | v1 | share 0.5 -> 1 (step 2 of 2) |" in audit.stdout
    assert "passed (30 paired requests at step 1 of 2, share 0.5)" in audit.stdout


def _replayed_at_first_step(replay_file, pairs: int) -> int:
    """How many replayed requests the first step (share 0.5) took to collect `pairs` canary pairs."""
    import json

    ids = [json.loads(line)["request_id"] for line in replay_file.read_text().splitlines()]
    picked = 0
    for k, request_id in enumerate(ids, 1):
        picked += rollout.in_canary(request_id, 0.5, "ticket-queue/v3")
        if picked == pairs:
            return k
    raise AssertionError("the replay is too short for the first step")


def test_a_request_under_one_share_stays_under_every_larger_one():
    ids = [f"req-{i}" for i in range(5000)]
    for low, high in ((0.05, 0.25), (0.25, 0.5), (0.5, 1.0)):
        assert all(rollout.in_canary(i, high, "m/v2") for i in ids if rollout.in_canary(i, low, "m/v2"))


@pytest.mark.parametrize("steps, why", [
    ("[5, 50, 25]", "[5, 50, 25] must rise step by step"),
    ("[0, 50]", "step 1: 0 must be a percent of traffic in (0, 100]"),
    ("[5, 150]", "step 2: 150 must be a percent of traffic in (0, 100]"),
    ("[5, ten]", "step 2: 'ten' must be a percent of traffic in (0, 100]"),
    ("25", "25 must be a list of percents of traffic"),
])
def test_bad_steps_fail_on_load_naming_the_file_line_and_key(tmp_path, steps, why):
    path = tmp_path / "task.yaml"
    path.write_text(f"name: t\ntype: classification\nlabels: [a, b]\nrollout:\n  mode: canary\n  steps: {steps}\n")
    with pytest.raises(TaskError) as err:
        TaskConfig.from_yaml(path)
    assert str(err.value).startswith(f"{path} line 6: field rollout.steps: {why}")
    assert "\n" not in str(err.value)


def test_steps_are_canary_shares_and_a_share_on_the_command_line_is_one_step():
    config = RolloutConfig.from_dict({"steps": [5, 25, 50, 100]})
    assert config.shares() == [0.05, 0.25, 0.5, 1.0]
    assert RolloutConfig.from_dict({}).shares() == [0.1]  # today's behaviour: one step at `share`
    assert config.with_overrides(share=0.3).shares() == [0.3]
    assert config.with_overrides(mode="shadow").shares() == [1.0]  # a shadow copies every request


def stepped_events(task_metric_low: float = -0.04) -> list[dict]:
    """A canary of steps [5, 50, 100] that passed each, as a rollout log records it (an earlier
    rollout of the same version first: the chart shows the last one)."""
    numbers = lambda low: {"schema_valid": {"difference": 0.0, "low": -0.05, "high": 0.05, "tolerance": 0.02},  # noqa: E731
                           "task_metric": {"difference": 0.0, "low": low, "high": 0.04, "tolerance": 0.05}}
    at = lambda minute: f"2026-12-07T10:{minute:02d}:00+00:00"  # noqa: E731
    return [
        {"at": at(0), "event": "canary_started", "share": 0.1},
        {"at": at(1), "event": "rolled_back", "reason": "current moved"},
        {"at": at(2), "event": "canary_started", "share": 0.05, "steps": [5, 50, 100], "live": True},
        {"at": at(22), "event": "gate", "passed": True, "step": 1, "share": 0.05, "numbers": numbers(task_metric_low)},
        {"at": at(22), "event": "step", "step": 2, "steps": 3, "from_share": 0.05, "share": 0.5},
        {"at": at(42), "event": "gate", "passed": True, "step": 2, "share": 0.5, "numbers": numbers(-0.03)},
        {"at": at(42), "event": "step", "step": 3, "steps": 3, "from_share": 0.5, "share": 1.0},
        {"at": at(52), "event": "gate", "passed": True, "step": 3, "share": 1.0, "numbers": numbers(-0.02)},
        {"at": at(52), "event": "switched"},
    ]


def test_the_rollout_chart_follows_the_share_over_time_and_each_steps_gate():
    from ft_pipeline.core import plots

    points, gates, first = plots.rollout_series(stepped_events())
    assert points == [(0.0, 0.05), (20.0, 0.5), (40.0, 1.0), (50.0, 1.0)] and first == 0.05
    assert [g["step"] for g in gates] == [1, 2, 3]
    rolled_back = stepped_events()[:4] + [{"at": "2026-12-07T10:30:00+00:00", "event": "rolled_back"}]
    assert plots.rollout_series(rolled_back)[0] == [(0.0, 0.05), (28.0, 0.0)]  # back to the incumbent alone
    chart = plots.rollout_chart(stepped_events())
    assert chart.startswith(b"\x89PNG") and chart != plots.rollout_chart(stepped_events(task_metric_low=-0.2))
