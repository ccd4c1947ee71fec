"""Reading answers per task type: labels, final numbers, label fields, and reference checks."""
from __future__ import annotations

import json

import pytest

from ft_pipeline.core.answers import (
    answer_field, answer_instructions, answer_label, check_answer, extract_number, parse_json_answer, parse_label,
    strict_json_object,
)
from ft_pipeline.core.task import TaskConfig

LABELS = ["positive", "negative", "very positive", "billing_dispute"]
SCHEMA = {
    "type": "object",
    "properties": {"intent": {"type": "string", "enum": ["refund", "other"]}, "priority": {"type": "string"}},
    "required": ["intent", "priority"],
    "additionalProperties": False,
}
CLASSIFY = TaskConfig(name="sentiment", type="classification", labels=LABELS)
STRUCTURED = TaskConfig(name="tickets", type="structured", schema=SCHEMA, label_field="intent",
                        outcome={"field": "priority", "positive": ["high"]})
MATH = TaskConfig(name="gsm", type="math")
GENERATION = TaskConfig(name="summaries", type="generation")
PREFERENCE = TaskConfig(name="prefs", type="preference")


@pytest.mark.parametrize("text, expected", [
    ("positive", "positive"),
    ("  Positive. ", "positive"),  # casing, spaces, a closing full stop
    ('"negative"', "negative"),  # quotes
    ("**Negative**!", "negative"),
    ("Billing dispute", "billing_dispute"),  # _ and space read alike
    ("billing-dispute", "billing_dispute"),
    ("The sentiment is negative.", "negative"),  # a whole word inside prose
    ("I'd say very positive overall", "very positive"),  # the longer label covers the shorter
    ("positive, not negative", None),  # two labels: ambiguous
    ("nonnegative", None),  # inside a word is not the word
    ("non-negative", None),
    ("neutral", None),
    ("", None),
    (None, None),
])
def test_parse_label(text, expected):
    assert parse_label(text, LABELS) == expected


def test_parse_label_returns_the_declared_spelling_and_repeats_are_one_label():
    assert parse_label("NEGATIVE ... negative", LABELS) == "negative"
    assert parse_label("ok", ["OK", "Not OK"]) == "OK"
    assert parse_label("positive", []) is None


@pytest.mark.parametrize("text, pattern, expected", [
    ("so she has 3 + 4 = 7 apples\n#### 7", None, "7"),  # GSM8K's marker wins over later numbers
    ("#### 1,234", None, "1234"),  # thousands separators removed
    ("#### -2.5", None, "-2.5"),
    ("The answer is 42.", None, "42"),  # no marker: the last number
    ("costs 1,000,000 dollars, or 3, 4", None, "4"),
    ("It is 0.5", None, "0.5"),
    ("no number at all", None, None),
    ("", None, None),
    (r"so \boxed{\frac{1}{2}}", r"\\boxed\{(.+)\}", r"\frac{1}{2}"),  # the pattern's first group
    ("Answer: 12 apples", r"Answer: \d+", "Answer: 12"),  # no group: the whole match
    ("ANSWER 9 then 10", r"ANSWER (\d+)", "9"),
])
def test_extract_number(text, pattern, expected):
    assert extract_number(text, pattern) == expected


def test_extract_number_without_fallback_needs_the_pattern():
    assert extract_number("The answer is 42", None, last_number=False) is None
    assert extract_number("#### 42", None, last_number=False) == "42"


def test_parse_json_answer_takes_first_object_and_strict_takes_nothing_else():
    assert parse_json_answer('x {"a": 1} {"b": 2}') == {"a": 1}
    assert parse_json_answer('{not json} then {"a": 2}') == {"a": 2}
    assert parse_json_answer(None) is None and parse_json_answer(["list"]) is None
    assert strict_json_object(' {"a": 1}\n') == {"a": 1}
    assert strict_json_object('x {"a": 1}') is None
    assert strict_json_object("[1]") is None


@pytest.mark.parametrize("task, text, expected", [
    (CLASSIFY, " negative\n", "negative"),
    (CLASSIFY, "", None),
    (STRUCTURED, '{"intent": "refund", "priority": "high"}', "refund"),  # label_field
    (STRUCTURED, '{"priority": "high"}', None),
    (STRUCTURED, "not json", None),
    (MATH, "#### 4", None),
    (GENERATION, "text", None),
])
def test_answer_label(task, text, expected):
    assert answer_label(task, text) == expected


def test_answer_label_defaults_to_the_first_key_field():
    task = TaskConfig(name="t", type="structured", key_fields=["team", "urgency"])
    assert answer_label(task, '{"urgency": 1, "team": "ops"}') == "ops"


@pytest.mark.parametrize("task, text, field, expected", [
    (STRUCTURED, '{"intent": "refund", "priority": "high"}', "priority", "high"),
    (STRUCTURED, '{"intent": "refund", "priority": "high"}', "label", "refund"),
    (STRUCTURED, '{"intent": "refund", "urgent": true}', "urgent", "true"),
    (STRUCTURED, '{"intent": "refund", "tags": ["a"]}', "tags", None),  # not a scalar
    (STRUCTURED, '{"intent": "refund"}', "priority", None),
    (CLASSIFY, "positive", "label", "positive"),
])
def test_answer_field(task, text, field, expected):
    assert answer_field(task, text, field) == expected


@pytest.mark.parametrize("task, text, labels, reason", [
    (CLASSIFY, "positive", None, None),
    (CLASSIFY, " positive ", None, None),
    (CLASSIFY, "  ", None, "empty answer"),
    (CLASSIFY, "Positive", None, "not one of the task's labels"),  # a reference must be exact
    (CLASSIFY, "maybe", None, "not one of the task's labels"),
    (CLASSIFY, "maybe", ["maybe"], None),  # labels given override the task's
    (TaskConfig(name="open", type="classification"), "anything", None, None),  # no labels declared
    (STRUCTURED, '{"intent": "refund", "priority": "high"}', None, None),
    (STRUCTURED, 'Sure: {"intent": "refund", "priority": "high"}', None, "not a JSON object"),
    (STRUCTURED, '["refund"]', None, "not a JSON object"),
    (STRUCTURED, '{"intent": "secret-value", "priority": "high"}', None,
     "fails the task's schema (properties/intent/enum)"),
    (STRUCTURED, '{"intent": "refund"}', None, "fails the task's schema (required)"),
    (STRUCTURED, '{"intent": "refund", "priority": "high", "x": 1}', None,
     "fails the task's schema (additionalProperties)"),
    (TaskConfig(name="k", type="structured", key_fields=["team"]), '{"urgency": 1}', None, "lacks key field 'team'"),
    (MATH, "3 + 4 = 7\n#### 7", None, None),
    (MATH, "the answer is 7", None, None),  # the last number is a final answer too
    (MATH, "no idea", None, "no final answer found with the task's answer_pattern"),
    (GENERATION, "A summary.", None, None),
    (GENERATION, "", None, "empty answer"),
    (GENERATION, None, None, "empty answer"),
    (PREFERENCE, ("good", "bad"), None, None),
    (PREFERENCE, ("good", " "), None, "rejected is empty"),
    (PREFERENCE, ("", "bad"), None, "chosen is empty"),
    (PREFERENCE, "one side", None, None),
])
def test_check_answer(task, text, labels, reason):
    assert check_answer(task, text, labels) == reason


def test_check_answer_reason_never_repeats_the_answer():
    answer = json.dumps({"intent": "Jane Doe 555-0100", "priority": "high"})
    reason = check_answer(STRUCTURED, answer)
    assert reason and "Jane" not in reason and "555" not in reason


@pytest.mark.parametrize("task, labels, expected", [
    (CLASSIFY, None, "Answer with exactly one of these labels and nothing else: positive, negative, very positive, "
                     "billing_dispute."),
    (TaskConfig(name="open", type="classification"), ["yes", "no"], "Answer with exactly one of these labels and "
                                                                    "nothing else: yes, no."),
    (STRUCTURED, None, "Reply with only a JSON object with the keys intent, priority. Allowed values — intent: "
                       "refund, other."),
    (TaskConfig(name="k", type="structured"), None, "Reply with only a JSON object."),
    (MATH, None, "Work it out step by step, then give the final answer on its own last line as: #### <number>"),
    (TaskConfig(name="boxed", type="math", answer_pattern=r"\\boxed\{(.+)\}"), None, ""),  # the prompt says how
    (GENERATION, None, ""),
])
def test_answer_instructions(task, labels, expected):
    assert answer_instructions(task, labels) == expected
