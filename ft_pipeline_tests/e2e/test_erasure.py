"""Right to erasure through the CLI: raw zone rewritten, future ingests filtered, downstream
marked stale by a new raw_dataset event, a retrain requested, the audit log free of the value."""
import json

import dagster as dg

from ft_pipeline import cli
from ft_pipeline.core import erasure
from ft_pipeline.core.ingest import ingest
from ft_pipeline_tests.conftest import DEMO_RECORDS


def test_forget_by_value_and_id(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("FT_PIPELINE_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dh"))
    (tmp_path / "dh").mkdir()
    lines = DEMO_RECORDS.read_text().splitlines()[:40]
    source = tmp_path / "source.jsonl"
    source.write_text("\n".join(lines) + "\n")
    raw = home / "raw" / "raw_dataset" / "run-1"
    first = ingest(str(source), raw / "records.jsonl", raw / "quarantine.jsonl")

    # someone asks to be forgotten by their email, someone else by record id
    target = next(json.loads(l) for l in lines if "@" in l and '"split": "train"' in l)
    email = next(w.strip(".,;()") for m in target["messages"] for w in m["content"].split() if "@" in w)
    other = json.loads(lines[0])["id"]
    assert cli.main(["forget", "--value", email, "--id", other]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["records_removed"] >= 2

    remaining = (raw / "records.jsonl").read_text()
    assert email not in remaining and f'"id":"{other}"' not in remaining.replace(" ", "")
    # the audit log holds digests and counts, never the value
    log = (home / "audit" / "erasures.jsonl").read_text()
    assert email not in log and erasure.digest(other) in log

    # a retrain from the original source cannot bring them back
    again = ingest(str(source), tmp_path / "again.jsonl", tmp_path / "again-q.jsonl")
    assert again["erased"] >= 2
    assert again["records"] + again["quarantined"] + again["erased"] == first["lines"]
    assert email not in (tmp_path / "again.jsonl").read_text()

    # downstream is stale through lineage: a new raw_dataset event, tagged for the sensor
    from ft_pipeline.defs.automation.sensors import erasure_retrain_sensor

    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("raw_dataset"))
        assert event.asset_materialization.tags["ft_pipeline/erasure"] == summary["request_id"]
        requests = erasure_retrain_sensor.evaluate_tick(dg.build_sensor_context(instance=instance)).run_requests
        assert [r.run_key for r in requests] == [f"erasure-{summary['request_id']}"]


def test_forget_without_criteria_is_a_user_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FT_PIPELINE_HOME", str(tmp_path))
    assert cli.main(["forget"]) == 2
    assert "Traceback" not in capsys.readouterr().err
