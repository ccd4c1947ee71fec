import json

import pytest

from ft_pipeline.core.training.data import DataError, load_datasets
from ft_pipeline_tests.core.training.helpers import write_export, write_jsonl

SECRET = "Jane Roe 555-0100"


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"id": "x", "messages": []}), "'messages' must be a non-empty list"),
        (json.dumps({"id": "x", "messages": [{"role": "user", "content": SECRET}]}), "must end with an assistant"),
        (json.dumps({"id": "x", "messages": [{"role": "bot", "content": SECRET}]}), r"messages\[0\]"),
    ],
)
def test_bad_line_names_file_and_line_not_text(tmp_path, line, why):
    root = write_export(tmp_path / "export", repeats=1)
    with open(root / "train.jsonl", "a") as fh:
        fh.write(line + "\n")
    with pytest.raises(DataError, match=why) as info:
        load_datasets("sft", root)
    message = str(info.value)
    assert "train.jsonl:5:" in message
    assert SECRET not in message, "the error must not echo record text"


def test_formats_per_method(tmp_path):
    root = write_export(tmp_path / "export", repeats=1)
    sft, sft_eval = load_datasets("sft", root)
    grpo, _ = load_datasets("grpo", root)
    dpo, _ = load_datasets("dpo", root)
    assert sft.column_names == ["messages"] and len(sft) == 4 and len(sft_eval) == 4
    assert grpo[0]["prompt"][-1]["role"] == "user" and json.loads(grpo[0]["reference"])["intent"]
    assert set(dpo.column_names) == {"prompt", "chosen", "rejected"}


def test_missing_or_empty_preferences_are_explicit(tmp_path):
    root = write_export(tmp_path / "export", repeats=1)
    write_jsonl(root / "preference_train.jsonl", [])
    with pytest.raises(FileNotFoundError, match="preference_train.jsonl"):
        load_datasets("dpo", root)
    (root / "preference_eval.jsonl").unlink()
    (root / "preference_train.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="missing or empty"):
        load_datasets("dpo", root)


def test_changed_file_is_not_served_from_cache(tmp_path):
    root = write_export(tmp_path / "export", repeats=1)
    assert len(load_datasets("sft", root)[0]) == 4
    write_export(root, repeats=2)
    assert len(load_datasets("sft", root)[0]) == 8
