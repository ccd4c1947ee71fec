"""A task file is input too: its regexes cannot stall a run or crash one after training, and its
YAML cannot expand into a billion values. Each mistake is a TaskError naming file, line and field
when the task loads, before any work."""
from __future__ import annotations

import re
import time

import pytest
import yaml

from ft_pipeline.core import user_regex
from ft_pipeline.core.task import TaskConfig
from ft_pipeline.core.task_file import TaskError
from ft_pipeline_tests.conftest import REPO

DEMO = REPO / "configs" / "tasks" / "demo-triage.yaml"


def _task_with(tmp_path, **changes):
    data = yaml.safe_load(DEMO.read_text())
    data.pop("knowledge", None)
    data.pop("redaction", None)  # its paths are relative to the demo folder
    data.update(changes)
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("field_name, pattern, why", [
    ("canary_pattern", r"(CANARY)-(\d+)", "2 capture groups"),  # crashed the eval report after training
    ("answer_pattern", r"(a)(b)", "2 capture groups"),
    ("canary_pattern", r"(a+)+$", "catastrophic backtracking"),
    ("answer_pattern", r"(\w+\s?)+$", "catastrophic backtracking"),
    ("canary_pattern", "x" * 1001, "at most 1,000"),
    ("answer_pattern", r"([0-9]", "not a valid regular expression"),
])
def test_a_task_regex_is_checked_when_the_task_loads(tmp_path, field_name, pattern, why):
    path = _task_with(tmp_path, **{field_name: pattern})
    start = time.perf_counter()
    with pytest.raises(TaskError) as err:
        TaskConfig.from_yaml(path)
    assert err.value.field == field_name and why in str(err.value)
    assert re.match(rf"{re.escape(str(path))} line \d+: field {field_name}: ", str(err.value))
    assert time.perf_counter() - start < 10  # refused, not run for minutes


def test_a_redaction_pattern_that_backtracks_is_refused_on_load(tmp_path):
    path = _task_with(tmp_path, redaction={"patterns": {"ACCOUNT": [r"([A-Z0-9]+-?)+$"]}})
    with pytest.raises(TaskError) as err:
        TaskConfig.from_yaml(path)
    assert "patterns.ACCOUNT" in str(err.value) and "catastrophic backtracking" in str(err.value)


def test_one_group_canary_pattern_reads_the_group(tmp_path):
    task = TaskConfig.from_yaml(_task_with(tmp_path, canary_pattern=r"secret (CANARY-\d+)"))
    found = [m.group(m.re.groups and 1) for m in user_regex.finditer(task.canary_pattern, "a secret CANARY-12 b", "x")]
    assert found == ["CANARY-12"]


def test_a_user_pattern_that_runs_out_of_time_fails_closed(monkeypatch):
    """Presidio logs and skips a pattern that times out, which would leave its identifiers in the
    data; a user's pattern stops the redaction instead."""
    from ft_pipeline.core.data.redaction.recognizers import IGNORE_CASE, ContextPatternRecognizer, _patterns

    monkeypatch.setattr(user_regex, "RUN_TIMEOUT_S", 0.05)
    recognizer = ContextPatternRecognizer(
        supported_entity="ACCOUNT", name="ft_task_account", global_regex_flags=IGNORE_CASE,
        patterns=_patterns([("task_0", r"(a|aa)+$", 0.85)], IGNORE_CASE, "redaction.patterns.ACCOUNT"))
    with pytest.raises(user_regex.UserRegexTimeout, match=r"redaction\.patterns\.ACCOUNT: the regex ran over"):
        recognizer.analyze("a" * 50_000 + "!", ["ACCOUNT"])


BOMB = "".join(f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}" if i else '"lol"'] * 9) + "]\n"
               for i in range(9))


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text("name: bomb\n" + BOMB)
    assert len(BOMB) < 500  # 9^9 = 387 million values in under 500 bytes
    start = time.perf_counter()
    with pytest.raises(TaskError) as err:
        TaskConfig.from_yaml(path)
    assert time.perf_counter() - start < 5
    assert err.value.field == "(yaml)" and "expands to over 100,000 values" in str(err.value)
    assert err.value.line is not None


def test_a_preset_alias_bomb_is_refused_too(tmp_path):
    from ft_pipeline.core.training.config import TrainingConfig

    path = tmp_path / "preset.yaml"
    path.write_text(BOMB)
    with pytest.raises(ValueError, match=r"preset\.yaml line \d+: expands to over 100,000 values"):
        TrainingConfig.from_yaml(path)


def test_a_huge_task_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("name: x\ndescription: " + "y" * (2 << 20) + "\n")
    with pytest.raises(TaskError, match=r"field \(file\): is over 1024 KiB"):
        TaskConfig.from_yaml(path)


def test_ft_pipeline_redact_stops_in_one_line_when_a_task_pattern_runs_out_of_time(tmp_path, ft_home):
    """A pattern the load-time probes let through (its literal prefix is not in them) meets the
    record built for it: exit 2, one line naming the task field, nothing written."""
    import json
    import os
    import subprocess
    import sys

    task = _task_with(tmp_path, redaction={"patterns": {"ACCOUNT": [r"ACCT-(\d+|1\d)+$"]}})
    src = tmp_path / "in.jsonl"
    # Within one analysis window (10,000 characters), where this pattern still runs out of time
    # (`(\d+)+$` no longer does: the regex module takes 2.4 s at 9,000 digits, and a window cut
    # inside a longer run gives `$` an end to match).
    src.write_text(json.dumps({"id": "r1", "prompt": "ACCT-" + "1" * 5_000 + "!", "completion": "ok"}) + "\n")
    done = subprocess.run([sys.executable, "-m", "ft_pipeline.cli", "redact", str(src), str(tmp_path / "out.jsonl"),
                           "--task", str(task)], env={**os.environ, "FT_PIPELINE_HOME": str(ft_home)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-500:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "redaction.patterns.ACCOUNT: the regex ran over" in lines[0]
    assert not (tmp_path / "out.jsonl").exists()
