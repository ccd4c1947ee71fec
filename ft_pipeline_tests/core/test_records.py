"""parse_record: every raw format normalizes; every malformed field is named, its value never is."""
from __future__ import annotations

import copy

import pytest

from ft_pipeline.core.records import RecordError, parse_record, text_fields, with_texts

SECRET = "Jane Q. Example 555-0142"  # stands in for PII; must never appear in an error


def chat(**extra):
    return {"id": "r1", "messages": [{"role": "user", "content": "my card was charged twice"},
                                     {"role": "assistant", "content": '{"intent": "billing_dispute"}'}], **extra}


@pytest.mark.parametrize(
    "raw, task, n_turns",
    [
        (chat(), "chat", 2),
        ({"id": "r2", "prompt": "where is my claim?", "completion": "pending"}, "chat", 2),
        ({"id": "r3", "prompt": "p", "chosen": "good", "rejected": "bad"}, "dpo", 1),
        ({"id": "r4", "prompt": "p", "reference": "42"}, "grpo", 1),
        ({"id": "r5", "prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
          "chosen": "c", "rejected": "r"}, "dpo", 2),
        ({"id": 7, "prompt": "p", "completion": "c"}, "chat", 2),
    ],
    ids=["messages", "prompt_completion", "dpo", "grpo", "dpo_conversational_prompt", "integer_id"],
)
def test_formats_normalize(raw, task, n_turns):
    record = parse_record(raw)
    assert record["task"] == task
    assert len(record["messages"]) == n_turns
    assert isinstance(record["id"], str)
    assert set(record) >= {"id", "task", "messages", "label_verified", "annotator", "verified_at",
                           "attributes", "source", "split"}
    if task == "dpo":
        assert record["chosen"] and record["rejected"]
    if task == "grpo":
        assert record["reference"] == "42"


def test_normalized_record_parses_to_itself():
    record = parse_record(chat(label_verified=True, annotator="ann-01", verified_at="2026-10-07T23:12:57Z",
                               labels=[{"annotator": "a", "label": "x"}], attributes={"region": "EU", "age": 30},
                               source="support-chat", split="train"))
    assert parse_record(copy.deepcopy(record)) == record
    assert record["attributes"] == {"region": "EU", "age": "30"}


BAD = [
    ("not_object", ["a", "list"], "not_object", None),
    ("missing_id", {"messages": chat()["messages"]}, "missing_field", "id"),
    ("empty_id", chat(id="  "), "empty_field", "id"),
    ("missing_messages", {"id": "x"}, "missing_field", "messages"),
    ("missing_prompt", {"id": "x", "completion": SECRET}, "missing_field", "prompt"),
    ("missing_completion", {"id": "x", "prompt": SECRET}, "missing_field", "completion"),
    ("missing_rejected", {"id": "x", "prompt": SECRET, "chosen": SECRET}, "missing_field", "rejected"),
    ("empty_messages", {"id": "x", "messages": []}, "empty_field", "messages"),
    ("empty_content", {"id": "x", "messages": [{"role": "user", "content": " "}]}, "empty_field", "messages[0].content"),
    ("messages_wrong_type", {"id": "x", "messages": SECRET}, "wrong_type", "messages"),
    ("content_wrong_type", {"id": "x", "messages": [{"role": "user", "content": 5}]}, "wrong_type", "messages[0].content"),
    ("turn_wrong_type", {"id": "x", "messages": [SECRET]}, "wrong_type", "messages[0]"),
    ("missing_role", {"id": "x", "messages": [{"content": SECRET}]}, "missing_field", "messages[0].role"),
    ("unknown_role", {"id": "x", "messages": [{"role": "customer", "content": SECRET}]}, "unknown_role", "messages[0].role"),
    ("no_assistant", {"id": "x", "messages": [{"role": "user", "content": SECRET}]}, "no_assistant_turn", "messages"),
    ("id_wrong_type", chat(id=["a"]), "wrong_type", "id"),
    ("bool_id", chat(id=True), "wrong_type", "id"),
    ("label_verified_wrong_type", chat(label_verified="yes"), "wrong_type", "label_verified"),
    ("bad_verified_at", chat(verified_at=SECRET), "bad_timestamp", "verified_at"),
    ("attributes_not_dict", chat(attributes=[SECRET]), "wrong_type", "attributes"),
    ("attribute_nested", chat(attributes={"region": {"x": SECRET}}), "wrong_type", "attributes.region"),
    ("labels_wrong_type", chat(labels=SECRET), "wrong_type", "labels"),
    ("label_missing_annotator", chat(labels=[{"label": SECRET}]), "missing_field", "labels[0].annotator"),
    ("bad_split", chat(split=SECRET), "invalid_value", "split"),
    ("ambiguous", {"id": "x", "prompt": SECRET, "chosen": SECRET, "rejected": SECRET, "reference": SECRET},
     "ambiguous_format", "chosen"),
    ("messages_and_prompt", chat(prompt=SECRET), "ambiguous_format", "messages"),
    ("control_chars", {"id": "x", "prompt": "a\x00b", "completion": "c"}, "control_characters", "prompt"),
    ("lone_surrogate", {"id": "x", "prompt": "a\ud800b", "completion": "c"}, "invalid_unicode", "prompt"),
]


@pytest.mark.parametrize("raw, reason, field", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_records_name_field_not_value(raw, reason, field):
    with pytest.raises(RecordError) as info:
        parse_record(raw)
    assert info.value.reason == reason
    assert info.value.field == field
    leaked = any(part in str(info.value) for part in ("Jane", "555-0142", "customer"))
    assert not leaked, "the error message echoes a field value"


def test_tabs_and_newlines_are_not_control_characters():
    record = parse_record({"id": "x", "prompt": "line one\n\tline two\r\n", "completion": "ok"})
    assert record["messages"][0]["content"].startswith("line one")


def test_text_fields_round_trip():
    record = parse_record({"id": "x", "prompt": "p", "chosen": "c", "rejected": "r"})
    fields = text_fields(record)
    assert [f for f, _ in fields] == ["messages[0].content", "chosen", "rejected"]
    changed = with_texts(record, [t.upper() for _, t in fields])
    assert (changed["messages"][0]["content"], changed["chosen"], changed["rejected"]) == ("P", "C", "R")
    assert record["chosen"] == "c"  # the input is not modified
