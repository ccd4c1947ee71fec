import json

import pytest

from ft_pipeline.core.data import export

ANSWER = '{"intent": "card_lost", "priority": "urgent"}'


WORDS = ("amber basil cedar dune ember fjord grove heron iris jade kelp lotus maple nectar onyx pearl quartz "
         "raven sage tulip umber violet willow yarrow zinnia").split()


def text(i: int) -> str:
    """A message of its own for each record: no two share a 3-word shingle by accident."""
    return " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] + str(i) for k in range(24))


def chat(i, split=None, content=None, **extra):
    return {"id": f"c{i}", "task": "chat", "split": split, "attributes": {"region": "EU"}, **extra,
            "messages": [{"role": "user", "content": content or text(i)}, {"role": "assistant", "content": ANSWER}]}


def dpo(i):
    return {"id": f"d{i}", "task": "dpo", "split": "train", "messages": [{"role": "user", "content": "lost card"}],
            "chosen": ANSWER, "rejected": "Sure! I can help."}


def write(records, tmp_path, **kw):
    """The export under tmp_path/export, its sidecars under tmp_path/sidecars."""
    return export.write_export(lambda: records, tmp_path / "export", sidecar_dir=tmp_path / "sidecars", **kw)


def test_export_layout_and_counts(tmp_path):
    records = [chat(0, "train"), chat(1, "test"), chat(2, "eval"), dpo(3)]
    counts = write(records, tmp_path)["files"]
    assert counts["train"] == 1 and counts["test"] == 1 and counts["eval"] == 1 and counts["preference_train"] == 1
    [row] = [json.loads(l) for l in (tmp_path / "export" / "preference_train.jsonl").read_text().splitlines()]
    assert row["chosen"] == [{"role": "assistant", "content": ANSWER}]
    # attributes go to their own file for test ids only; training rows never carry them
    assert "attributes" not in (tmp_path / "export" / "train.jsonl").read_text()
    assert json.loads((tmp_path / "sidecars" / "attributes.jsonl").read_text())["id"] == "c1"
    assert not list((tmp_path / "export").glob(".*tmp"))


def test_a_folder_loader_reads_conversations_only(tmp_path):
    """HF datasets reading the export's *.jsonl as one table (a trainer's glob): each row it gets
    is a conversation, never a sidecar's ids and facts (in the older layout attributes.jsonl and
    splits.jsonl failed the cast to the chat rows' columns), and planted canaries come as the same
    {id, messages} rows, as often as they are planted, never a twin nor a secret's bookkeeping."""
    from datasets import load_dataset

    from ft_pipeline.core.task import TaskConfig

    base = text(1)
    records = [chat(i, None) for i in range(2, 30)] + [chat(1, "train", base), chat(0, "test", base)]
    task = TaskConfig(name="t", type="structured", system_prompt="Triage it.",
                      gates={"memorization": {"canaries": 2, "repetitions": [1, 3]}})
    counts = write(records, tmp_path, task=task)["files"]
    assert counts["attributes"] and rows(tmp_path / "sidecars" / "contamination.jsonl")
    assert counts["canaries"] == 2 * 1 + 2 * 3
    loaded = load_dataset("json", data_files=str(tmp_path / "export" / "*.jsonl"), split="train",
                          cache_dir=str(tmp_path / "cache"))
    assert loaded.num_rows == sum(counts[s] for s in export.CHAT_SPLITS) + counts["canaries"]
    assert loaded.column_names == ["id", "messages"]
    assert all(row["messages"][-1]["role"] == "assistant" for row in loaded)
    book = rows(tmp_path / "sidecars" / "canaries.jsonl")  # planted and twins, with level and secret
    twins = {r["messages"][-1]["content"] for r in book if not r["repetitions"]}
    assert len(twins) == 4 and not twins & {row["messages"][-1]["content"] for row in loaded}


def test_every_export_file_holds_conversations_or_preference_pairs(tmp_path):
    """What a trainer's *.jsonl glob reads, preference pairs and planted canaries included; the
    sidecars lie in their own folder beside the export."""
    from ft_pipeline.core.task import TaskConfig

    task = TaskConfig(name="t", type="structured", gates={"memorization": {"canaries": 2, "repetitions": [1]}})
    counts = write([chat(i, None) for i in range(20)] + [dpo(40)], tmp_path, task=task)["files"]
    assert counts["canaries"] and counts["preference_train"] and (tmp_path / "export" / "task.yaml").is_file()
    found = [row for path in (tmp_path / "export").glob("*.jsonl") for row in rows(path)]
    assert len(found) == sum(n for stem, n in counts.items() if stem != "attributes")
    assert all(row.get("messages") or (row.get("prompt") and row.get("chosen") and row.get("rejected")) for row in found)
    assert {p.name for p in (tmp_path / "sidecars").iterdir()} == {
        "attributes.jsonl", "splits.jsonl", "contamination.jsonl", "canaries.jsonl"}


def test_sidecars_never_lie_in_the_export_folder(tmp_path):
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "splits.jsonl").write_text('{"id": "old", "split": "test"}\n')  # the older layout's
    write([chat(0, "train")], tmp_path)
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == [
        "eval.jsonl", "preference_eval.jsonl", "preference_test.jsonl", "preference_train.jsonl", "test.jsonl",
        "train.jsonl"]
    with pytest.raises(ValueError, match="inside the export folder"):
        export.write_export(lambda: [chat(0, "train")], tmp_path / "export", sidecar_dir=tmp_path / "export" / "s")


def test_split_assignment_is_stable_and_proportional():
    config = export.ExportConfig(eval_fraction=0.1, test_fraction=0.2)
    splits = [export.assign_split({"id": f"x{i}"}, config) for i in range(5000)]
    assert splits == [export.assign_split({"id": f"x{i}"}, config) for i in range(5000)]
    assert 0.17 < splits.count("test") / 5000 < 0.23
    assert 0.08 < splits.count("eval") / 5000 < 0.12


def test_valid_export_passes_great_expectations(tmp_path):
    write([chat(i, "train") for i in range(5)] + [dpo(9)], tmp_path)
    results = export.validate_export(tmp_path / "export")
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


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_conversation_gets_the_task_system_prompt_and_the_task_travels_along(tmp_path):
    from ft_pipeline.core.task import TaskConfig

    task = TaskConfig(name="t", type="structured", system_prompt="Triage it.")
    own = chat(1, "train")
    own["messages"].insert(0, {"role": "system", "content": "the record's own"})
    write([chat(0, "train"), own], tmp_path, task=task)
    first, second = rows(tmp_path / "export" / "train.jsonl")
    assert first["messages"][0] == {"role": "system", "content": "Triage it."}
    assert second["messages"][0]["content"] == "the record's own"  # a record's own system turn wins
    assert TaskConfig.from_yaml(tmp_path / "export" / "task.yaml").system_prompt == "Triage it."


def test_near_copies_of_train_leave_the_held_out_splits(tmp_path):
    base = text(1)
    records = [chat(1, "train", base),
               chat(2, "test", base.replace(base.split()[3], "changed")),  # one word changed: moved to train
               chat(3, "eval", base),  # an exact copy: dropped (a second copy in train adds nothing)
               chat(4, "test")]  # unrelated: stays
    out = write(records, tmp_path)
    assert out["splits"]["near_duplicates"] == 2
    assert out["splits"]["moved_to_train"] == 1 and out["splits"]["dropped"] == 1
    assert {r["id"] for r in rows(tmp_path / "export" / "train.jsonl")} == {"c1", "c2"}
    assert [r["id"] for r in rows(tmp_path / "export" / "test.jsonl")] == ["c4"] and rows(tmp_path / "export" / "eval.jsonl") == []
    actions = {r["id"]: r["action"] for r in rows(tmp_path / "sidecars" / "contamination.jsonl")}
    assert actions == {"c2": "moved_to_train", "c3": "dropped"}


def test_a_chain_of_near_copies_is_followed_until_no_held_out_item_copies_train(tmp_path):
    """test c3 ~ test c2 ~ train c1, c3 not close to c1: moving c2 to train makes c3 a near-copy of
    train, so the plan checks again (seen on the demo: the gate caught 2 the first pass left)."""
    from ft_pipeline.core.data import contamination

    words = text(1).split() + text(2).split()
    c1, c2, c3 = " ".join(words[:30]), " ".join(words[5:35]), " ".join(words[10:40])
    records = [chat(1, "train", c1), chat(2, "test", c2), chat(3, "test", c3), chat(4, "test")]
    out = write(records, tmp_path)
    assert out["splits"]["moved_to_train"] == 2
    assert [r["id"] for r in rows(tmp_path / "export" / "test.jsonl")] == ["c4"]
    split = {r["id"]: r["split"] for r in rows(tmp_path / "sidecars" / "splits.jsonl")}
    left = contamination.find_cross_split((i, split[i], t) for i, t in (("c1", c1), ("c2", c2), ("c3", c3), ("c4", text(4))))
    assert left == []


def test_records_of_one_group_never_straddle_splits(tmp_path):
    from ft_pipeline.core.task import TaskConfig

    task = TaskConfig(name="t", type="structured", group_key="attributes.customer")
    records = [chat(i, None, attributes={"customer": f"cust{i % 7}"}) for i in range(70)]
    records += [chat(100, "test", attributes={"customer": "cust1"})]  # its own split disagrees with the group's
    out = write(records, tmp_path, task=task)
    by_group: dict[str, set] = {}
    for row in rows(tmp_path / "sidecars" / "splits.jsonl"):
        by_group.setdefault(row["group"], set()).add(row["split"])
    assert len(by_group) == 7 and all(len(s) == 1 for s in by_group.values())
    assert out["splits"]["groups"] == 7
