"""Rolling a version out on the real path: trained tiny adapters in the registry, the serving
engine, the guard with the real redaction engine, the online gate's paired statistics, the
registry's pointer and the audit trail. A worse version is rolled back by itself; an equal one
passes and becomes current."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ft_pipeline.core.release import registry
from ft_pipeline.core.serving import rollout
from ft_pipeline_tests.core.serving.helpers import publish_version, write_task
from ft_pipeline_tests.core.serving.rollout_helpers import TASK, publish_trained, write_replay


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "ft_pipeline.cli", *args], capture_output=True, text=True, env=env)


@pytest.fixture()
def replay_file(tmp_path):
    return write_replay(tmp_path / "replay.jsonl")


def test_a_worse_canary_is_rolled_back_and_an_equal_one_becomes_current(ft_home, tiny_model_dir, tmp_path, replay_file,
                                                                       monkeypatch):
    from ft_pipeline.core.tracking import models

    aliases = []  # MLflow's aliases follow (moving them in a real store: defs/test_tracking.py)
    monkeypatch.setattr(models, "mirror_alias", lambda name, version, alias="champion", warn=None: aliases.append((version, alias)))
    publish = lambda answer, seed, current: publish_trained(ft_home, tiny_model_dir, tmp_path, answer, seed, current)  # noqa: E731
    root = ft_home / "registry"
    assert publish("billing", 0, True) == "v1"
    assert publish("shipping", 0, False) == "v2"  # promoted, waiting beside current
    assert registry.current_version(root, "ticket-queue") == "v1"

    worse = rollout.run(root, "ticket-queue", "v2", replay_file)
    assert not worse["passed"] and worse["current"] == "v1" and registry.current_version(root, "ticket-queue") == "v1"
    assert "task_metric" in worse["failed_gates"] and worse["verdicts"]["task_metric"].outcome == "worse"
    # canary: the candidate answered only the requests its hash picked, and both answered those
    assert 15 <= worse["paired_requests"] == worse["answered_by_candidate"] <= 45 and worse["requests"] == 60
    events = registry.rollout_events(root / "ticket-queue" / "v2")
    assert [e["event"] for e in events] == ["canary_started", "gate", "rolled_back"]
    assert "task_metric: worse" in events[-1]["reason"] and events[-1]["incumbent"] == "v1"

    audit = cli("audit", "--name", "ticket-queue", "--version", "v2")
    assert audit.returncode == 0, audit.stderr
    assert "## Rollout" in audit.stdout and "current stays v1: task_metric: worse" in audit.stdout
    assert "| task_metric | FAIL | worse | candidate is behind incumbent on accuracy by 1.00" in audit.stdout

    assert publish("billing", 1, False) == "v3"
    better = rollout.run(root, "ticket-queue", "v3", replay_file, mode="shadow")
    assert better["passed"], better["failed_gates"]
    assert better["paired_requests"] == 60 and better["answered_by_candidate"] == 0  # shadow: never returned
    assert registry.current_version(root, "ticket-queue") == "v3"
    assert [e["event"] for e in registry.rollout_events(root / "ticket-queue" / "v3")] == ["shadow_started", "gate", "switched"]
    assert aliases == [("v2", "challenger"), ("v3", "challenger"), ("v3", "champion")]


def test_the_canary_split_is_stable_and_near_its_share():
    ids = [f"req-{i}" for i in range(20_000)]
    picked = [rollout.in_canary(i, 0.1, "m/v2") for i in ids]
    assert 0.09 < sum(picked) / len(ids) < 0.11
    assert picked == [rollout.in_canary(i, 0.1, "m/v2") for i in ids]  # the same request, the same side
    other = [rollout.in_canary(i, 0.1, "m/v3") for i in ids]
    assert 0.09 < sum(other) / len(ids) < 0.11 and other != picked  # another rollout samples other requests
    assert all(rollout.in_canary(i, 1.0, "m/v2") for i in ids[:100])


def fake_versions(home, tmp_path):
    """Two versions whose adapters are only a config: every mistake below is found before a model loads."""
    task = write_task(tmp_path, TASK)
    for version in ("a", "b"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "adapter_config.json").write_text(json.dumps({"r": 4, "peft_type": "LORA"}))
        publish_version(home, tmp_path / "base", task, tmp_path / version, "ticket-queue", version == "a")


@pytest.mark.parametrize("replay, args, message", [
    ('{"messages": [{"role": "user", "content": "hi"}]}\n{"label": "billing"}\n', [], "replay.jsonl line 2: field messages"),
    ('{"messages": [{"role": "robot", "content": "hi"}]}\n', [], "line 1: field messages.0.role"),
    ('{"messages": [{"role": "user", "content": "hi"}], "label": "refunds"}\n', [], "line 1: field label: not one of"),
    ("not json\n", [], "line 1: not JSON"),
    ('{"messages": [{"role": "user", "content": "hi"}]}\n', ["--share", "1.5"], "--share: 1.5 must be in (0, 1]"),
    ('{"messages": [{"role": "user", "content": "hi"}]}\n', ["--version", "v1"], "v1 is already current"),
    ('{"messages": [{"role": "user", "content": "hi"}]}\n', ["--version", "v7"], "no version 'v7'"),
])
def test_rollout_mistakes_are_one_line_and_exit_2(ft_home, tmp_path, replay, args, message):
    fake_versions(ft_home, tmp_path)
    (tmp_path / "replay.jsonl").write_text(replay)
    version = [] if "--version" in args else ["--version", "v2"]
    out = cli("rollout", "--name", "ticket-queue", *version, "--replay", str(tmp_path / "replay.jsonl"), *args)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert registry.current_version(ft_home / "registry", "ticket-queue") == "v1"
    assert registry.rollout_events(ft_home / "registry" / "ticket-queue" / "v2") == []  # nothing started


def test_a_version_published_beside_current_waits_unless_there_is_no_current(ft_home, tmp_path):
    fake_versions(ft_home, tmp_path)  # v1 published as current, v2 beside it
    root = ft_home / "registry"
    assert registry.versions(root, "ticket-queue") == ["v1", "v2"] and registry.current_version(root, "ticket-queue") == "v1"
    (tmp_path / "first").mkdir()
    (tmp_path / "first" / "adapter_config.json").write_text("{}")
    publish_version(ft_home, tmp_path / "base", tmp_path / "task.yaml", tmp_path / "first", "other-model", False)
    assert registry.current_version(root, "other-model") == "v1"  # nothing to keep: the first version serves


def test_a_production_traffic_day_replays_as_it_is(ft_home):
    """The traffic log's own lines: answered ones replay (response_format as logged), refused ones
    (logged without text) are skipped and counted."""
    from ft_pipeline.core.serving import traffic
    from ft_pipeline.core.task import TaskConfig

    traffic.record({"request_id": "chatcmpl-1", "status": 200, "response_format": "json_object", "answer": "billing",
                    "messages": [{"role": "system", "content": "Route."}, {"role": "user", "content": "charged twice"}]})
    traffic.record({"request_id": "chatcmpl-2", "status": 400, "error": "request_too_long"})
    items, skipped = rollout.read_replay(traffic.day_file(traffic.today()), TaskConfig(name="q", type="classification"))
    assert skipped == 1 and [i.request_id for i in items] == ["chatcmpl-1"]
    assert items[0].request.response_format.type == "json_object" and items[0].label is None


def test_mlflow_aliases_follow_the_rollout(ft_home, tiny_model_dir, tmp_path, replay_file):
    """A real MLflow store (the default SQLite one): a version promoted beside current is the
    challenger; once its rollout passes it is the champion, and no longer a challenger."""
    from ft_pipeline.core.tracking import payloads, queue

    root = ft_home / "registry"
    publish_trained(ft_home, tiny_model_dir, tmp_path, "billing", 0, True)
    publish_trained(ft_home, tiny_model_dir, tmp_path, "billing", 1, False)
    task = {"config": {"name": "ticket-queue"}, "sha256": "0" * 64}
    for version, alias in (("v1", "champion"), ("v2", "challenger")):
        assert queue.submit("register_release", payloads.release(
            task=task, run_key=f"run-{version}", version_dir=root / "ticket-queue" / version,
            base_model_path=str(tiny_model_dir), dagster_run_id="test", alias=alias))
    store = queue.client(queue.tracking_uri())
    aliases = lambda: {k: str(v) for k, v in store.get_registered_model("ticket-queue").aliases.items()}  # noqa: E731
    assert aliases() == {"champion": "1", "challenger": "2"}
    assert rollout.run(root, "ticket-queue", "v2", replay_file, mode="shadow")["passed"]
    assert aliases() == {"champion": "2"}
