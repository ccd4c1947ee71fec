"""Every field of a record carries its own canary (id, annotator, a label's annotator, each
attribute, source, free text), so does the source file's name, and the task's redaction lists
carry theirs; the data assets run through a temporary Dagster instance, and none of it may be found
outside the raw zone: in any file under $FT_PIPELINE_HOME (raw/ aside) or the instance's folder
(its stored values, event log databases and compute logs included), nor in any event of the run
(metadata, logs, check results, partition keys), read through the instance."""
from __future__ import annotations

import json
import os

import dagster as dg
import pytest

from ft_pipeline_tests.defs.pipeline_helpers import add_source, demo_slice, demo_task

CANARIES = {
    "id": "olwen.brightwater@gmail.com",
    "annotator": "Thaddeus Wrenfield",
    "label_annotator": "ignatius.pembleworth@gmail.com",
    "attribute_email": "cordelia.marchbank@yahoo.com",
    "attribute_name": "Peregrine Ashcombe",
    "source": "rosalind.fairweather@outlook.com",
    "text_name": "Barnaby Quillon",
    "text_email": "barnaby.quillon@gmail.com",
    "file_name": "winifred.oakenshaw@outlook.com",  # the source file is named after a customer
}
# The task's own lists: settings, yet a deny list names what must not be seen.
LIST_CANARIES = {"deny_list": "Nightjarvale", "deny_terms": "Kestrelwind Dossier", "allow_list": "Ambergrove Tellings"}
RECORD = {
    "id": CANARIES["id"],
    "messages": [{"role": "user", "content": f"Hi, {CANARIES['text_name']} here ({CANARIES['text_email']}). "
                                             "I lost my card, please block it."},
                 {"role": "assistant", "content": '{"intent": "card_lost", "priority": "urgent"}'}],
    "label_verified": True, "annotator": CANARIES["annotator"], "verified_at": "2026-10-01T10:00:00Z",
    "labels": [{"annotator": CANARIES["label_annotator"], "label": "card_lost"}, {"annotator": "ann-01", "label": "card_lost"}],
    "attributes": {"region": "EU", "language": "en", "segment": "retail", "age_band": "30-44",
                   "customer_email": CANARIES["attribute_email"], "customer_name": CANARIES["attribute_name"]},
    "source": CANARIES["source"], "split": "test",
}
DATA_ASSETS = ["task", "raw_dataset", "redacted_dataset", "label_review_sample", "bias_report", "jsonl_export"]


@pytest.fixture(scope="module")
def data_run(tmp_path_factory):
    import yaml

    from ft_pipeline.definitions import defs

    root = tmp_path_factory.mktemp("canaries")
    home, dagster_home = root / "ft_home", root / "dagster_home"
    dagster_home.mkdir()
    task = root / "task.yaml"
    data = yaml.safe_load(demo_task(root / "base.yaml").read_text())
    lists = data["redaction"]
    lists.update(deny_list=[LIST_CANARIES["deny_list"]], deny_terms=[LIST_CANARIES["deny_terms"]],
                 allow_list=[*lists["allow_list"], LIST_CANARIES["allow_list"]])
    task.write_text(yaml.safe_dump(data, sort_keys=False))
    source = demo_slice(root / f"{CANARIES['file_name']}.jsonl", {"train": 16, "eval": 3, "test": 6}, extra=[RECORD])
    with pytest.MonkeyPatch.context() as patch, dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        patch.setenv("FT_PIPELINE_HOME", str(home))
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, raise_on_error=False, partition_key=add_source(instance, source),
            asset_selection=[dg.AssetKey(k) for k in DATA_ASSETS],
            run_config={"ops": {"task": {"config": {"path": str(task)}},
                                "redacted_dataset": {"config": {"n_process": 1}}}})
        yield {"result": result, "instance": instance, "home": home, "dagster_home": dagster_home}


def _found(text: str, needles: dict[str, str]) -> list[str]:
    text = text.lower()
    return sorted(name for name, value in needles.items() if value.lower() in text)


def test_the_data_assets_ran_and_the_raw_zone_holds_every_canary(data_run):
    materialized = {e.asset_key.path[-1] for e in data_run["result"].get_asset_materialization_events()}
    assert set(DATA_ASSETS) <= materialized
    raw = "".join(p.read_text(errors="ignore") for p in (data_run["home"] / "raw").rglob("*.json*"))
    assert _found(raw, CANARIES) == sorted(CANARIES), "the canaries never reached the raw zone: the test would be vacuous"


def test_no_canary_in_any_file_outside_the_raw_zone(data_run):
    offenders = []
    for base, skip in ((data_run["home"], data_run["home"] / "raw"), (data_run["dagster_home"], None)):
        for path in base.rglob("*"):
            if not path.is_file() or (skip is not None and skip in path.parents):
                continue
            if hits := _found(path.read_bytes().decode("utf-8", errors="ignore"), CANARIES):
                offenders.append(f"{path.relative_to(base)}: {hits}")  # canary names, never values
    assert offenders == []


def test_no_canary_and_no_redaction_list_entry_in_the_event_log(data_run):
    instance = data_run["instance"]
    events = [e for run in instance.get_runs() for e in instance.all_logs(run.run_id)]
    assert events
    # Metadata, check results and log lines; the run's own config names the task file only.
    leaking = sorted({f"{e.dagster_event_type}: {_found(str(e), {**CANARIES, **LIST_CANARIES})}"
                      for e in events if _found(str(e), {**CANARIES, **LIST_CANARIES})})
    assert leaking == []


def test_the_task_definition_and_redaction_config_show_the_lists_as_counts(data_run):
    task = data_run["instance"].get_latest_materialization_event(dg.AssetKey("task")).asset_materialization
    definition = task.metadata["definition"].value
    assert "deny_list:\n    count: 1\n    digest: " in definition and "fields:" in definition
    redacted = data_run["instance"].get_latest_materialization_event(dg.AssetKey("redacted_dataset")).asset_materialization
    config = redacted.metadata["redaction_config"].value
    assert config["deny_list"]["count"] == 1 and config["screening"]["deny_terms"]["count"] == 1
    assert len(config["allow_list"]["digest"]) == 64


def test_the_bias_audit_compares_the_declared_attributes_only(data_run):
    report = data_run["instance"].get_latest_materialization_event(dg.AssetKey("bias_report")).asset_materialization
    markdown = report.metadata["report"].value
    assert "region" in markdown and "age_band" in markdown
    assert "customer_email" not in markdown and "customer_name" not in markdown
    export = data_run["instance"].get_latest_materialization_event(dg.AssetKey("jsonl_export")).asset_materialization
    rows = [json.loads(line) for line in open(os.path.join(export.metadata["sidecars"].value, "attributes.jsonl"))]
    assert rows and all(set(r["attributes"]) <= {"region", "language", "segment", "age_band"} for r in rows)


def test_a_source_named_after_a_customer_is_registered_under_an_alias(data_run):
    from ft_pipeline.core.data.source_names import ALIAS_PREFIX
    from ft_pipeline.defs.data.partitions import RAW_FILES, source_location

    [key] = data_run["instance"].get_dynamic_partitions(RAW_FILES.name)
    assert key.startswith(ALIAS_PREFIX) and key.endswith(".jsonl")
    with pytest.MonkeyPatch.context() as patch:  # the alias resolves in its home's raw zone only
        patch.setenv("FT_PIPELINE_HOME", str(data_run["home"]))
        assert source_location(key).endswith(f"{CANARIES['file_name']}.jsonl")
