"""The whole graph through dagster with real components: Presidio, great-expectations, fairlearn,
trl on the tiny Llama, a temporary Dagster instance. One materialization is shared by the tests
that read it (module fixture): it is the expensive part."""
from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pytest

from ft_pipeline.core.jsonl import iter_jsonl
from ft_pipeline.core.release import registry
from ft_pipeline_tests.defs.pipeline_helpers import (
    add_source, demo_slice, demo_task, pipeline_keys, plan, run_config, write_preset,
)

# Raw PII seeded into the input: none of it may appear outside $FT_PIPELINE_HOME/raw/.
CANARY_PII = {
    "name": "Zephyrine Quillfeather",
    "email": "zephyrine.quillfeather@example.org",
    "phone": "(415) 555-0187",
    "ssn": "536-22-8741",
}
CANARY_RECORD = {
    "id": "pii-canary-1",
    "messages": [
        {"role": "user", "content": f"Hi, this is {CANARY_PII['name']}. Email me at {CANARY_PII['email']} or call "
                                    f"{CANARY_PII['phone']}. My SSN is {CANARY_PII['ssn']}. I lost my card, please block it now!"},
        {"role": "assistant", "content": '{"intent": "card_lost", "priority": "urgent"}'},
    ],
    "label_verified": True, "annotator": "ann-01", "verified_at": "2026-10-01T10:00:00Z",
    "attributes": {"region": "NA", "language": "en", "segment": "retail", "age_band": "30-44"},
    "split": "train",
}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_model_dir):
    from ft_pipeline.definitions import defs

    root = tmp_path_factory.mktemp("pipeline")
    home, dagster_home = root / "ft_home", root / "dagster_home"
    home.mkdir()
    dagster_home.mkdir()
    old = os.environ.get("FT_PIPELINE_HOME")
    os.environ["FT_PIPELINE_HOME"] = str(home)
    source = demo_slice(root / "input.jsonl", extra=[CANARY_RECORD])
    preset = write_preset(root / "tiny.yaml")
    # Small groups judged (min_group_size 3) and a short capability probe: the slice has 12 test items.
    gates = {"min_group_size": 3, "capability_items": 16, "n_boot": 200}
    config = run_config(tiny_model_dir, preset, task={"path": str(demo_task(root / "task.yaml", gates=gates))})
    with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        job = defs.resolve_implicit_global_asset_job_def()
        # One run: the source partition's ingest and redaction, then everything downstream.
        result = job.execute_in_process(instance=instance, run_config=config, raise_on_error=False,
                                        partition_key=add_source(instance, source), asset_selection=pipeline_keys(defs))
        yield {"result": result, "instance": instance, "home": home, "dagster_home": dagster_home,
               "defs": defs, "config": config, "source": source, "preset": preset,
               "model_dir": tiny_model_dir}
    if old is None:
        os.environ.pop("FT_PIPELINE_HOME", None)
    else:
        os.environ["FT_PIPELINE_HOME"] = old


def materialization(instance, name):
    event = instance.get_latest_materialization_event(dg.AssetKey(name))
    return event.asset_materialization if event else None


def test_every_asset_up_to_eval_is_materialized_with_path_and_sha(pipeline):
    instance = pipeline["instance"]
    for name in ["raw_dataset", "redacted_dataset", "label_review_sample", "bias_report", "jsonl_export",
                 "base_model", "fit_assessment", "adapter_weights", "eval_report"]:
        m = materialization(instance, name)
        assert m is not None, f"{name} was not materialized"
        assert len(m.metadata["sha256"].value) == 64, name
        # the artifact's own path, not where the IO manager pickled the value passed downstream
        expected_root = pipeline["model_dir"] if name == "base_model" else pipeline["home"]
        assert m.metadata["path"].value.startswith(str(expected_root)), name


def test_every_record_is_accounted_for(pipeline):
    instance = pipeline["instance"]
    lines = sum(1 for l in pipeline["source"].read_text().splitlines() if l.strip())
    raw = materialization(instance, "raw_dataset").metadata
    red = materialization(instance, "redacted_dataset").metadata
    assert raw["records"].value + raw["quarantined"].value == lines
    assert red["records_in"].value == raw["records"].value
    assert red["records_out"].value + red["quarantined"].value == red["records_in"].value
    assert red["quarantined"].value >= 2  # the two confidential records
    exported = materialization(instance, "jsonl_export").metadata
    total = sum(exported[f"rows_{s}"].value for s in ("train", "eval", "test", "preference_train", "preference_eval"))
    assert total == red["records_out"].value
    # the export folder holds only what the trainer reads; its sidecars lie in their own folder
    folder, sidecars = Path(exported["path"].value), Path(exported["sidecars"].value)
    assert sidecars.parent.name == "jsonl_export_sidecars" and sidecars.name == folder.name
    assert {p.name for p in sidecars.iterdir()} == set(exported["sidecar_files"].value) == {
        "attributes.jsonl", "splits.jsonl", "contamination.jsonl"}
    assert all("messages" in row or "chosen" in row for p in folder.glob("*.jsonl") for row in iter_jsonl(p))
    # which redacted bytes of which source went in: what the retrain sensor compares the sources with
    assert exported["redacted_sha256"].value == {str(pipeline["source"]): red["sha256"].value}


def test_pre_training_gates_all_passed(pipeline):
    instance = pipeline["instance"]
    graph = pipeline["defs"].resolve_asset_graph()
    upstream = graph.get_ancestor_asset_keys(dg.AssetKey("adapter_weights"))
    keys = [k for k in graph.asset_check_keys if k.asset_key in upstream]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    assert len(keys) >= 8
    for key in keys:
        assert latest[key].status.value == "SUCCEEDED", key.name


def test_adapter_and_metadata(pipeline):
    m = materialization(pipeline["instance"], "adapter_weights").metadata
    assert m["steps"].value == 6
    assert m["gates_verified"].value >= 8
    assert "data:image/png;base64" in m["loss_curve"].value


def test_fit_assessment_measures_every_arm_and_the_evaluation_keeps_the_strongest(pipeline):
    """The demo task (with its knowledge folder): every arm measured with an interval and a monthly
    cost; the tiny random model reaches nothing, so fine-tuning is recommended; the eval report then
    compares tuned with the zero-shot arm and the strongest arm on the same items."""
    from ft_pipeline.core.jsonl import iter_jsonl

    instance = pipeline["instance"]
    m = materialization(instance, "fit_assessment").metadata
    arms = m["arms"].value
    assert set(arms) == {"zero_shot", "few_shot", "retrieved_few_shot", "rag"}
    for arm in arms.values():
        assert set(arm) == {"metric", "low", "high", "usd_per_month"}
        assert 0 <= arm["low"] <= arm["metric"] <= arm["high"] <= 1 and arm["usd_per_month"] > 0
    assert m["recommendation"].value == "fine_tune" and "no cheaper arm reaches the target" in m["reasons"].value
    assert "data:image/png;base64," in m["arms_chart"].value
    assert [p["fraction"] for p in m["pilot"].value["curve"]] == [0.25, 0.5]
    best = m["best_alternative"].value
    predictions = list(iter_jsonl(m["predictions_path"].value))
    assert predictions and all(set(p) == {"id", *arms} for p in predictions)

    report = materialization(instance, "eval_report").metadata
    assert report["held_out_examples"].value == len(predictions)
    assert "tuned_vs_best_alternative" in report["comparisons"].value
    if best != "zero_shot":
        assert f"{best}_exact_match" in report
    key = dg.AssetCheckKey(dg.AssetKey("eval_report"), "tuned_beats_best_alternative")
    assert instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key].status.value == "FAILED"


@pytest.mark.parametrize("method, extra", [
    ("dpo", "dpo_beta: 0.1\n"),
    ("grpo", "num_generations: 2\nmax_completion_length: 8\n"),
])
def test_dpo_and_grpo_presets_train_through_the_asset(pipeline, tmp_path, method, extra):
    """The same asset trains every method: DPO on the demo's preference pairs, GRPO with the
    dataset's JSON answers as reward."""
    preset = tmp_path / f"{method}.yaml"
    text = pipeline["preset"].read_text().replace("method: sft", f"method: {method}").replace("assistant_only_loss: true\n", "")
    preset.write_text(text.replace("max_steps: 6", "max_steps: 2").replace("per_device_batch_size: 8", "per_device_batch_size: 2") + extra)
    job = pipeline["defs"].resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=pipeline["instance"], asset_selection=[dg.AssetKey("adapter_weights")], raise_on_error=False,
        run_config={"resources": plan(preset)},
    )
    assert result.success
    m = materialization(pipeline["instance"], "adapter_weights").metadata
    assert m["method"].value == method and m["steps"].value == 2


def test_a_preset_that_continues_another_trains_it_first_then_reuses_it(pipeline, tmp_path):
    """A DPO preset whose init_adapter is adapters/<an SFT preset> is a recipe: in a home without
    that adapter, one materialization trains the SFT stage into it and then DPO on it; the output,
    both adapters' manifests, the lineage and the model card name both stages. Materialized again
    on the same export, the SFT stage is reused, not retrained."""
    from ft_pipeline.core.release import model_card, release
    from ft_pipeline.core.task import TaskConfig
    from ft_pipeline.core.training.manifest import read_training_manifest

    name = f"recipe-sft-{tmp_path.name}"  # the home is shared by this module's tests
    sft = write_preset(tmp_path / f"{name}.yaml", max_steps=2, save_steps=100)
    dpo = tmp_path / "recipe-dpo.yaml"
    dpo.write_text(sft.read_text().replace("method: sft", "method: dpo").replace("assistant_only_loss: true\n", "")
                   .replace("per_device_batch_size: 8", "per_device_batch_size: 2")
                   + f"dpo_beta: 0.1\ninit_adapter: adapters/{name}\n")
    stage_dir = pipeline["home"] / "adapters" / name
    assert not stage_dir.exists()
    job = pipeline["defs"].resolve_implicit_global_asset_job_def()

    def materialize() -> dict:
        result = job.execute_in_process(instance=pipeline["instance"], asset_selection=[dg.AssetKey("adapter_weights")],
                                        run_config={"resources": plan(dpo)}, raise_on_error=False)
        assert result.success
        return result.asset_value(dg.AssetKey("adapter_weights"))

    first = materialize()
    assert [(s["method"], s["reused"], s["steps"]) for s in first["stages"]] == [("sft", False, 2), ("dpo", False, 2)]
    assert first["stages"][0]["adapter"] == f"adapters/{name}" and (stage_dir / "metrics.json").is_file()
    sft_manifest, dpo_manifest = read_training_manifest(stage_dir), read_training_manifest(Path(first["path"]))
    assert [s["method"] for s in sft_manifest["stages"]] == ["sft"]
    assert [s["method"] for s in dpo_manifest["stages"]] == ["sft", "dpo"]
    assert dpo_manifest["continued_from"] == sft_manifest["export_sha256"] == dpo_manifest["export_sha256"]
    assert set(sft_manifest["trained_on"]) <= set(dpo_manifest["trained_on"])
    m = materialization(pipeline["instance"], "adapter_weights").metadata
    assert [s["adapter"] for s in m["stages"].value][0] == f"adapters/{name}"

    spec = TaskConfig.from_yaml(pipeline["config"]["ops"]["task"]["config"]["path"])
    lineage = {"name": spec.name, "version": "v9", "promoted_at": "now", "run_id": "r" * 8,
               **release.record(spec, {"sha256": "0" * 64, "path": "task.yaml"}, first, {"variants": {}}, {},
                                release.Staged(tmp_path, 1, 1))}
    assert [s["stage"] for s in lineage["training"]["stages"]] == [name, "recipe-dpo"]
    card = model_card.render(lineage)
    assert f"1. sft (preset `" in card and f"adapter `adapters/{name}`" in card and "2. dpo (preset `" in card

    trained_at = (stage_dir / "metrics.json").stat().st_mtime_ns
    second = materialize()
    assert [(s["method"], s["reused"]) for s in second["stages"]] == [("sft", True), ("dpo", False)]
    assert (stage_dir / "metrics.json").stat().st_mtime_ns == trained_at


RESUME_CHILD = """
import json, sys
import dagster as dg
from dagster._core.instance.ref import InstanceRef
from ft_pipeline.definitions import defs

instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(sys.argv[1]))
defs.resolve_implicit_global_asset_job_def().execute_in_process(
    instance=instance, asset_selection=[dg.AssetKey("adapter_weights")], run_config=json.loads(sys.argv[2]))
"""


def test_killed_training_resumes_when_the_asset_is_materialized_again(pipeline, tmp_path):
    """adapter_weights materialized in another process, SIGKILLed after its first checkpoint;
    materializing the asset again resumes from that checkpoint and ends at the same step count."""
    import signal
    import subprocess
    import sys
    import time

    from ft_pipeline_tests.core.training.helpers import child_env

    preset = write_preset(tmp_path / "long.yaml", max_steps=120, save_steps=5)
    preset.write_text(preset.read_text().replace("per_device_batch_size: 8", "per_device_batch_size: 2"))
    config = {"resources": plan(preset)}
    env = {**child_env(), "FT_PIPELINE_HOME": str(pipeline["home"])}
    log = tmp_path / "child.log"
    with open(log, "wb") as out:
        child = subprocess.Popen([sys.executable, "-c", RESUME_CHILD, str(pipeline["dagster_home"]), json.dumps(config)],
                                 env=env, stdout=out, stderr=subprocess.STDOUT)
    adapters = pipeline["home"] / "models" / "adapter_weights"
    deadline = time.time() + 300
    try:
        while time.time() < deadline and child.poll() is None:
            if any(adapters.glob("*/checkpoints/checkpoint-*/trainer_state.json")):
                break
            time.sleep(0.05)
        assert child.poll() is None, f"the first materialization ended before it could be killed; see {log}"
        child.send_signal(signal.SIGKILL)
        child.wait()
        # its checkpoints can be judged by erasure: the run's manifest was written before training
        checkpoints = list(adapters.glob("*/checkpoints/checkpoint-*"))
        assert checkpoints and all((c.parents[1] / "training_ids.json").is_file() for c in checkpoints)
    finally:
        if child.poll() is None:
            child.kill()

    job = pipeline["defs"].resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(instance=pipeline["instance"], asset_selection=[dg.AssetKey("adapter_weights")],
                                    run_config=config, raise_on_error=False)
    assert result.success
    m = materialization(pipeline["instance"], "adapter_weights").metadata
    assert m["steps"].value == 120
    assert 5 <= m["resumed_from_step"].value < 120 and m["resumed_from_step"].value % 5 == 0


def test_release_gates_block_promotion_of_an_untrained_tiny_model(pipeline):
    """The tiny random model cannot beat anything: the release gates fail and nothing is promoted."""
    result, instance = pipeline["result"], pipeline["instance"]
    assert not result.success
    key = dg.AssetCheckKey(dg.AssetKey("eval_report"), "tuned_beats_base")
    assert instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key].status.value == "FAILED"
    assert materialization(instance, "promoted_model") is None
    assert not (pipeline["home"] / "registry").exists() or not registry.versions(pipeline["home"] / "registry", "northwind-triage")


def test_no_raw_pii_outside_the_raw_zone(pipeline):
    """Searches every file the pipeline and the instance wrote, and the event log, for seeded PII."""
    needles = [v.lower() for v in CANARY_PII.values()] + ["quillfeather"]
    offenders = []
    for base in (pipeline["home"], pipeline["dagster_home"]):
        for path in base.rglob("*"):
            if not path.is_file() or (pipeline["home"] / "raw") in path.parents:
                continue
            try:
                text = path.read_bytes().decode("utf-8", errors="ignore").lower()
            except OSError:
                continue
            if any(n in text for n in needles):
                offenders.append(str(path.relative_to(base)))
    events = pipeline["instance"].all_logs(pipeline["result"].run_id)
    leaking_events = [e.dagster_event_type for e in events if any(n in str(e).lower() for n in needles)]
    # the raw zone does hold it, so the search is not vacuous
    raw_hits = [p for p in (pipeline["home"] / "raw").rglob("*.jsonl") if "quillfeather" in p.read_text().lower()]
    assert raw_hits, "seeded PII never reached the raw zone: the test would be vacuous"
    assert offenders == [], "raw PII found outside the raw zone (paths listed, values withheld)"
    assert leaking_events == [], "raw PII found in the event log"


def _train_alone(pipeline):
    job = pipeline["defs"].resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=pipeline["instance"], raise_on_error=False, asset_selection=[dg.AssetKey("adapter_weights")],
        run_config={"resources": pipeline["config"]["resources"]},
    )
    assert not result.success, "training ran although a gate had not passed"
    [failure] = [e for e in result.all_events if e.is_step_failure]
    return failure.event_specific_data.error.message


def test_training_alone_refuses_when_a_gate_failed(pipeline):
    """No bypass (1): a gate fails on a new materialization; training picked alone, as someone
    might from the UI, is refused and the failed gate is named."""
    job = pipeline["defs"].resolve_implicit_global_asset_job_def()
    config = {"ops": {"redacted_dataset_labels_are_verified": {"config": {"min_coverage": 1.01}}}}
    data = job.execute_in_process(instance=pipeline["instance"], run_config=config, raise_on_error=False,
                                  partition_key=str(pipeline["source"]),
                                  asset_selection=[dg.AssetKey("raw_dataset"), dg.AssetKey("redacted_dataset")])
    assert not data.success  # the blocking check failed
    message = _train_alone(pipeline)
    assert "labels_are_verified (latest evaluation failed on 1 of 1 partitions" in message


def test_training_alone_refuses_unchecked_materializations(pipeline):
    """No bypass (2): data re-materialized without running its checks does not inherit the old
    passes: the gate must have evaluated the exact materialization training would read."""
    from ft_pipeline.defs.data.assets import raw_dataset, redacted_dataset
    from ft_pipeline.defs.data.engine import RecordEngineResource
    from ft_pipeline.defs.task import task

    result = dg.materialize(
        [task, raw_dataset, redacted_dataset], instance=pipeline["instance"], partition_key=str(pipeline["source"]),
        resources={"io_manager": dg.FilesystemIOManager(), "record_engine": RecordEngineResource()},
    )
    assert result.success
    message = _train_alone(pipeline)
    assert "annotators_agree (evaluated an older materialization" in message
