"""The definitions load fast, without heavy libraries, and expose the designed graph."""
import json
import subprocess
import sys

import dagster as dg

EXPECTED_ASSETS = {
    "task", "raw_dataset", "redacted_dataset", "label_review_sample", "bias_report", "jsonl_export", "base_model",
    "fit_assessment", "adapter_weights", "eval_report", "promoted_model",
}
HEAVY = ["torch", "transformers", "presidio_analyzer", "great_expectations", "trl", "peft", "spacy", "mlflow"]


def test_definitions_import_is_fast_and_light():
    code = (
        "import json, sys, time; t = time.perf_counter(); import ft_pipeline.definitions as d; "
        "elapsed = time.perf_counter() - t; "
        f"print(json.dumps({{'elapsed': elapsed, 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert report["elapsed"] < 3.0, report


def test_graph_has_designed_assets_edges_and_blocking_checks():
    from ft_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert EXPECTED_ASSETS <= keys
    parents = lambda name: {k.to_user_string() for k in graph.get(dg.AssetKey(name)).parent_keys}
    assert parents("redacted_dataset") == {"raw_dataset", "task"}
    assert parents("adapter_weights") == {"base_model", "jsonl_export", "fit_assessment", "task"}
    # every asset that reads the task depends on it, so a changed task makes them stale
    assert {k.to_user_string() for k in graph.get(dg.AssetKey("task")).child_keys} == {
        "raw_dataset", "redacted_dataset", "label_review_sample", "bias_report", "jsonl_export", "fit_assessment",
        "adapter_weights", "eval_report", "promoted_model"}
    assert "adapter_weights" in parents("eval_report")
    assert "eval_report" in parents("promoted_model")
    blocking = {k.name for k in graph.asset_check_keys if graph.get_check_spec(k).blocking}
    assert {"labels_are_verified", "bias_is_within_bounds", "export_has_no_residual_pii", "export_schema_is_valid",
            "export_has_no_confidential_content", "fine_tuning_is_warranted", "training_cost_within_budget",
            "tuned_beats_base", "no_canary_leakage"} <= blocking
    # every check upstream of training is blocking: none can be skipped on the way to a GPU
    upstream = graph.get_ancestor_asset_keys(dg.AssetKey("adapter_weights"))
    assert all(graph.get_check_spec(k).blocking for k in graph.asset_check_keys if k.asset_key in upstream)


def test_every_file_backed_asset_documents_itself():
    from ft_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        assert graph.get(key).description, f"{key.to_user_string()} has no description"


def test_sensors_schedules_and_resources_are_defined():
    from ft_pipeline.definitions import defs

    assert defs.resolve_job_def("retrain")
    assert {s.name for s in defs.sensors} >= {"new_raw_files_sensor", "new_s3_objects_sensor"}
    assert {s.name for s in defs.schedules} == {"weekly_retrain"}


def test_dagster_definitions_validate_passes(tmp_path):
    import os
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=repo, capture_output=True, text=True, env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr[-2000:]


def test_remote_training_is_configured_from_the_environment(monkeypatch):
    from ft_pipeline.defs import resources

    monkeypatch.setenv("FT_ECS_CLUSTER", "gpu-cluster")
    monkeypatch.setenv("FT_ECS_SUBNETS", "subnet-1,subnet-2")
    assert resources._ecs_settings() == {"ecs_cluster": "gpu-cluster", "ecs_subnets": "subnet-1,subnet-2"}
    monkeypatch.setenv("FT_PIPELINE_TRAINER_MODE", "ecs")
    trainer = resources.resources().resources["trainer"]
    assert trainer.mode == "ecs" and trainer.ecs_cluster == "gpu-cluster"
