"""Right to erasure that reaches every copy, models included, end to end: the demo graph on the
tiny model with its values on moto's S3 (a versioned bucket), v1 promoted, then `forget --id` of a
record v1 was trained on, the retrain the sensors request, and a forget SIGKILLed half-way."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

from ft_pipeline import cli
from ft_pipeline.core.digest import TRAINED, keyed_digest
from ft_pipeline.core.erasure import inventory
from ft_pipeline.core.jsonl import iter_jsonl
from ft_pipeline.core.erasure import marks as erasure_marks
from ft_pipeline.core.release import registry
from ft_pipeline.core.training import manifest
from ft_pipeline_tests.defs import mlflow_helpers as mh
from ft_pipeline_tests.core.training.helpers import child_env
from ft_pipeline_tests.defs.pipeline_helpers import (
    RELAXED_GATES, add_source, demo_slice, demo_task, pipeline_keys, run_config, write_preset,
)
from ft_pipeline_tests.e2e import erasure_helpers as h

from ft_pipeline_tests.defs.test_field_canaries import CANARIES as FIELD_CANARIES, RECORD as CANARY_RECORD

NAME = "northwind-triage"
DEMO_KNOWLEDGE = Path(__file__).resolve().parents[2] / "data" / "demo" / "knowledge"
CANARIES = {**FIELD_CANARIES, "knowledge_name": "ottoline.gravesend@outlook.com",
            "knowledge_text": "Ambrose Pettigrew-Lyle", "knowledge_email": "ambrose.pettigrew@gmail.com"}
CHECK = dg.AssetCheckKey(dg.AssetKey("promoted_model"), "current_model_not_trained_on_erased_data")
ENV = ("FT_PIPELINE_HOME", "DAGSTER_HOME", "FT_PIPELINE_S3_BUCKET")


@pytest.fixture(scope="module")
def promoted(tmp_path_factory, tiny_model_dir, moto_s3):
    """The demo slice through the whole graph, v1 promoted; a pristine copy kept for the kill test."""
    root = tmp_path_factory.mktemp("erasure")
    (root / "ft_home").mkdir()
    (root / "dh").mkdir()
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update({"FT_PIPELINE_HOME": str(root / "ft_home"), "DAGSTER_HOME": str(root / "dh"),
                       "FT_PIPELINE_S3_BUCKET": "ft-values"})
    s3 = h.s3_client(moto_s3)
    s3.create_bucket(Bucket="ft-values")
    s3.put_bucket_versioning(Bucket="ft-values", VersioningConfiguration={"Status": "Enabled"})
    # A record with a canary in every field, in a source file named after a customer, and a
    # knowledge document naming one (test_no_canary_leaves_the_raw_zone_in_a_whole_run).
    source = demo_slice(root / f"{CANARIES['file_name']}.jsonl", per_split={"train": 30, "eval": 4, "test": 6},
                        extra=[CANARY_RECORD])
    knowledge = root / "knowledge"
    shutil.copytree(DEMO_KNOWLEDGE, knowledge)
    (knowledge / f"{CANARIES['knowledge_name']}.md").write_text(
        f"Escalations go to {CANARIES['knowledge_text']} ({CANARIES['knowledge_email']}).\n")
    # The baseline's two shots put training ids in a stored value, which forget must reach too.
    task = demo_task(root / "task.yaml", few_shot=2, gates=RELAXED_GATES, knowledge=str(knowledge))
    config = run_config(tiny_model_dir, write_preset(root / "tiny.yaml", max_steps=30, save_steps=15),
                        task={"path": str(task)})
    defs = h.s3_defs()
    with dg.DagsterInstance.get() as instance:
        key = add_source(instance, source)  # an alias: the file is named after a customer
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, run_config=config, raise_on_error=False, partition_key=key,
            asset_selection=pipeline_keys(defs))
    assert result.success
    h.copy_state(root, root / "pristine", s3, "ft-values", "ft-values-pristine")
    yield {"root": root, "home": root / "ft_home", "dh": root / "dh", "defs": defs, "config": config, "s3": s3,
           "source": key}
    for key, value in saved.items():
        os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


def test_every_file_the_pipeline_writes_is_in_the_inventory(promoted):
    """Data, training and release assets as they left both homes: every file lands on an inventory
    place, and the places that claim no eraser is needed hold no id, pseudonym or text of a record."""
    home, dh = promoted["root"] / "pristine" / "ft_home", promoted["root"] / "pristine" / "dh"
    assert inventory.unlisted(home, dh) == []
    assert {"adapters", "registry lineage", "export", "export sidecars", "event log", "compute logs"} <= {
        name for name, n in inventory.scan(home, dh).items() if n}  # not vacuous: the run reached them
    raw = [r["id"] for p in (home / "raw" / "raw_dataset").glob("*/records.jsonl") for r in iter_jsonl(p)]
    pseudonyms = [r["id"] for p in (home / "data" / "jsonl_export").glob("*/*.jsonl") for r in iter_jsonl(p) if "id" in r]
    needles = sorted(set(raw) | set(pseudonyms) | {h.training_target(home)[2]})
    no_eraser = {f"{root}/{rel}" for root, base in ((inventory.FT, home), (inventory.DAGSTER, dh))
                 for rel in inventory.files(base) if inventory.place_of(root, rel, base).eraser.startswith("none:")}
    holding = {("FT_PIPELINE_HOME/" + f.removeprefix("ft_home/")) if f.startswith("ft_home/") else
               "DAGSTER_HOME/" + f.removeprefix("dh/") for f in h.files_holding(home.parent, needles)}
    assert len(no_eraser) > 10 and len(holding) > 5  # both sides of the check hold something
    assert sorted(holding & no_eraser) == []
    # a writer nobody told erasure about fails it
    stray = dh / "exports" / "rows.parquet"
    stray.parent.mkdir()
    try:
        stray.write_bytes(b"PAR1")
        (home / "notes.jsonl").write_text("{}\n")
        assert inventory.unlisted(home, dh) == ["FT_PIPELINE_HOME/notes.jsonl", "DAGSTER_HOME/exports/rows.parquet"]
    finally:
        stray.unlink()
        stray.parent.rmdir()
        (home / "notes.jsonl").unlink()


def test_no_canary_leaves_the_raw_zone_in_a_whole_run(promoted):
    """The issue's first done-when: a canary in every field of a record (id, annotator, a label's
    annotator, each attribute, source, free text), in the source file's name and in a knowledge
    document; the whole graph through promotion; none of them outside the raw zone, in any file
    under $FT_PIPELINE_HOME (registry, model card, reports, MLflow included) or $DAGSTER_HOME (SQLite
    event log, compute logs, stored values), in any object version in the bucket, or in any event."""
    state = promoted["root"] / "pristine"  # as the run left it, before any test here changed it
    raw = "".join(p.read_text(errors="ignore") for p in (state / "ft_home" / "raw").rglob("*.json*"))
    field_canaries = {k: v for k, v in CANARIES.items() if not k.startswith("knowledge")}
    assert all(v in raw for v in field_canaries.values()), "the canaries never reached the raw zone"
    needles = list(CANARIES.values())
    assert h.files_holding(state / "ft_home", needles, skip=state / "ft_home" / "raw") == []
    assert h.files_holding(state / "dh", needles) == []
    assert h.s3_holding(promoted["s3"], "ft-values-pristine", needles) == []
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(state / "dh"))) as instance:
        assert h.event_log_holding(instance, needles) == []
        keys = instance.get_dynamic_partitions("raw_files")
    assert len(keys) == 1 and keys[0].startswith("source-")  # the file is known by its alias


def test_forget_reaches_every_copy_marks_v1_and_a_retrain_promotes_a_clean_v2(promoted, capsys):
    home, s3, defs = promoted["home"], promoted["s3"], promoted["defs"]
    repo = defs.get_repository_def()
    root = home / "registry"
    # outside the raw zone the record's id is its keyed digest (`pseudonym`); the raw id never is
    target, pseudonym, text = h.training_target(home)
    assert registry.current_version(root, NAME) == "v1"
    assert keyed_digest(pseudonym, TRAINED) in erasure_marks.trained_on(root / NAME / "v1")
    assert h.files_holding(home, [target], skip=home / "raw") == []
    # the searches below are not vacuous: before the erasure, the record is in all these places
    holding = h.files_holding(home, [pseudonym], skip=home / "raw")
    assert {"redacted.jsonl", "train.jsonl"} <= {p.rsplit("/", 1)[-1] for p in holding}
    assert h.files_holding(home, [text], skip=home / "raw") and h.s3_holding(s3, "ft-values", [pseudonym])

    with dg.DagsterInstance.get() as instance:
        assert instance.event_log_storage.get_latest_asset_check_execution_by_key([CHECK])[CHECK].status.value == "SUCCEEDED"
        export = instance.get_latest_materialization_event(dg.AssetKey("jsonl_export")).asset_materialization
        assert h.event_log_holding(instance, [export.metadata["sha256"].value])  # the search sees metadata
        ready = _tick(instance, repo, "sources_ready_sensor")
        assert not ready.run_requests  # the first tick after the demo run: its adapter trained on these sources
        ready_cursor = ready.cursor

    assert cli.main(["forget", "--id", target]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert f"WARNING: the current model {NAME}/v1 was trained on erased records" in err
    assert summary["status"] == "done" and summary["models_marked"] == [f"{NAME}/v1"]
    assert summary["current_trained_on_erased_data"] == [f"{NAME}/v1"] and summary["sources_marked_stale"] == 1
    assert {"data/redacted_dataset/redacted.jsonl", "data/jsonl_export/train.jsonl",
            "data/jsonl_export_sidecars/splits.jsonl", "raw/raw_dataset/records.jsonl"} <= set(summary["files"])
    assert summary["stored_values"]["s3 value: fit_assessment"]["records"] >= 1
    assert target not in out + err and text not in out + err
    # the adapter it trained is deleted with the folder it lies in; the registry's copy is only marked
    [adapter] = summary["adapters_deleted"]
    assert adapter.startswith("models/adapter_weights/") and not (home / adapter).exists()
    assert summary["places"]["adapters"]["changed"] == 1 and summary["places"]["export"]["changed"] >= 1
    assert summary["places"]["export sidecars"]["changed"] >= 1  # splits.jsonl named the record

    # the record is nowhere outside the raw zone: no file, no stored value (any version), no event
    assert h.files_holding(home, [target, pseudonym, text], skip=home / "raw") == []
    assert h.s3_holding(s3, "ft-values", [target, pseudonym, text]) == []
    assert h.files_holding(promoted["dh"], [text]) == []
    with dg.DagsterInstance.get() as instance:
        assert h.event_log_holding(instance, [text]) == []
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key([CHECK])[CHECK]
        assert check.status.value == "FAILED"
        assert "current model trained on erased data" in check.event.dagster_event.event_specific_data.description

    # v1 is marked, its card says so, rollback refuses it by name, and its weights stay (no --retire)
    assert registry.erasure_marks(root / NAME / "v1")["requests"][0]["request_id"] == summary["request_id"]
    assert "## Erasure notice" in (root / NAME / "v1" / "MODEL_CARD.md").read_text()
    assert cli.main(["rollback", "--to", "v1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "back to v1" in err and summary["request_id"] in err
    assert cli.main(["audit", "--version", "v1"]) == 0
    assert f"| `{summary['request_id']}` |" in capsys.readouterr().out
    assert cli.main(["erasures", "--format", "json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["models_marked"] == [f"{NAME}/v1"] and keyed_digest(pseudonym, TRAINED) in listed["removed_id_digests"]

    # MLflow mirrors the marks: v1's model version and the run that trained it (weights kept: no --retire)
    mlflow = mh.client()
    v1 = mlflow.get_model_version_by_alias(NAME, "champion")
    assert (v1.tags["registry_version"], v1.tags["erased"], v1.tags["erasure_requests"]) == ("v1", "true", summary["request_id"])
    assert mlflow.get_run(v1.run_id).data.tags["erased"] == "true" and "weights_retired_at" not in v1.tags
    assert "adapter/adapter_model.safetensors" in {f.path for f in mlflow.list_artifacts(v1.run_id, "adapter")}

    # no bypass: promoting the adapter trained on the erased record again is refused
    with dg.DagsterInstance.get() as instance:
        again = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[dg.AssetKey("promoted_model")], raise_on_error=False,
            run_config={"ops": {k: v for k, v in promoted["config"]["ops"].items() if k.startswith("eval_report_")}})
    assert not again.success
    assert registry.versions(root, NAME) == ["v1"]

    # an identical request finds nothing left to do, and changes nothing
    before = h.normalised_state(promoted["root"], s3, "ft-values", summary["request_id"])
    assert cli.main(["forget", "--id", target]) == 0
    repeat = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert repeat["status"] == "nothing to do" and repeat["same_as"] == [summary["request_id"]]
    assert h.normalised_state(promoted["root"], s3, "ft-values", summary["request_id"]) == before

    # the sensors: the erasure re-ingests its source, then the retrain is requested
    with dg.DagsterInstance.get() as instance:
        [ingest] = _tick(instance, repo, "erasure_retrain_sensor").run_requests
        assert ingest.partition_key == promoted["source"] and ingest.tags["ft_pipeline/erasure"] == summary["request_id"]
        assert defs.resolve_job_def("ingest_source").execute_in_process(
            instance=instance, partition_key=ingest.partition_key, tags=ingest.tags).success
        [retrain] = _tick(instance, repo, "sources_ready_sensor", ready_cursor).run_requests
        ops = {k: v for k, v in promoted["config"]["ops"].items() if k != "task"}
        assert defs.resolve_job_def("retrain").execute_in_process(
            instance=instance, run_config={"ops": ops, "resources": promoted["config"]["resources"]},
            tags=retrain.tags).success
        assert instance.event_log_storage.get_latest_asset_check_execution_by_key([CHECK])[CHECK].status.value == "SUCCEEDED"
    assert registry.current_version(root, NAME) == "v2" and registry.erasure_marks(root / NAME / "v2") is None
    assert keyed_digest(pseudonym, TRAINED) not in erasure_marks.trained_on(root / NAME / "v2")
    assert h.files_holding(home, [target, pseudonym, text], skip=home / "raw") == []  # nor in anything the retrain wrote


def _tick(instance, repo, name: str, cursor: str | None = None):
    """One sensor evaluation as the daemon makes it (partition keys checked against the instance)."""
    from dagster._core.definitions.partitions.context import partition_loading_context

    sensor = repo.get_sensor_def(name)
    with partition_loading_context(dynamic_partitions_store=instance):
        return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, repository_def=repo, cursor=cursor))


KILL_CHILD = """
import os, signal, sys
from ft_pipeline import cli

kill_after, real, count = int(sys.argv[1]), os.replace, [0]

def replace(src, dst):  # SIGKILL right after the n-th atomic rename: a crash between two writes
    real(src, dst)
    count[0] += 1
    if count[0] == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)

os.replace = replace
code = cli.main(sys.argv[2:])
print(f"atomic writes: {count[0]}", file=sys.stderr)
sys.exit(code)
"""


def test_sigkilled_forget_run_again_ends_in_the_same_state(promoted, tmp_path, moto_s3):
    """The same request on copies of one state: once straight through; and SIGKILLed after its
    1st, middle and last-but-one write, then run again. Every file under the home (raw zone,
    registry and erasure log included), every object version on S3 and the events Dagster got
    must end the same, request id and times aside."""
    s3 = promoted["s3"]
    target, _, _ = h.training_target(promoted["root"] / "pristine" / "ft_home")

    def scenario(name: str, kill_after: int = 0) -> tuple[dict, dict, subprocess.CompletedProcess]:
        root, bucket = tmp_path / name, f"ft-values-{name}"
        h.copy_state(promoted["root"] / "pristine", root, s3, "ft-values-pristine", bucket)
        env = child_env(FT_PIPELINE_HOME=str(root / "ft_home"), DAGSTER_HOME=str(root / "dh"), FT_PIPELINE_S3_BUCKET=bucket)
        argv = ["forget", "--id", target, "--retire"]
        run = lambda n: subprocess.run([sys.executable, "-c", KILL_CHILD, str(n), *argv], env=env,
                                       capture_output=True, text=True, timeout=300)
        first = run(kill_after)
        if kill_after:
            assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
            journals = [json.loads(p.read_text()) for p in (root / "ft_home/raw/erasure/requests").glob("*.json")]
            assert [j["state"] for j in journals] == ["planned"], "killed before it started or after it finished"
            first = run(0)
        assert first.returncode == 0, first.stderr[-2000:]
        summary = json.loads(first.stdout.strip().splitlines()[-1])
        assert summary["status"] == ("resumed" if kill_after else "done")
        with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(root / "dh"))) as instance:
            events = h.erasure_events(instance)
        return h.normalised_state(root, s3, bucket, summary["request_id"]), {**summary, **events}, first

    assert "adapter/adapter_model.safetensors" in h.mlflow_weights(promoted["root"] / "pristine" / "ft_home")
    expected, straight, run = scenario("straight")
    writes = int(run.stderr.rsplit("atomic writes: ", 1)[1].split()[0])
    assert writes >= 10 and straight["models_retired"] == [f"{NAME}/v1"]
    # --retire reaches MLflow: v1 and its run tagged, the adapter's weights gone from its artifacts
    assert expected["mlflow"]["version 1"]["erased"] == "true" and "weights_retired_at" in expected["mlflow"]["version 1"]
    assert [r["erased"] for k, r in expected["mlflow"].items() if k.startswith("run ")] == ["true"]
    assert h.mlflow_weights(tmp_path / "straight" / "ft_home") == set()
    assert straight["stale_sources"] and straight["failed_checks"] == [CHECK.name]
    for kill_after in sorted({1, writes // 2, writes - 1}):
        state, summary, _ = scenario(f"kill-{kill_after}", kill_after)
        differ = sorted(k for part in ("files", "s3") for k in set(state[part]) | set(expected[part])
                        if state[part].get(k) != expected[part].get(k))
        assert differ == [], f"SIGKILL after write {kill_after} of {writes}: the rerun ended elsewhere"
        same = lambda s: {k: v for k, v in s.items() if k not in ("request_id", "at", "status")}
        assert same(summary) == same(straight)  # the same counts, versions and Dagster events, once each


VALUE = "Zoë Haverbrook-Quill"  # Latin-1 encodable, and a whole-token match only


def test_forget_by_id_and_value_reaches_latin1_csv_parquet_and_symlinked_copies(promoted, tmp_path, capsys, monkeypatch):
    """The issue's done-when: after a promoted run, copies of the record in a Latin-1 CSV, a
    Parquet file and behind a symlink in the home; `forget --id --value --retire`; then neither the
    id, its pseudonym, the value nor the record's text is anywhere outside the raw zone (files under
    both homes, SQLite bytes included, the bucket, the event log), the raw zone's copies are
    rewritten in their own formats (the link kept), and no adapter or checkpoint trained on it is left."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    s3 = promoted["s3"]
    root, bucket = tmp_path / "formats", "ft-values-formats"
    h.copy_state(promoted["root"] / "pristine", root, s3, "ft-values-pristine", bucket)
    home, dh = root / "ft_home", root / "dh"
    for key, value in {"FT_PIPELINE_HOME": str(home), "DAGSTER_HOME": str(dh), "FT_PIPELINE_S3_BUCKET": bucket}.items():
        monkeypatch.setenv(key, value)
    target, pseudonym, text = h.training_target(home)
    landing = home / "raw" / "landing"
    landing.mkdir(parents=True)
    (landing / "crm.csv").write_bytes(f"id,note\r\n{target},Kundin {VALUE} rief an\r\nother-1,Savannah rief an\r\n".encode("latin-1"))
    pq.write_table(pa.table({"id": [target, "other-2"], "note": [f"call {VALUE}", "Savannah called"]}), landing / "crm.parquet")
    (home / "raw" / "shared").mkdir()
    real = home / "raw" / "shared" / "export.jsonl"
    real.write_text(json.dumps({"id": "other-3", "note": f"{VALUE} again"}) + "\n" + json.dumps({"id": "other-4", "note": "fine"}) + "\n")
    (landing / "linked.jsonl").symlink_to(real)
    trained = [p.parent for p in home.rglob("training_ids.json") if "registry" not in p.parts]
    assert trained, "no adapter outside the registry: the adapter check below would be vacuous"

    assert cli.main(["forget", "--id", target, "--value", VALUE, "--retire"]) == 0
    out, err = capsys.readouterr()
    assert target not in out + err and VALUE not in out + err

    # the raw zone's copies: rewritten in their own format and encoding, the unrelated rows kept
    assert (landing / "crm.csv").read_bytes() == "id,note\r\nother-1,Savannah rief an\r\n".encode("latin-1")
    assert pq.read_table(landing / "crm.parquet").to_pydict() == {"id": ["other-2"], "note": ["Savannah called"]}
    assert (landing / "linked.jsonl").is_symlink() and [json.loads(l)["id"] for l in real.read_text().splitlines()] == ["other-4"]
    # the suppression list holds digests, not the value
    assert VALUE.casefold().encode() not in (home / "raw" / "erasure" / "suppressed.jsonl").read_bytes().lower()

    needles = [target, pseudonym, text, VALUE]
    assert h.files_holding(home, needles, skip=home / "raw") == []
    assert h.files_holding(dh, needles) == []  # event log and run databases, compute logs, stored values
    assert h.s3_holding(s3, bucket, needles) == []
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dh))) as instance:
        assert h.event_log_holding(instance, needles) == []
    digest = keyed_digest(pseudonym, TRAINED)
    # MLflow's copy is left out here: a copied store keeps the original's artifact location, so its
    # weights are deleted there (checked through MLflow's API in the SIGKILL test above).
    left = [p.parent for p in home.rglob("training_ids.json") if "mlflow" not in p.relative_to(home).parts
            and digest in p.read_text() and any(c.is_file() and c.suffix == ".safetensors" for c in p.parent.rglob("*"))]
    assert left == []  # no adapter, checkpoint or registry version trained on it keeps its weights
    assert not [c for a in trained for c in a.glob("checkpoint-*")]
