"""A version its online gate rolled back stays out of service: `serve` and `rollback` refuse it in
one line (exit 2) unless --force, and a forced use is a step of its rollout log and audit trail.
The versions are configs only: every refusal comes before a model would load."""
from __future__ import annotations

import pytest

from ft_pipeline.core.release import registry
from ft_pipeline.core.serving import live
from ft_pipeline_tests.core.serving.test_rollout import cli, fake_versions


@pytest.fixture()
def rolled_back(ft_home, tmp_path):
    fake_versions(ft_home, tmp_path)  # v1 current, v2 beside it
    folder = ft_home / "registry" / "ticket-queue" / "v2"
    registry.record_rollout(folder, {"event": "rolled_back", "version": "v2", "incumbent": "v1",
                                     "reason": "task_metric: worse", "failed_gates": ["task_metric"]})
    return folder


@pytest.mark.parametrize("command", [["serve", "--version", "v2"], ["rollback", "--to", "v2"]])
def test_a_rolled_back_version_is_refused_in_one_line(rolled_back, command):
    out = cli(*command, "--name", "ticket-queue")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert "refusing to" in out.stderr and "its online gate rolled it back" in out.stderr and "--force" in out.stderr
    assert registry.current_version(rolled_back.parent.parent, "ticket-queue") == "v1"
    assert [e["event"] for e in registry.rollout_events(rolled_back)] == ["rolled_back"]


def test_forced_use_is_recorded_in_the_audit_trail(rolled_back, ft_home):
    out = cli("rollback", "--name", "ticket-queue", "--to", "v2", "--force")
    assert out.returncode == 0, out.stderr
    assert registry.current_version(ft_home / "registry", "ticket-queue") == "v2"
    forced = registry.rollout_events(rolled_back)[-1]
    assert forced["event"] == "forced" and forced["command"] == "roll back to" and forced["incumbent"] == "v1"
    audit = cli("audit", "--name", "ticket-queue", "--version", "v2")
    assert "roll back to forced past the rollback of" in audit.stdout
    served = cli("serve", "--name", "ticket-queue", "--force", "--port", "1")  # forced past the refusal, then the port
    assert served.returncode == 2 and "refusing" not in served.stderr
    assert [e["command"] for e in registry.rollout_events(rolled_back) if e["event"] == "forced"] == ["roll back to", "serve"]


def test_a_held_or_live_started_version_is_in_rollout_and_a_decided_one_is_not(ft_home, tmp_path):
    fake_versions(ft_home, tmp_path)
    root, folder = ft_home / "registry", ft_home / "registry" / "ticket-queue" / "v2"
    assert live.in_rollout(root, "ticket-queue") is None  # beside current, nothing recorded: a plain older release
    registry.record_rollout(folder, {"event": "held", "version": "v2", "incumbent": "v1"})
    assert live.in_rollout(root, "ticket-queue")[0] == "v2"
    registry.record_rollout(folder, {"event": "canary_started", "version": "v2", "replay": "r.jsonl"})
    assert live.in_rollout(root, "ticket-queue") is None  # a replay runs in its own process
    registry.record_rollout(folder, {"event": "shadow_started", "version": "v2", "live": True, "mode": "shadow"})
    started = registry.rollout_events(folder)[-1]
    assert live.in_rollout(root, "ticket-queue") == ("v2", started, 0)
    # a server started again later finds it still undecided, at the canary step its log reached
    for event in ("progress", "gate", "step", "progress"):
        registry.record_rollout(folder, {"event": event, "version": "v2", "live": True})
    assert live.in_rollout(root, "ticket-queue") == ("v2", started, 1)
    registry.record_rollout(folder, {"event": "switched", "version": "v2"})
    assert live.in_rollout(root, "ticket-queue") is None
