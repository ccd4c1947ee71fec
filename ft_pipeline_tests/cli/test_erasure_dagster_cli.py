"""`ft-pipeline forget` against a real Dagster instance: Dagster's own records of an erased record
(materialization metadata, a check result, a log message, a compute log) are rewritten, and their
bytes are gone from the instance's folder while the run and its events still load; a crafted
pickle planted in the instance's storage is refused, never run."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ft_pipeline import cli
from ft_pipeline.core.digest import keyed_digest
from ft_pipeline.core.erasure.mentions import ERASED
from ft_pipeline_tests.core.erasure.erasure_home import EMAIL, build_home

COLLEAGUE = "r-b"  # a record the request does not erase: its mentions must survive


@pytest.fixture()
def dagster_home(ft_home, tmp_path, monkeypatch):
    home = tmp_path / "dh"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("FT_PIPELINE_S3_BUCKET", raising=False)
    build_home(ft_home)  # r-a holds EMAIL: the request below erases it
    return home


# One run whose materialization metadata, check result, log message and stdout mention the erased
# record (its keyed digest, and the value in another case) and a record that is kept. It runs in
# its own process: there stdout is a real file descriptor, which Dagster's compute logs capture.
CANARY_RUN = """
import sys
import dagster as dg

canary, kept, email = sys.argv[1:]


@dg.asset
def held_out(context):
    context.log.info(f"held out {canary} for {email.upper()}")
    print(f"stdout: {canary} {email}", flush=True)
    return dg.MaterializeResult(metadata={
        "ids": dg.MetadataValue.json({"held_out": [canary, kept], canary: 1}),
        "note": f"asked by {email}", "kept": kept})


@dg.asset_check(asset=held_out)
def held_out_is_small():
    return dg.AssetCheckResult(passed=True, metadata={"first": canary}, description=f"saw {email}")


with dg.DagsterInstance.get() as instance:
    result = dg.materialize([held_out, held_out_is_small], instance=instance)
    assert result.success
    print(result.run_id)
"""


def _canary_run(canary: str, kept: str) -> str:
    done = subprocess.run([sys.executable, "-c", CANARY_RUN, canary, kept, EMAIL], capture_output=True, text=True,
                          timeout=300, env=os.environ)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def _holding(folder: Path, needles: list[str]) -> list[str]:
    """Files under `folder` whose bytes hold a needle (any case)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
                  and any(n.lower().encode() in p.read_bytes().lower() for n in needles))


def test_forget_rewrites_dagster_records_and_their_bytes_are_gone(dagster_home, capsys):
    canary, kept = keyed_digest("r-a"), keyed_digest(COLLEAGUE)
    run_id = _canary_run(canary, kept)
    assert _holding(dagster_home, [canary]) and _holding(dagster_home, [EMAIL]), "vacuous: nothing to erase"

    assert cli.main(["forget", "--value", EMAIL]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["dagster_runs_touched"] == [run_id]
    assert summary["dagster_events_rewritten"] >= 3  # the materialization, the check result, the log message
    assert summary["compute_logs_rewritten"] >= 1
    assert canary not in out + err and EMAIL not in (out + err).lower()
    assert cli.main(["erasures"]) == 0  # the auditor's view names the runs touched
    assert f"in 1 run(s): `{run_id}`" in capsys.readouterr().out

    assert _holding(dagster_home, [canary, EMAIL]) == []  # SQLite files, their logs and compute logs alike
    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
        logs = instance.all_logs(run_id)
        assert any(e.user_message == f"held out {ERASED} for {ERASED}" for e in logs)
        metadata = instance.get_latest_materialization_event(dg.AssetKey("held_out")).asset_materialization.metadata
        assert metadata["ids"].value == {"held_out": [ERASED, kept], ERASED: 1}
        assert metadata["note"].value == f"asked by {ERASED}" and metadata["kept"].value == kept
        key = dg.AssetCheckKey(dg.AssetKey("held_out"), "held_out_is_small")
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
        assert check.event.dagster_event.event_specific_data.metadata["first"].value == ERASED

    # A repeat finds nothing left anywhere and says so.
    assert cli.main(["forget", "--value", EMAIL]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["status"] == "nothing to do"


def test_a_planted_pickle_is_refused_by_forget_and_never_run(dagster_home, tmp_path):
    """What a crafted file in the instance's storage meets: planning reads it as plain data, refuses
    it in one line naming it, exit 2, nothing changed, and the code it carries never ran."""
    marker = tmp_path / "ran"

    class Runs:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    planted = dagster_home / "storage" / "fit_assessment" / "planted"
    planted.parent.mkdir(parents=True)
    planted.write_bytes(pickle.dumps(Runs()))
    done = subprocess.run([sys.executable, "-m", "ft_pipeline.cli", "forget", "--value", EMAIL],
                          capture_output=True, text=True, timeout=300, env=os.environ)
    assert not marker.exists()
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("ft-pipeline forget: error: storage/fit_assessment/planted: stored value refused, it names "
                           "posix.system (loading it would run code; the pipeline stores plain data only): "
                           "remove or replace the file\n")
    planted.unlink()
    assert cli.main(["forget", "--value", EMAIL]) == 0  # nothing was half done: the request runs whole now
