"""`ft-pipeline redact` as a user runs it: a real process, the JSON summary last, one-line errors."""
import json
import os
import subprocess
import sys
from pathlib import Path

from ft_pipeline.core.digest import keyed_digest
from ft_pipeline_tests.conftest import DEMO_RECORDS

BIN = Path(sys.executable).parent / "ft-pipeline"


def run(*args, home):
    env = {**os.environ, "FT_PIPELINE_HOME": str(home)}
    return subprocess.run([str(BIN), "redact", *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


def test_redact_prints_summary_last_and_keeps_order_with_keyed_ids(tmp_path, monkeypatch):
    lines = DEMO_RECORDS.read_text().splitlines()[:25] + ["{broken json"]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    quarantine = tmp_path / "raw" / "q.jsonl"
    out = run(source, tmp_path / "out.jsonl", "--quarantine", quarantine, home=tmp_path)
    assert out.returncode == 0, out.stderr[-500:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["in"] == 26 and summary["in"] == summary["out"] + summary["quarantined"]
    assert summary["quarantine_reasons"].get("broken_json") == 1
    written = [json.loads(l)["id"] for l in (tmp_path / "out.jsonl").read_text().splitlines()]
    quarantined_lines = {json.loads(l)["line"] for l in quarantine.read_text().splitlines()}
    monkeypatch.setenv("FT_PIPELINE_HOME", str(tmp_path))  # the process's home: its digest key
    expected = [keyed_digest(json.loads(l)["id"]) for i, l in enumerate(lines[:25], 1) if i not in quarantined_lines]
    assert written == expected
    assert summary["entities"].get("PERSON", 0) > 0


def test_missing_input_is_one_line_and_exit_2(tmp_path):
    out = run(tmp_path / "nope.jsonl", tmp_path / "out.jsonl", home=tmp_path)
    assert out.returncode == 2
    assert "nope.jsonl" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_directory_input_is_one_line_and_exit_2(tmp_path):
    out = run(tmp_path, tmp_path / "out.jsonl", home=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_the_task_file_brings_its_own_protected_documents(tmp_path):
    """The demo's proprietary memo is the demo task's to protect, not a product default: a pasted
    excerpt is quarantined with --task and passes without it."""
    task = Path(__file__).resolve().parents[2] / "configs" / "tasks" / "demo-triage.yaml"
    memo = (Path(__file__).resolve().parents[2] / "data" / "demo" / "protected" / "pricing_model_memo.txt").read_text()
    excerpt = " ".join(memo.split("\n\n")[2].split()[:45])  # a paragraph, without its confidentiality header
    record = {"id": "r1", "prompt": f"Can you explain this? {excerpt}",
              "completion": '{"intent": "coverage_question", "priority": "normal"}'}
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(record) + "\n")
    plain = run(source, tmp_path / "plain.jsonl", home=tmp_path)
    tasked = run(source, tmp_path / "tasked.jsonl", "--task", task, "--quarantine", tmp_path / "raw" / "q.jsonl",
                 home=tmp_path)
    assert plain.returncode == 0 and tasked.returncode == 0, tasked.stderr[-500:]
    assert json.loads(plain.stdout.strip().splitlines()[-1])["out"] == 1
    summary = json.loads(tasked.stdout.strip().splitlines()[-1])
    assert summary["out"] == 0 and summary["quarantined"] == 1


def test_a_bad_task_file_is_one_line_and_exit_2(tmp_path):
    task = tmp_path / "task.yaml"
    task.write_text("name: x\ntype: structured\nredaction: {protected_documents: /nowhere/*.txt}\n")
    out = run(DEMO_RECORDS, tmp_path / "out.jsonl", "--task", task, home=tmp_path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert str(task) in out.stderr and "redaction.protected_documents" in out.stderr


def test_no_field_of_a_record_leaves_redact_as_it_came(tmp_path):
    """A distinct canary in every field: with the demo's task (its attributes declared keep) and
    without a task, the output, stdout and stderr hold none; the raw input and quarantine may."""
    from ft_pipeline_tests.defs.test_field_canaries import CANARIES, RECORD

    task = Path(__file__).resolve().parents[2] / "configs" / "tasks" / "demo-triage.yaml"
    source = tmp_path / "raw" / "in.jsonl"
    source.parent.mkdir()
    source.write_text(json.dumps(RECORD) + "\n")
    for name, extra in (("tasked", ["--task", task]), ("plain", [])):
        out = run(source, tmp_path / f"{name}.jsonl", *extra, home=tmp_path)
        assert out.returncode == 0, out.stderr[-500:]
        written = (tmp_path / f"{name}.jsonl").read_text() + out.stdout + out.stderr
        assert json.loads(out.stdout.strip().splitlines()[-1])["out"] == 1
        assert [k for k, v in CANARIES.items() if v.lower() in written.lower()] == [], name
    assert json.loads((tmp_path / "tasked.jsonl").read_text())["attributes"]["region"] == "EU"  # declared keep
