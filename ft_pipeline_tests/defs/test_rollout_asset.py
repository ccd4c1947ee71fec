"""The rollout asset on a Dagster instance: each step an observation, the gate table and chart on
the materialization, and the check failing when the candidate was rolled back."""
from __future__ import annotations

import dagster as dg

from ft_pipeline.core.release import registry
from ft_pipeline.defs.serving.rollout import CHECK, rollout
from ft_pipeline_tests.core.serving.rollout_helpers import publish_trained, write_replay


def test_a_rolled_back_canary_materializes_its_gate_and_fails_its_check(ft_home, tiny_model_dir, tmp_path):
    publish_trained(ft_home, tiny_model_dir, tmp_path, "billing", 0, True)
    publish_trained(ft_home, tiny_model_dir, tmp_path, "shipping", 0, False)
    replay = write_replay(tmp_path / "replay.jsonl")
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([rollout], instance=instance, raise_on_error=False, run_config={
        "ops": {"rollout": {"config": {"version": "v2", "replay": str(replay)}}}})
    assert result.success
    [materialization] = result.asset_materializations_for_node("rollout")
    metadata = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    assert metadata["passed"] is False and metadata["current"] == "v1" and "task_metric" in metadata["failed_gates"]
    assert "| task_metric | FAIL | worse |" in metadata["gates"] and "data:image/png;base64," in metadata["comparison"]
    assert "share and gate by step](data:image/png;base64," in metadata["steps"]
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == CHECK and not check.passed and "current stays v1" in check.description
    steps = [e.event_specific_data.asset_observation.metadata["step"].value
             for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert steps == ["canary_started", "gate", "rolled_back"]
    assert registry.current_version(ft_home / "registry", "ticket-queue") == "v1"


def test_the_steps_of_a_live_rollout_show_on_the_rollout_asset(ft_home, tmp_path):
    """The server records live steps in the registry; live_rollout_sensor shows each once, as an
    observation, and the decision as a materialization (a replay's steps are left to the asset)."""
    from ft_pipeline.defs.serving.rollout import live_rollout_sensor
    from ft_pipeline_tests.core.serving.test_rollout import fake_versions

    fake_versions(ft_home, tmp_path)  # v1 current, v2 beside it
    folder = ft_home / "registry" / "ticket-queue" / "v2"
    registry.record_rollout(folder, {"event": "canary_started", "version": "v2", "replay": "r.jsonl"})
    for event in ({"event": "canary_started"}, {"event": "progress", "paired_requests": 10},
                  {"event": "rolled_back", "reason": "task_metric: worse", "failed_gates": ["task_metric"]}):
        registry.record_rollout(folder, {"version": "v2", "incumbent": "v1", "live": True, **event})
    context = dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral())
    result = live_rollout_sensor(context)
    steps = [e.metadata["step"].value for e in result.asset_events if isinstance(e, dg.AssetObservation)]
    assert steps == ["canary_started", "progress", "rolled_back"]
    [decision] = [e for e in result.asset_events if isinstance(e, dg.AssetMaterialization)]
    assert decision.metadata["passed"].value is False and decision.metadata["current"].value == "v1"
    assert decision.metadata["failed_gates"].value == ["task_metric"]
    assert "data:image/png;base64," in decision.metadata["steps"].value
    again = live_rollout_sensor(dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), cursor=result.cursor))
    assert again.asset_events == []  # each step once
