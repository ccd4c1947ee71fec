"""`ft-pipeline forget`, `erasures` and `audit` on erasures: what they print, and one-line errors
for a user's mistakes that never repeat the value given."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ft_pipeline import cli
from ft_pipeline_tests.core.erasure.erasure_home import EMAIL, build_home


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
