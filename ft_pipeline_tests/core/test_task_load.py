"""The task is parsed once, typed: loading a task file builds each section's config once (counted
here), the stages read those typed configs, the `task` asset's value (path + digest) is read back
through one cached loader, and a mistake in any section names the file, the line and the field."""
from __future__ import annotations

import pickle
from collections import Counter

import pytest

from ft_pipeline.core.data.canaries import MemorizationConfig
from ft_pipeline.core.data.redaction.config import RedactionConfig
from ft_pipeline.core.erasure.stored_values import load_data
from ft_pipeline.core.fit.fit_config import FitConfig
from ft_pipeline.core.evaluation.gate_config import GateConfig
from ft_pipeline.core.release.rollout_config import DriftConfig, RolloutConfig
from ft_pipeline.core.task import TaskConfig, TaskError
from ft_pipeline.core.task_loader import load_task, read_task
from ft_pipeline.core.training.privacy import PrivacyConfig

SECTIONS = (FitConfig, GateConfig, MemorizationConfig, RolloutConfig, DriftConfig, RedactionConfig, PrivacyConfig)
# Every section set, one knob each, so that each config has something to check.
TASK = """\
name: every-section
type: classification
fit:
  shots: 2
gates:
  alpha: 0.1
  memorization:
    canaries: 4
rollout:
  share: 0.2
drift:
  min_requests: 50
redaction:
  patterns:
    ACCT: ['ACCT-\\d{6}']
fields:
  source: keep
privacy:
  dp: true
"""


@pytest.fixture
def validations(monkeypatch) -> Counter:
    """How often each section's config ran its validation (its __post_init__)."""
    counts: Counter = Counter()
    for cls in SECTIONS:
        def counted(self, *args, _cls=cls, _original=cls.__post_init__):
            counts[_cls.__name__] += 1
            return _original(self, *args)
        monkeypatch.setattr(cls, "__post_init__", counted)
    return counts


def test_loading_a_task_file_validates_each_section_once(tmp_path, validations):
    path = tmp_path / "task.yaml"
    path.write_text(TASK)
    task, digest = read_task(path)
    assert dict(validations) == {cls.__name__: 1 for cls in SECTIONS}
    # the stages read the typed sections the load built
    assert (task.sections.fit.shots, task.sections.gates.alpha, task.sections.gates.memorization_config.canaries,
            task.sections.rollout.share, task.sections.drift.min_requests) == (2, 0.1, 4, 0.2, 50)
    assert task.sections.redaction.patterns["ACCT"] == [r"ACCT-\d{6}"] and task.sections.redaction.fields == {"source": "keep"}
    assert task.sections.privacy.dp is True
    # every later stage asks the loader with the asset's value: the same object, nothing validated again
    value = {"path": str(path), "sha256": digest, "name": task.name, "type": task.type, "metric": task.metric}
    assert load_task(value) is task and load_task(dict(value)) is task
    assert dict(validations) == {cls.__name__: 1 for cls in SECTIONS}


def test_the_task_assets_value_is_plain_data_the_erasure_scan_can_read(tmp_path):
    """The stored value is read by an unpickler that refuses every class: path and digest only."""
    path = tmp_path / "task.yaml"
    path.write_text(TASK)
    task, digest = read_task(path)
    value = {"path": str(path), "sha256": digest, "name": task.name, "type": task.type, "metric": task.metric}
    assert load_data(pickle.dumps(value)) == value
    with pytest.raises(pickle.UnpicklingError):
        load_data(pickle.dumps(task))  # why the value is not the TaskConfig itself


def test_a_task_file_changed_after_the_task_asset_read_it_is_refused(tmp_path):
    path = tmp_path / "task.yaml"
    path.write_text(TASK)
    task, digest = read_task(path)
    path.write_text(TASK.replace("share: 0.2", "share: 0.9"))
    # the definition the asset recorded is the one every stage gets, not the file as it is now
    assert load_task({"path": str(path), "sha256": digest}).sections.rollout.share == 0.2
    with pytest.raises(TaskError, match=r"field \(file\): changed since the task asset read it"):
        load_task({"path": str(path), "sha256": "0" * 64})


MISTAKES = [
    ("  shots: 2", "  shots: -1", "fit.shots", 4),
    ("  alpha: 0.1", "  alpha: 0.9", "gates.alpha", 6),
    ("    canaries: 4", "    canaries: -4", "gates.memorization.canaries", 7),
    ("  share: 0.2", "  colour: red", "rollout.colour", 10),
    ("  min_requests: 50", "  min_requests: 0", "drift.min_requests", 12),
    ("    ACCT: ['ACCT-\\d{6}']", "    ACCT: ['ACCT-(']", "redaction.patterns.ACCT", 14),
    ("  source: keep", "  source: publish", "fields.source", 17),
    ("  dp: true", "  dp: maybe", "privacy.dp", 19),
]


@pytest.mark.parametrize("old, new, field, line", MISTAKES, ids=[field for _, _, field, _ in MISTAKES])
def test_a_mistake_in_a_section_names_the_file_the_line_and_the_field(tmp_path, old, new, field, line):
    path = tmp_path / "task.yaml"
    assert old in TASK
    path.write_text(TASK.replace(old, new))
    with pytest.raises(TaskError) as err:
        TaskConfig.from_yaml(path)
    assert (err.value.where, err.value.line, err.value.field) == (str(path), line, field)
    assert str(err.value).startswith(f"{path} line {line}: field {field}: ")


def test_line_numbers_belong_to_each_load(tmp_path):
    """Two files read one after the other: each task's errors name its own file's lines."""
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("name: a\ntype: classification\ncolumns: {text: prompt}\n")
    second.write_text("# a comment\n\n\nname: b\ntype: classification\ncolumns: {text: prompt}\n")
    a, b = TaskConfig.from_yaml(first), TaskConfig.from_yaml(second)
    assert (a.line("columns"), b.line("columns")) == (3, 6)
    built = TaskConfig(name="c", type="classification")  # not read from a file: no line to name
    assert built.line("columns") is None
