"""`ft-pipeline sources`: register source files as raw_files partitions, list them, refuse typos."""
import json

import dagster as dg

from ft_pipeline import cli


def test_sources_add_and_list(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    landed = tmp_path / "2026-11.jsonl"
    landed.write_text('{"id": "a"}\n')

    assert cli.main(["sources", "add", str(landed), "data/demo/records.jsonl", "s3://bucket/day-1.jsonl"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["added"] == [str(landed), "data/demo/records.jsonl", "s3://bucket/day-1.jsonl"]
    # adding again registers nothing twice
    assert cli.main(["sources", "add", str(landed)]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == []
    assert cli.main(["sources", "list"]) == 0
    assert len(json.loads(capsys.readouterr().out)["sources"]) == 3
    with dg.DagsterInstance.get() as instance:
        assert str(landed) in instance.get_dynamic_partitions("raw_files")


def test_sources_add_of_a_missing_file_is_a_user_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert cli.main(["sources", "add", str(tmp_path / "typo.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "typo.jsonl: no such file" in err and "Traceback" not in err
