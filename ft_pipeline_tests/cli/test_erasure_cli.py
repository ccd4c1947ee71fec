"""`ft-pipeline forget`, `erasures` and `audit` on erasures: what they print, one-line errors for a
user's mistakes that never repeat the value given, and a forget over every file format and link."""
from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ft_pipeline import cli
from ft_pipeline.core.data.ingest import ingest
from ft_pipeline.core.data.suppression import suppression_path
from ft_pipeline.core.digest import keyed_digest
from ft_pipeline_tests.conftest import read_jsonl
from ft_pipeline_tests.core.erasure.erasure_home import EMAIL, build_formats_home, build_home, chat


@pytest.fixture()
def homes(ft_home, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dh"))
    (tmp_path / "dh").mkdir()
    (tmp_path / "dh" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.delenv("FT_PIPELINE_S3_BUCKET", raising=False)
    return ft_home


@pytest.mark.parametrize("argv, says", [
    (["forget"], "at least one record id"),
    (["forget", "--value", " "], "--value must not be blank"),
    (["forget", "--value", "ab"], "under 4 characters"),
    (["forget", "--id", ""], "--id must not be blank"),
    (["rollback", "--name", "no-such-model"], "no promoted versions of model 'no-such-model'"),
    (["audit", "--name", "no-such-model"], "no current version"),
])
def test_mistakes_are_one_line_exit_2(homes, capsys, argv, says):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and "Traceback" not in err


def test_a_blank_value_is_one_line_from_the_process_too(homes):
    done = subprocess.run([sys.executable, "-m", "ft_pipeline.cli", "forget", "--value", " "],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "ft-pipeline forget: error: --value must not be blank\n"


def test_forget_without_a_dagster_home_is_one_line(ft_home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "missing"))
    assert cli.main(["forget", "--id", "r-a"]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_forget_then_erasures_and_audit(homes, capsys):
    build_home(homes)
    assert cli.main(["erasures"]) == 0
    assert "None." in capsys.readouterr().out
    assert cli.main(["forget", "--value", EMAIL, "--retire"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert "WARNING: the current model m/v1 was trained on erased records" in err
    assert EMAIL not in out + err and "removed_id_digests" not in summary
    assert summary["models_retired"] == ["m/v1"] and summary["sources_marked_stale"] == 0

    assert cli.main(["erasures"]) == 0
    md = capsys.readouterr().out
    assert f"| `{summary['request_id']}` |" in md and "| m/v1 | m/v1 | m/v1 | 0 |" in md
    assert "| data/jsonl_export/train.jsonl | 1 | 1 |" in md and EMAIL not in md
    assert cli.main(["erasures", "--format", "json"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    # Two records, each as a training manifest may hold it: from its pseudonym or its raw id (a hand-made export).
    assert entry["request_id"] == summary["request_id"] and len(entry["removed_id_digests"]) == 4

    assert cli.main(["audit", "--name", "m", "--version", "v1"]) == 0
    audit = capsys.readouterr().out
    assert f"| `{summary['request_id']}` |" in audit and "| retired " in audit
    assert cli.main(["rollback", "--name", "m", "--to", "v1"]) == 2
    assert "its weights were retired" in capsys.readouterr().err

    assert cli.main(["forget", "--value", EMAIL.upper()]) == 0  # the same request, spelled differently
    out, err = capsys.readouterr()
    assert json.loads(out)["status"] == "nothing to do" and "m/v1" in err


def _files(home) -> dict:
    """Every real file's bytes (links left out: they must stay links), the erasure's own records aside."""
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*"))
            if p.is_file() and not p.is_symlink() and not {"erasure", "audit"} & set(p.relative_to(home).parts)}


def test_forget_reaches_every_format_and_link_and_counts_only_what_changed(homes, tmp_path, capsys):
    made = build_formats_home(homes)
    before = _files(homes)
    assert cli.main(["forget", "--value", "Anna", "--value", "José Müller"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert "Traceback" not in err and "anna" not in (out + err).lower() and "müller" not in (out + err).lower()
    assert summary["files"] == {
        "data/archive/redacted.jsonl": {"files": 1, "records": 2},  # reached directly and through the folder link
        "raw/inbox": {"files": 2, "records": 2},  # the Latin-1 CSV and the Parquet
        "raw/kb": {"files": 1, "records": 0},
        "raw/raw_dataset/records.jsonl": {"files": 1, "records": 1},
        "raw/store": {"files": 1, "records": 1},  # reached directly and through the file link: once
        "reports/bias_report/report.md": {"files": 1, "records": 1},
    }
    assert summary["records_removed"] == 4 and summary["records_erased"] == 4 and summary["occurrences_redacted"] == 1
    after = _files(homes)
    assert len([name for name in before if before[name] != after.get(name)]) == summary["files_rewritten"] == 7

    # links kept, their targets rewritten
    assert made["link"].is_symlink() and made["folder_link"].is_symlink()
    assert "r-kept" not in made["link"].read_text() and "r-c" in made["link"].read_text()
    assert keyed_digest("r-anna") not in (made["folder_link"] / "redacted.jsonl").read_text()
    # Savannah stays everywhere
    assert "Savannah" in (homes / "raw/raw_dataset/run1/records.jsonl").read_text()
    assert (homes / "raw/kb/contacts.md").read_text() == "# Contacts\nAsk [erased], or Savannah.\n"
    assert keyed_digest("r-sav") in (homes / "reports/bias_report/run3/report.md").read_text()
    assert pq.read_table(homes / "raw/inbox/crm.parquet").column("id").to_pylist() == ["p-sav"]
    assert (homes / "raw/inbox/legacy.csv").read_bytes() == "id,name,note\r\nr-zoe,Zoë,merci\r\n".encode("latin-1")

    # the suppression list holds no value, and still keeps them out of a later ingest
    listed = suppression_path().read_text(encoding="utf-8").casefold()
    assert "anna" not in listed and "josé" not in listed and "müller" not in listed
    source = tmp_path / "new.jsonl"
    source.write_text("".join(json.dumps(chat(i, t)) + "\n" for i, t in
                              [("n-1", "Hi, ANNA here"), ("n-2", "Savannah again"), ("n-3", "josé müller writes")]))
    again = ingest(str(source), tmp_path / "out.jsonl", tmp_path / "q.jsonl")
    assert again["erased"] == 2 and [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == ["n-2"]


@pytest.mark.parametrize("link, is_dir", [("raw/inbox/outside.jsonl", False), ("data/mounted", True)])
def test_a_link_to_outside_the_home_refuses_the_request_before_any_change(homes, tmp_path, capsys, link, is_dir):
    build_formats_home(homes)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "records.jsonl").write_text(json.dumps(chat("o-1", "Anna outside")) + "\n")
    (homes / link).symlink_to(outside if is_dir else outside / "records.jsonl", target_is_directory=is_dir)
    before, outside_before = _files(homes), (outside / "records.jsonl").read_bytes()
    assert cli.main(["forget", "--value", "Anna"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{link}: a symbolic link to outside $FT_PIPELINE_HOME" in err
    assert "anna" not in err.lower() and "Traceback" not in err
    assert _files(homes) == before and (outside / "records.jsonl").read_bytes() == outside_before
    assert not suppression_path().exists() and (homes / link).is_symlink()


def _latin1_csv(home):
    (home / "raw/inbox").mkdir(parents=True)
    (home / "raw/inbox/legacy.csv").write_bytes("id,name\r\nr-1,José Müller\r\nr-2,Zoë\r\n".encode("latin-1"))
    return lambda: (home / "raw/inbox/legacy.csv").read_bytes() == "id,name\r\nr-2,Zoë\r\n".encode("latin-1")


def _linked_file(home):
    (home / "raw/store").mkdir(parents=True)
    (home / "raw/store/real.jsonl").write_text(json.dumps(chat("r-1", "josé müller here")) + "\n")
    (home / "raw/inbox").mkdir()
    (home / "raw/inbox/link.jsonl").symlink_to(home / "raw/store/real.jsonl")
    return lambda: (home / "raw/inbox/link.jsonl").is_symlink() and (home / "raw/store/real.jsonl").read_text() == ""


def _value_in_a_cell(home):
    (home / "raw/inbox").mkdir(parents=True)
    (home / "raw/inbox/crm.csv").write_text("id,contact\nr-1,José Müller\nr-2,Savannah\n")
    return lambda: (home / "raw/inbox/crm.csv").read_text() == "id,contact\nr-2,Savannah\n"


def _parquet(home):
    (home / "raw/inbox").mkdir(parents=True)
    pq.write_table(pa.table({"id": ["r-1", "r-2"], "text": ["José Müller", "Zoë"]}), home / "raw/inbox/crm.parquet")
    return lambda: pq.read_table(home / "raw/inbox/crm.parquet").column("id").to_pylist() == ["r-2"]


def _markdown(home):
    (home / "raw/kb").mkdir(parents=True)
    (home / "raw/kb/team.md").write_text("Ask José Müller's team.\n")
    return lambda: (home / "raw/kb/team.md").read_text() == "Ask [erased]'s team.\n"


@pytest.mark.parametrize("setup", [_latin1_csv, _linked_file, _value_in_a_cell, _parquet, _markdown])
def test_each_finding_alone(homes, capsys, setup):
    """One home per auditor's finding, so each fails on its own: a Latin-1 CSV (traceback), a
    linked file (replaced by an empty file, the target kept the record), a value in a CSV cell
    (not matched), Parquet and Markdown (never scanned)."""
    erased = setup(homes)
    assert cli.main(["forget", "--value", "José Müller"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert erased() and summary["files_rewritten"] == 1


def test_a_value_is_not_found_inside_a_longer_word(homes, capsys):
    (homes / "raw/inbox").mkdir(parents=True)
    rows = [chat("r-1", "Anna's ticket"), chat("r-2", "Savannah's ticket")]
    (homes / "raw/inbox/batch.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli.main(["forget", "--value", "Anna"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["records_removed"] == 1
    assert [r["id"] for r in read_jsonl(homes / "raw/inbox/batch.jsonl")] == ["r-2"]
    assert "anna" not in suppression_path().read_text().casefold()
