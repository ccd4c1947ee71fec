"""Promotion, model card, audit trail and rollback, end to end through Dagster and the CLI.

The tiny random model cannot beat a baseline, so this test lowers the release bounds in the task
file's `gates:`, as an operator could (and as the audit trail then records, by the task's sha256)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
import os

import dagster as dg
import pytest

from ft_pipeline import cli
from ft_pipeline.core.release import registry
from ft_pipeline_tests.defs.pipeline_helpers import (
    RELAXED_GATES, add_source, demo_slice, demo_task, pipeline_keys, run_config, write_preset,
)


MEMORIZATION = {"canaries": 4, "references": 31, "exposure_canaries": 4, "max_tpr_at_1pct_fpr": 1.0, "max_exposure": 5.5}


@pytest.fixture(scope="module")
def released(tmp_path_factory, tiny_model_dir):
    from ft_pipeline.definitions import defs

    root = tmp_path_factory.mktemp("release")
    home = root / "ft_home"
    home.mkdir()
    (root / "dh").mkdir()
    old = os.environ.get("FT_PIPELINE_HOME")
    old_tracking = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["FT_PIPELINE_HOME"] = str(home)
    source = demo_slice(root / "input.jsonl", per_split={"train": 30, "eval": 4, "test": 6})
    preset = write_preset(root / "tiny.yaml", max_steps=30, save_steps=15)
    # Canaries planted through the whole graph (export, trainer, eval_report, lineage, card), with
    # bounds the tiny model's 4 canaries per level cannot be judged by: the path, not the verdict.
    gates = {**RELAXED_GATES, "memorization": MEMORIZATION}
    config = run_config(tiny_model_dir, preset, task={"path": str(demo_task(root / "task.yaml", gates=gates))})
    with dg.instance_for_test(temp_dir=str(root / "dh")) as instance:
        job = defs.resolve_implicit_global_asset_job_def()
        result = job.execute_in_process(instance=instance, run_config=config, raise_on_error=False,
                                        partition_key=add_source(instance, source), asset_selection=pipeline_keys(defs))
        yield {"result": result, "instance": instance, "home": home, "job": job, "config": config, "source": source,
               "tracking_env": old_tracking}
    if old is None:
        os.environ.pop("FT_PIPELINE_HOME", None)
    else:
        os.environ["FT_PIPELINE_HOME"] = old


def _metadata(instance, name: str) -> dict:
    return instance.get_latest_materialization_event(dg.AssetKey(name)).asset_materialization.metadata


def test_promotion_publishes_what_was_trained_and_judged(released):
    assert released["result"].success
    instance = released["instance"]
    version_dir = registry.resolve(released["home"] / "registry", "northwind-triage")
    assert version_dir.name == "v1"
    # The adapter released is, byte for byte, the one adapter_weights trained.
    assert _metadata(instance, "promoted_model")["sha256"].value == _metadata(instance, "adapter_weights")["sha256"].value
    # The card and the lineage carry the evaluation's own numbers and every gate's verdict.
    report = released["result"].asset_value(dg.AssetKey("eval_report"))
    lineage = json.loads((version_dir / "lineage.json").read_text())
    assert lineage["evaluation"]["variants"] == report["variants"]
    card = (version_dir / "MODEL_CARD.md").read_text()
    metric = report["metric"]
    for variant, metrics in report["variants"].items():
        assert f"| {variant} | {metrics[metric]:.3f} |" in card
    trained = released["result"].asset_value(dg.AssetKey("adapter_weights"))["metrics"]
    assert f"Training steps: 30, final loss: {trained['final_loss']}" in card
    for asset in ("raw_dataset", "redacted_dataset", "jsonl_export", "adapter_weights"):
        assert f"| {asset} | `{_metadata(instance, asset)['sha256'].value[:16]}` |" in card
    checks = {c["check"]: c["passed"] for c in lineage["checks"]}
    assert {"labels_are_verified", "export_has_no_residual_pii", "tuned_beats_base", "no_canary_leakage"} <= set(checks)
    assert all(checks.values()) and "| no_canary_leakage | eval_report | passed |" in card
    # The memorization gate measured the canaries the export planted and the trainer trained on.
    assert "| no_canary_memorization | eval_report | passed |" in card and "## Memorization" in card
    memorization = lineage["evaluation"]["memorization"]
    assert memorization["planted"] == memorization["twins"] == 8 and set(memorization["attacks"]) == {
        "loss", "min_k", "reference"}
    assert lineage["evaluation"]["verdicts"]["no_canary_memorization"]["outcome"] == "clean"
    assert trained["train_examples"] == _metadata(instance, "jsonl_export")["rows_train"].value + 4 * 1 + 4 * 10
    # The lowered release bounds are on record: the task file the lineage names, by its digest.
    from ft_pipeline.core.task import TaskConfig, file_sha256

    assert file_sha256(lineage["task"]["path"]) == lineage["task"]["sha256"]
    assert RELAXED_GATES.items() <= TaskConfig.from_yaml(lineage["task"]["path"]).gates.items()


def test_merged_weights_are_base_plus_adapter(released, tiny_model_dir):
    """The merged release answers like base + adapter through peft, and not like the base alone."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    version_dir = registry.resolve(released["home"] / "registry", "northwind-triage")
    tokenizer = AutoTokenizer.from_pretrained(version_dir / "merged")
    ids = tokenizer(["my card was charged twice, please refund"], return_tensors="pt")
    with torch.inference_mode():
        merged = AutoModelForCausalLM.from_pretrained(version_dir / "merged")(**ids).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        unmerged = PeftModel.from_pretrained(base, version_dir / "adapter")(**ids).logits
        base_only = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(**ids).logits
    assert torch.allclose(merged, unmerged, atol=1e-4)
    assert not torch.allclose(merged, base_only, atol=1e-3)  # the adapter moved something


def test_audit_trail_reaches_the_raw_file(released, capsys):
    raw_sha = hashlib.sha256(released["source"].read_bytes()).hexdigest()
    assert cli.main(["audit", "--format", "json"]) == 0
    trail = json.loads(capsys.readouterr().out)
    raw = next(a for a in trail["assets"] if a["asset"] == "raw_dataset")
    assert raw["partition"] == str(released["source"])  # one entry per source partition
    assert raw_sha in raw["metadata"]["source_sha256"].values()
    assert {a["asset"] for a in trail["assets"]} >= {"raw_dataset", "redacted_dataset", "jsonl_export", "adapter_weights", "eval_report"}
    assert all(a["run_id"] and a["sha256"] for a in trail["assets"] if a["asset"] != "fit_assessment")
    checks = {c["check"]: c for c in trail["checks"]}
    assert checks["labels_are_verified"]["passed"] and checks["tuned_beats_base"]["passed"]
    assert checks["labels_are_verified"]["partition"] == str(released["source"])
    # the task the model was trained and evaluated for, by digest, on the release and on every asset
    task_sha = hashlib.sha256(Path(trail["task"]["path"]).read_bytes()).hexdigest()
    assert trail["task"]["sha256"] == task_sha and trail["task"]["name"] == "northwind-triage"
    readers = [a for a in trail["assets"] if a["asset"] in ("raw_dataset", "jsonl_export", "adapter_weights", "eval_report")]
    assert readers and all(a["metadata"]["task_sha256"] == task_sha for a in readers)
    assert cli.main(["audit"]) == 0
    out = capsys.readouterr().out
    assert raw_sha in out and "## The task it was trained and evaluated for" in out and task_sha in out


def test_mlflow_holds_the_run_and_the_release(released):
    """The default store (SQLite under FT_PIPELINE_HOME), read back with MlflowClient."""
    from ft_pipeline_tests.defs.mlflow_helpers import assert_tracked

    assert_tracked(released["home"], released["result"], released["instance"], released["source"], version="v1")
    # logging the model did not pin this process (and the next test's home) to this store
    assert os.environ.get("MLFLOW_TRACKING_URI") == released["tracking_env"]


def test_second_promotion_then_rollback(released, capsys):
    from ft_pipeline_tests.defs.mlflow_helpers import champion

    result = released["job"].execute_in_process(
        instance=released["instance"], asset_selection=[dg.AssetKey("promoted_model")], raise_on_error=False,
    )
    assert result.success
    root = released["home"] / "registry"
    assert registry.versions(root, "northwind-triage") == ["v1", "v2"]
    assert champion("northwind-triage") == "v2"  # MLflow's alias follows `current`
    assert cli.main(["rollback"]) == 0
    assert json.loads(capsys.readouterr().out) == {"model": "northwind-triage", "from": "v2", "to": "v1"}
    assert registry.current_version(root, "northwind-triage") == "v1"
    assert champion("northwind-triage") == "v1"
    assert cli.main(["audit", "--version", "v2", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "v2"


def test_cli_user_errors_are_one_line_exit_2(released, capsys):
    assert cli.main(["audit", "--version", "v99"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "v99" in err and "Traceback" not in err
    assert cli.main(["rollback", "--to", "v42"]) == 2


def test_the_evidence_bundle_of_a_real_release_verifies(released, tmp_path, capsys):
    from ft_pipeline.core.release import evidence

    assert cli.main(["evidence", "--name", "northwind-triage", "--version", "v1", "--out", str(tmp_path)]) == 0
    folder = tmp_path / "northwind-triage-v1"
    manifest = evidence.verify(folder)
    sheet = json.loads((folder / "datasheet.json").read_text())
    # What the lineage froze: the source file's digest and the redaction counts per entity type.
    assert sheet["sources"][0]["files_sha256"] and sheet["redaction"]["recorded"]
    assert sum(sheet["redaction"]["entities_redacted"].values()) > 0
    assert manifest["memorization"]["outcome"] == "clean" and manifest["compute"]["flops"] > 0
    assert manifest["compute"]["gpai_provider"] == "unknown"  # the tiny random model is in no table


def test_a_version_held_for_its_rollout_is_published_beside_current(released, tmp_path):
    """rollout.hold_new_versions: promotion publishes the next version but `current` (and MLflow's
    champion) stay; the new version is MLflow's challenger until a rollout passes."""
    from ft_pipeline_tests.defs.mlflow_helpers import champion, client

    root = released["home"] / "registry"
    before = registry.current_version(root, "northwind-triage")
    held = demo_task(tmp_path / "held.yaml", gates={**RELAXED_GATES, "memorization": MEMORIZATION},
                     rollout={"hold_new_versions": True})
    config = {**released["config"], "ops": {**released["config"]["ops"], "task": {"config": {"path": str(held)}}}}
    result = released["job"].execute_in_process(instance=released["instance"], run_config=config, raise_on_error=False,
                                                asset_selection=[dg.AssetKey("task"), dg.AssetKey("promoted_model")])
    assert result.success
    new = registry.versions(root, "northwind-triage")[-1]
    assert registry.current_version(root, "northwind-triage") == before != new
    assert _metadata(released["instance"], "promoted_model")["current"].value == before
    assert champion("northwind-triage") == before
    challenger = client().get_model_version_by_alias("northwind-triage", "challenger")
    assert challenger.tags["registry_version"] == new
    # held: the server's live rollout (core/serving/live.py) starts from this step
    assert [e["event"] for e in registry.rollout_events(root / "northwind-triage" / new)] == ["held"]
