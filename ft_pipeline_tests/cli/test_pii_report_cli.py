"""`ft-pipeline pii-report EXPORT_DIR` as a user runs it, and `ft-pipeline run` refusing a task whose
system prompt names a real person before any work."""
import json
import os
import subprocess
import sys

from ft_pipeline import cli
from ft_pipeline.core.data.export import write_export
from ft_pipeline_tests.core.data.test_residual_pii import RESIDUAL, dialogue, summary_task


def pii_report(path, home):
    return subprocess.run([sys.executable, "-m", "ft_pipeline.cli", "pii-report", str(path)], capture_output=True,
                          text=True, env={**os.environ, "FT_PIPELINE_HOME": str(home)}, timeout=300)


def test_pii_report_shows_where_with_the_finding_masked(tmp_path):
    out = tmp_path / "export"
    write_export(lambda: iter([dialogue(i) for i in range(5)] + [dialogue(9, RESIDUAL)]), out, task=summary_task(), sidecar_dir=tmp_path / "sidecars")
    done = pii_report(out, tmp_path)
    assert done.returncode == 1, done.stderr[-500:]
    *lines, last = done.stdout.strip().splitlines()
    split_file = next(p.name for p in out.glob("*.jsonl") if '"d9"' in p.read_text())
    start = RESIDUAL.index("Daniel Okafor")
    assert lines == [f"{split_file} id=d9 messages[1] [{start}:{start + 13}] PERSON SpacyRecognizer 0.85: "
                     "Speaker A: my manager <<PERSON>> says the parcel is late. Speaker…"]
    summary = json.loads(last)
    assert (summary["findings"], summary["records"], summary["entities"]) == (1, 1, {"PERSON": 1})
    assert "Okafor" not in done.stdout + done.stderr


def test_pii_report_on_a_clean_export_exits_0(tmp_path):
    out = tmp_path / "export"
    write_export(lambda: iter([dialogue(i) for i in range(4)]), out, task=summary_task(), sidecar_dir=tmp_path / "sidecars")
    done = pii_report(out, tmp_path)
    assert done.returncode == 0, done.stderr[-500:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["findings"] == 0


def test_pii_report_on_a_missing_or_empty_folder_is_one_line_and_exit_2(tmp_path):
    for path, why in ((tmp_path / "nope", "no such export directory"), (tmp_path, "no export files")):
        done = pii_report(path, tmp_path)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr[-500:]
        assert why in done.stderr and str(path) in done.stderr


def test_run_refuses_a_real_name_in_the_system_prompt_before_any_work(tmp_path, ft_home, capsys):
    task = tmp_path / "task.yaml"
    task.write_text("name: t\ntype: generation\nsystem_prompt: You answer for Maria Gonzalez of the claims desk.\n")
    source = tmp_path / "s.jsonl"
    source.write_text(json.dumps({"id": "a", "prompt": "hi", "completion": "hello"}) + "\n")
    assert cli.main(["run", str(source), "--task", str(task)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"ft-pipeline run: error: {task} line 3: field system_prompt: characters 15-29 ('Maria Gonzalez') "
                   "read as PERSON by SpacyRecognizer (score 0.85): task text reaches every training conversation "
                   "unredacted; remove it, or add it to redaction.allow_list if it is not personal data")
    assert {p.name for p in ft_home.iterdir()} <= {"cache"}, "nothing ran (the gazetteer's cache aside)"
