"""Each task type's metrics against hand-computed values or the reference library itself."""
from __future__ import annotations

import json
import math

import pytest

from ft_pipeline.core.metrics import NONE_LABEL, Scores, score, score_preference
from ft_pipeline.core.task import METRICS, TaskConfig

SCHEMA = {
    "type": "object",
    "properties": {"intent": {"type": "string", "enum": ["billing_dispute", "address_change"]},
                   "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]}},
    "required": ["intent", "priority"],
    "additionalProperties": False,
}
TICKETS = TaskConfig(name="tickets", type="structured", schema=SCHEMA)
OPEN_JSON = TaskConfig(name="open-json", type="structured")  # no schema, no key fields: every reference key


# --- classification ---------------------------------------------------------------------------

# Imbalanced: six a, two b, two c; one prediction names no label at all.
TRUE = ["a"] * 6 + ["b", "b", "c", "c"]
PRED = ["a", "A.", "the label is a", "a", "a", "b", "b", "a", "c", "a or c?"]


def _classification(metric: str = "accuracy") -> Scores:
    return score(TaskConfig(name="abc", type="classification", labels=["a", "b", "c"], metric=metric), PRED, TRUE)


def test_classification_accuracy_macro_f1_and_confusion_by_hand():
    scores = _classification()
    assert scores.values["accuracy"] == pytest.approx(0.7)
    # F1: a 5/6 (tp 5, fp 1, fn 1), b 1/2 (tp 1, fp 1, fn 1), c 2/3 (tp 1, fp 0, fn 1) -> mean 2/3.
    # Counting the unparsable answer as a class of its own would give 0.5; weighting by support 0.733.
    assert scores.values["macro_f1"] == pytest.approx(2 / 3)
    assert scores.details["labels"] == ["a", "b", "c", NONE_LABEL]
    assert scores.details["confusion"] == [[5, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]]
    assert scores.details["per_label"]["c"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3),
                                                "support": 2}
    assert scores.per_item["accuracy"] == [1.0] * 5 + [0.0, 1.0, 0.0, 1.0, 0.0]
    assert "macro_f1" not in scores.per_item


def test_macro_f1_on_a_subset_is_recomputed_not_averaged():
    from sklearn.metrics import f1_score

    scores = _classification("macro_f1")
    assert scores.primary_items() == scores.per_item["accuracy"]  # macro-F1's items are correctness
    # items 6, 7: b->b, b->a: F1 b = 2/3, a = 0 (predicted, never true) -> 1/3
    assert scores.on([6, 7]) == pytest.approx(1 / 3)
    assert scores.on([6, 7], "accuracy") == pytest.approx(0.5)
    sample = [0, 0, 5, 6, 7, 8, 9, 9]  # a bootstrap resample repeats items
    expected = f1_score([TRUE[i] for i in sample], [PRED[i] if i != 1 else "a" for i in sample], average="macro",
                        labels=["a", "b", "c"], zero_division=0)
    assert scores.on(sample) == pytest.approx(expected)


def test_classification_label_set_defaults_to_the_references():
    scores = score(TaskConfig(name="yn", type="classification"), ["yes", "no", "yes"], ["yes", "yes", "no"])
    assert scores.details["labels"] == ["no", "yes"] and scores.values["accuracy"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="reference 1: not one of the task's labels"):
        score(TaskConfig(name="yn", type="classification", labels=["yes", "no"]), ["yes", "no"], ["yes", "perhaps"])


# --- structured -------------------------------------------------------------------------------

REF = '{"intent": "billing_dispute", "priority": "high"}'


@pytest.mark.parametrize("pred, json_valid, schema_valid, field_accuracy, exact", [
    (REF, 1, 1, 1.0, 1),
    ('Sure! {"priority": "high", "intent": "billing_dispute"} Hope that helps.', 1, 1, 1.0, 1),
    ('{"intent": "billing_dispute", "priority": "high"', 0, 0, 0.0, 0),  # truncated
    ("billing_dispute, high", 0, 0, 0.0, 0),
    ('{"intent": "billing_dispute", "priority": "high", "reason": "x"}', 1, 0, 1.0, 1),  # extra key: schema only
    ('{"intent": "billing_dispute", "priority": "asap"}', 1, 0, 0.5, 0),
    ('{"intent": "address_change", "priority": "high"}', 1, 1, 0.5, 0),
    ('{"intent": ["billing_dispute"], "priority": "high"}', 1, 0, 0.5, 0),
    ('[{"intent": "billing_dispute"}]', 1, 0, 0.5, 0),  # the first object inside an array
    ("", 0, 0, 0.0, 0),
])
def test_structured_item(pred, json_valid, schema_valid, field_accuracy, exact):
    scores = score(TICKETS, [pred], [REF])
    assert {m: scores.values[m] for m in METRICS["structured"]} == {
        "exact_match": exact, "field_accuracy": field_accuracy, "schema_valid": schema_valid, "json_valid": json_valid}


@pytest.mark.parametrize("task, pred, ref", [
    (OPEN_JSON, '{"answer": "41"}', '{"answer": "42"}'),  # the case: every reference key compared
    (TaskConfig(name="k", type="structured", key_fields=["intent", "priority"]),
     '{"intent": "x"}', '{"intent": "x"}'),  # a key both lack never matches by None == None
    (OPEN_JSON, '{"ok": 1}', '{"ok": true}'),  # JSON true is not 1
    (OPEN_JSON, "{}", '{"answer": "42"}'),
])
def test_structured_mismatch_scores_zero(task, pred, ref):
    scores = score(task, [pred], [ref])
    assert scores.values["exact_match"] == 0.0 and scores.per_item["exact_match"] == [0.0]


def test_structured_per_field_accuracy_and_no_schema_means_any_object():
    preds = ['{"answer": "42", "unit": "kg"}', '{"answer": 42.0, "unit": "g"}', "[1, 2]"]
    refs = ['{"answer": "42", "unit": "kg"}', '{"answer": 42, "unit": "kg"}', '{"answer": "7", "unit": "kg"}']
    scores = score(OPEN_JSON, preds, refs)
    assert scores.per_item["exact_match"] == [1.0, 0.0, 0.0]
    assert scores.per_item["field_accuracy"] == [1.0, 0.5, 0.0]  # 42.0 == 42 as JSON numbers
    assert scores.details["per_field"] == {"answer": pytest.approx(2 / 3), "unit": pytest.approx(1 / 3)}
    assert scores.per_item["schema_valid"] == scores.per_item["json_valid"] == [1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="reference 0: holds no JSON object"):
        score(OPEN_JSON, ["{}"], ["plain text"])


# --- generation -------------------------------------------------------------------------------

PAIRS = [("the cat sat on the mat", "the cat sat on the mat"),
         ("the cat on the mat", "the cat sat on the mat"),
         ("A b C d!", "d, c, b, a"),
         ("x y z", "a b c"),
         ("", "a b")]


def test_generation_matches_rouge_score_and_sacrebleu():
    import sacrebleu
    from rouge_score import rouge_scorer

    library = rouge_scorer.RougeScorer(["rougeL"])
    scores = score(TaskConfig(name="g", type="generation"), [p for p, _ in PAIRS], [r for _, r in PAIRS])
    assert scores.per_item["rouge_l"] == pytest.approx([library.score(r, p)["rougeL"].fmeasure for p, r in PAIRS])
    assert scores.per_item["rouge_l"][:4] == pytest.approx([1.0, 10 / 11, 0.25, 0.0])  # LCS 5: P 5/5, R 5/6
    assert scores.per_item["chrf"] == pytest.approx([sacrebleu.sentence_chrf(p, [r]).score / 100 for p, r in PAIRS])
    assert scores.per_item["chrf"][0] == pytest.approx(1.0) and scores.per_item["chrf"][3] == 0.0
    assert scores.metric == "rouge_l" and scores.values["chrf"] == pytest.approx(sum(scores.per_item["chrf"]) / 5)


def test_rouge_l_reads_every_script():
    # rouge-score's own tokenizer drops non-ASCII letters, which would make this 0.
    scores = score(TaskConfig(name="g", type="generation"), ["καλημέρα κόσμε"], ["καλημέρα φίλε"])
    assert scores.values["rouge_l"] == pytest.approx(0.5)


# --- math -------------------------------------------------------------------------------------


@pytest.mark.parametrize("pred, ref, match", [
    ("The answer is 42.", "6 * 7 = 42\n#### 42", 1.0),  # no marker in the answer: its last number
    ("The answer is 41.", "6 * 7 = 42\n#### 42", 0.0),
    ("41", "#### 42", 0.0),
    ("#### 1,000", "so 1000", 1.0),
    ("it is 42.0", "#### 42", 1.0),
    ("-3", "#### -3", 1.0),
    ("#### 3.14159", "#### 3.1416", 0.0),
])
def test_math_numeric_match(pred, ref, match):
    assert score(TaskConfig(name="m", type="math"), [pred], [ref]).values["numeric_match"] == match


def test_math_uses_math_verify_and_counts_unparsable():
    boxed = TaskConfig(name="boxed", type="math", answer_pattern=r"\\boxed\{(.+)\}")
    scores = score(boxed, [r"so \boxed{\frac{1}{2}}", r"\boxed{0.4}", "I do not know"],
                   [r"\boxed{0.5}", r"\boxed{2/5}", r"\boxed{1}"])
    assert scores.per_item["numeric_match"] == [1.0, 1.0, 0.0]
    assert scores.details == {"unparsable": 1}
    with pytest.raises(ValueError, match="reference 0: no final answer"):
        score(TaskConfig(name="m", type="math"), ["1"], ["no number here"])


# --- preference and shared behaviour ----------------------------------------------------------


def test_preference_accuracy():
    scores = score_preference([-1.0, -2.0, -0.5, math.nan], [-1.5, -1.0, -0.5, -3.0])
    assert scores.per_item["preference_accuracy"] == [1.0, 0.0, 0.0, 0.0]  # a tie or NaN is no preference
    assert scores.values == {"preference_accuracy": 0.25} and scores.metric == "preference_accuracy"
    with pytest.raises(ValueError, match="2 chosen for 1 rejected"):
        score_preference([0.0, 1.0], [0.0])
    with pytest.raises(ValueError, match="score_preference"):
        score(TaskConfig(name="p", type="preference"), ["a"], ["b"])


@pytest.mark.parametrize("task, preds, refs", [
    (TaskConfig(name="c", type="classification"), ["secret yes", "no"], ["yes", "no"]),
    (TICKETS, ['{"intent": "secret text", "priority": "low"}'], [REF]),
    (TaskConfig(name="g", type="generation"), ["secret words"], ["other words"]),
    (TaskConfig(name="m", type="math"), ["secret 3"], ["#### 4"]),
])
def test_every_type_reports_all_its_metrics_as_json_without_answer_text(task, preds, refs):
    scores = score(task, preds, refs)
    assert set(scores.values) == set(METRICS[task.type]) and scores.n == len(preds)
    assert all(0.0 <= v <= 1.0 for v in scores.values.values())
    text = json.dumps(scores.as_dict())
    assert "secret" not in text and "per_item" not in text
    assert scores.on(range(len(preds))) == pytest.approx(scores.values[task.metric])


def test_misaligned_inputs_raise():
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        score(TaskConfig(name="g", type="generation"), ["a", "b"], ["a"])
