import json

import pytest

from ft_pipeline.core.data import export

ANSWER = '{"intent": "card_lost", "priority": "urgent"}'


def chat(i, split=None):
    return {"id": f"c{i}", "task": "chat", "split": split, "attributes": {"region": "EU"},
            "messages": [{"role": "user", "content": "I lost my card"}, {"role": "assistant", "content": ANSWER}]}


def dpo(i):
    return {"id": f"d{i}", "task": "dpo", "split": "train", "messages": [{"role": "user", "content": "lost card"}],
            "chosen": ANSWER, "rejected": "Sure! I can help."}


def test_export_layout_and_counts(tmp_path):
    records = [chat(0, "train"), chat(1, "test"), chat(2, "eval"), dpo(3)]
    counts = export.write_export(records, tmp_path)
    assert counts["train"] == 1 and counts["test"] == 1 and counts["eval"] == 1 and counts["preference_train"] == 1
    [row] = [json.loads(l) for l in (tmp_path / "preference_train.jsonl").read_text().splitlines()]
    assert row["chosen"] == [{"role": "assistant", "content": ANSWER}]
    # attributes go to their own file for test ids only; training rows never carry them
    assert "attributes" not in (tmp_path / "train.jsonl").read_text()
    assert json.loads((tmp_path / "attributes.jsonl").read_text())["id"] == "c1"
    assert not list(tmp_path.glob(".*tmp"))


def test_split_assignment_is_stable_and_proportional():
    config = export.ExportConfig(eval_fraction=0.1, test_fraction=0.2)
    splits = [export.assign_split({"id": f"x{i}"}, config) for i in range(5000)]
    assert splits == [export.assign_split({"id": f"x{i}"}, config) for i in range(5000)]
    assert 0.17 < splits.count("test") / 5000 < 0.23
    assert 0.08 < splits.count("eval") / 5000 < 0.12


def test_valid_export_passes_great_expectations(tmp_path):
    export.write_export([chat(i, "train") for i in range(5)] + [dpo(9)], tmp_path)
    results = export.validate_export(tmp_path)
    assert results["train.jsonl"]["success"] and results["train.jsonl"]["rows"] == 5
    assert results["preference_train.jsonl"]["success"]


@pytest.mark.parametrize(
    "row, expectation",
    [
        ({"id": "a", "messages": [{"role": "user", "content": "hi"}]}, "expect_column_values_to_be_between"),
        ({"id": "a", "messages": [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": ANSWER}]},
         "expect_column_values_to_be_in_set"),
        ({"id": "a", "messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": ANSWER}]},
         "expect_column_values_to_be_between"),
    ],
)
def test_invalid_rows_fail_with_line_numbers(tmp_path, row, expectation):
    good = {"id": "g", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ANSWER}]}
    (tmp_path / "train.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
    result = export.validate_export(tmp_path)["train.jsonl"]
    assert not result["success"]
    assert 2 in result["failures"][expectation]


def test_answers_that_do_not_fit_the_task_fail_with_their_kind(tmp_path):
    """The answer check is the task's: its reason (never the answer) is counted per file."""
    good = {"id": "g", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ANSWER}]}
    bad = {"id": "b", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "not json"}]}
    (tmp_path / "train.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    check = lambda text: None if text.startswith("{") else "not_json"
    result = export.validate_export(tmp_path, answer_check=check)["train.jsonl"]
    assert not result["success"]
    assert result["failures"]["expect_column_values_to_be_in_set"] == [2]
    assert result["answer_problems"] == {"not_json": 1}
    assert export.validate_export(tmp_path)["train.jsonl"]["success"]  # no task check: structure only


def test_duplicate_ids_fail(tmp_path):
    good = {"id": "g", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ANSWER}]}
    (tmp_path / "train.jsonl").write_text((json.dumps(good) + "\n") * 2)
    result = export.validate_export(tmp_path)["train.jsonl"]
    assert result["failures"]["expect_column_values_to_be_unique"] == [1, 2] or 2 in result["failures"]["expect_column_values_to_be_unique"]
