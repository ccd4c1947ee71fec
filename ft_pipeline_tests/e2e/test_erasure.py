"""Right to erasure through the CLI: raw zone rewritten, future ingests filtered, the source
partition marked stale by a new raw_dataset event, its re-redaction requested, the audit log free
of the value."""
import json
from pathlib import Path

import dagster as dg

from ft_pipeline import cli
from ft_pipeline.core.erasure import requests as erasure
from ft_pipeline.core.data.ingest import ingest
from ft_pipeline.core.digest import TRAINED, keyed_digest
from ft_pipeline_tests.conftest import DEMO_RECORDS
from ft_pipeline_tests.defs.pipeline_helpers import add_source


def test_forget_by_value_and_id(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("FT_PIPELINE_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dh"))
    (tmp_path / "dh").mkdir()
    lines = DEMO_RECORDS.read_text().splitlines()[:40]
    source = tmp_path / "source.jsonl"
    source.write_text("\n".join(lines) + "\n")
    untouched = tmp_path / "other.jsonl"  # a second source without the erased records
    untouched.write_text("\n".join(lines[-5:]) + "\n")
    from ft_pipeline.defs.data.assets import raw_dataset
    from ft_pipeline.defs.resources import io_manager
    from ft_pipeline.defs.task import task

    with dg.DagsterInstance.get() as instance:
        for path in (source, untouched):
            assert dg.materialize([task, raw_dataset], instance=instance, partition_key=add_source(instance, path),
                                  resources={"io_manager": io_manager()}).success
        event = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("raw_dataset"), asset_partitions=[str(source)]), limit=1).records[0]
        copy = Path(event.asset_materialization.metadata["path"].value)
        first = {"lines": len(lines)}

    # someone asks to be forgotten by their email, someone else by record id
    target = next(json.loads(l) for l in lines if "@" in l and '"split": "train"' in l)
    email = next(w.strip(".,;()") for m in target["messages"] for w in m["content"].split() if "@" in w)
    other = json.loads(lines[0])["id"]
    assert cli.main(["forget", "--value", email, "--id", other]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["records_removed"] >= 2 and summary["sources_marked_stale"] == 1

    remaining = copy.read_text()
    assert email not in remaining and f'"id":"{other}"' not in remaining.replace(" ", "")
    # the audit log holds digests and counts, never the value
    log = (home / "audit" / "erasures.jsonl").read_text()
    assert email not in log and keyed_digest(other, TRAINED) in log and other not in log
    assert keyed_digest(other) not in log  # nor the pseudonym the record carried in the data

    # a retrain from the original source cannot bring them back
    again = ingest(str(source), tmp_path / "again.jsonl", tmp_path / "again-q.jsonl")
    assert again["erased"] >= 2
    assert again["records"] + again["quarantined"] + again["erased"] == first["lines"]
    assert email not in (tmp_path / "again.jsonl").read_text()

    # the source's partition is stale through lineage: a new raw_dataset event, tagged for the
    # sensor, which requests that source's re-ingest and re-redaction (and only that source's)
    from ft_pipeline.definitions import defs
    from ft_pipeline.defs.automation.sensors import erasure_retrain_sensor

    repo = defs.get_repository_def()
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("raw_dataset"))
        assert event.asset_materialization.tags["ft_pipeline/erasure"] == summary["request_id"]
        assert event.asset_materialization.partition == str(source)
        from dagster._core.definitions.partitions.context import partition_loading_context

        # evaluate_tick validates partition keys against the instance, as the daemon does around it
        with partition_loading_context(dynamic_partitions_store=instance):
            context = dg.build_sensor_context(instance=instance, repository_def=repo)
            requests = erasure_retrain_sensor.evaluate_tick(context).run_requests
            assert [(r.run_key, r.partition_key) for r in requests] == [
                (f"erasure-{summary['request_id']}-{source}", str(source))]
            # evaluated again from its cursor, the same erasure requests nothing more
            again_tick = erasure_retrain_sensor.evaluate_tick(
                dg.build_sensor_context(instance=instance, repository_def=repo, cursor=context.cursor))
        assert not again_tick.run_requests


def test_forget_without_criteria_is_a_user_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FT_PIPELINE_HOME", str(tmp_path))
    assert cli.main(["forget"]) == 2
    assert "Traceback" not in capsys.readouterr().err
