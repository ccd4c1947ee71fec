"""The export gates on a dialogue-summary task whose own instruction trips the NER: they judge the
records, not the task's text, and a residual name is reported by where it is, never by what."""
import json

from ft_pipeline.core.data.export import write_export
from ft_pipeline.defs.data import checks as data_checks
from ft_pipeline_tests.core.data.test_residual_pii import RESIDUAL, dialogue, summary_task

EXPORT_GATES = ("export_schema_is_valid", "export_has_no_residual_pii", "export_has_no_confidential_content",
                "export_has_no_train_test_overlap")


def exported(tmp_path, records):
    out = tmp_path / "export"
    written = write_export(lambda: iter(records), out, task=summary_task(), sidecar_dir=tmp_path / "sidecars")
    return {"path": str(out), "sidecars": str(tmp_path / "sidecars"), "splits": written["splits"]}


def test_a_task_prompt_that_trips_the_ner_passes_every_export_gate(tmp_path):
    export = exported(tmp_path, [dialogue(i) for i in range(12)])
    results = {name: getattr(data_checks, name)(export) for name in EXPORT_GATES}
    assert {name: r.passed for name, r in results.items()} == dict.fromkeys(EXPORT_GATES, True), \
        {name: r.description for name, r in results.items()}
    assert results["export_has_no_residual_pii"].metadata["task_texts_not_scanned"].value == 1


def test_a_residual_name_fails_the_gate_with_its_location_and_without_its_text(tmp_path):
    export = exported(tmp_path, [dialogue(i) for i in range(5)] + [dialogue(9, RESIDUAL)])
    result = data_checks.export_has_no_residual_pii(export)
    assert not result.passed
    start = RESIDUAL.index("Daniel Okafor")
    (row,) = [r.data for r in result.metadata["locations"].value.records]
    split_file = next(p.name for p in (tmp_path / "export").glob("*.jsonl") if '"d9"' in p.read_text())
    assert row == {"file": split_file, "id": "d9", "turn": "messages[1]", "start": start, "end": start + 13,
                   "entity": "PERSON", "recognizer": "SpacyRecognizer", "score": 0.85}
    assert result.metadata["findings"].value == 1 and result.metadata["records_with_pii"].value == 1
    assert f"{split_file}, id d9, messages[1] [{start}:{start + 13}]" in result.description
    shown = json.dumps({k: str(v) for k, v in result.metadata.items()}) + result.description
    assert "Daniel" not in shown and "Okafor" not in shown


def test_the_task_asset_refuses_a_real_name_in_the_system_prompt(tmp_path):
    """A run started from the UI or a sensor meets the same check as `ft-pipeline run`."""
    import dagster as dg

    from ft_pipeline.defs.task import task as task_asset
    from ft_pipeline_tests.defs.test_user_mistakes import failure_description

    task_file = tmp_path / "task.yaml"
    task_file.write_text("name: t\ntype: generation\nsystem_prompt: Sign every answer as Maria Gonzalez.\n")
    with dg.instance_for_test() as instance:
        result = dg.materialize([task_asset], instance=instance, raise_on_error=False,
                                run_config={"ops": {"task": {"config": {"path": str(task_file)}}}})
        assert failure_description(result).startswith(
            f"{task_file} line 3: field system_prompt: characters 21-35 ('Maria Gonzalez') read as PERSON")
        assert instance.get_latest_materialization_event(dg.AssetKey("task")) is None
