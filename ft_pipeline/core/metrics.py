"""A task's answers scored with its type's metrics, each from a well-kept library.

    classification  accuracy, macro-F1, per-label precision/recall/F1, confusion (scikit-learn)
    structured      json_valid, schema_valid (jsonschema), field_accuracy, exact_match on key fields
    generation      rouge_l (rouge-score), chrf (sacrebleu)
    math            numeric_match of the final answers (math-verify)
    preference      preference_accuracy: chosen beats rejected on length-normalized log-likelihood

Every value is a share in [0, 1]. `Scores` keeps one value per item as well, so paired tests and
per-group intervals can recompute a metric on any subset; it never keeps an answer's text.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ft_pipeline.core.answers import extract_number, parse_json_answer, parse_label

NONE_LABEL = "<none>"  # the class of a prediction that names no label (always wrong)


@dataclass
class Scores:
    metric: str  # the task's primary metric
    values: dict[str, float]  # every metric of the task type over all items
    per_item: dict[str, list[float]]  # metric -> one value per item; macro_f1 has none
    details: dict = field(default_factory=dict)  # JSON-able extras per type, never answer text
    n: int = 0
    # classification: the reference and predicted label per item, to recompute macro-F1 on subsets.
    y_true: list[str] = field(default_factory=list, repr=False)
    y_pred: list[str] = field(default_factory=list, repr=False)

    def primary_items(self) -> list[float]:
        """Per-item values of the primary metric; macro-F1 has none, so its items are correctness."""
        return list(self.per_item["accuracy" if self.metric == "macro_f1" else self.metric])

    def on(self, indices, metric: str | None = None) -> float:
        """`metric` (default: the primary) on the items at `indices`, repeats allowed (bootstrap)."""
        metric = metric or self.metric
        indices = list(indices)
        if not indices:
            return 0.0
        if metric == "macro_f1":
            return macro_f1([self.y_true[i] for i in indices], [self.y_pred[i] for i in indices])
        values = self.per_item[metric]
        return sum(values[i] for i in indices) / len(indices)

    def as_dict(self) -> dict:
        return {"metric": self.metric, "values": dict(self.values), "n": self.n, "details": self.details}


def score(task, predictions: list[str], references: list[str], *, labels: list[str] | None = None) -> Scores:
    """Scores `predictions` against `references` (aligned) with every metric of the task's type.

    A reference that does not fit the type raises ValueError naming its index (never its text):
    the export checks references, so one that slips through is a bug, not a zero.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if task.type == "preference":
        raise ValueError("a preference task is scored from log-likelihoods: use score_preference")
    predictions = [p if isinstance(p, str) else "" for p in predictions]
    if task.type == "classification":
        return _classification(task, predictions, references, labels)
    per_item, details = {"structured": _structured, "generation": _generation, "math": _math}[task.type](
        task, predictions, references)
    return _scores(task.metric, per_item, details)


def score_preference(chosen_logps: list[float], rejected_logps: list[float]) -> Scores:
    """Held-out preference accuracy from length-normalized log-likelihoods, one pair per item:
    1 when the model prefers `chosen` strictly (a tie or NaN is not a preference)."""
    if len(chosen_logps) != len(rejected_logps):
        raise ValueError(f"{len(chosen_logps)} chosen for {len(rejected_logps)} rejected log-likelihoods")
    wins = [1.0 if float(c) > float(r) else 0.0 for c, r in zip(chosen_logps, rejected_logps)]
    return _scores("preference_accuracy", {"preference_accuracy": wins}, {})


def _scores(metric: str, per_item: dict[str, list[float]], details: dict, **extra) -> Scores:
    n = len(next(iter(per_item.values())))
    values = {name: (sum(items) / n if n else 0.0) for name, items in per_item.items()}
    return Scores(metric, values, per_item, details, n, **extra)


# --- classification -------------------------------------------------------------------------


def macro_f1(y_true: list[str], y_pred: list[str]) -> float:
    """Unweighted mean F1 over the labels that occur as reference or prediction (scikit-learn).
    A "no label" prediction already costs its item's recall; it is not a class of its own."""
    from sklearn.metrics import f1_score

    present = sorted((set(y_true) | set(y_pred)) - {NONE_LABEL})
    if not present:
        return 0.0
    return float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))


def _classification(task, predictions, references, labels) -> Scores:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    label_set = [str(x) for x in (labels or task.labels or sorted({r.strip() for r in references if r}))]
    y_true = []
    for i, reference in enumerate(references):
        parsed = parse_label(reference, label_set)
        if parsed is None:
            raise ValueError(f"reference {i}: not one of the task's labels")
        y_true.append(parsed)
    y_pred = [parse_label(p, label_set) or NONE_LABEL for p in predictions]
    correct = [float(t == p) for t, p in zip(y_true, y_pred)]
    classes = label_set + ([NONE_LABEL] if NONE_LABEL in y_pred else [])
    details: dict = {"labels": classes, "confusion": [], "per_label": {}}
    if y_true:
        details["confusion"] = confusion_matrix(y_true, y_pred, labels=classes).tolist()
        precision, recall, f1, support = precision_recall_fscore_support(
            y_true, y_pred, labels=label_set, zero_division=0)
        details["per_label"] = {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(label_set, precision, recall, f1, support)}
    scores = _scores(task.metric, {"accuracy": correct}, details, y_true=y_true, y_pred=y_pred)
    scores.values["macro_f1"] = macro_f1(y_true, y_pred)
    return scores


# --- structured -----------------------------------------------------------------------------


def _structured(task, predictions, references) -> tuple[dict, dict]:
    validator = None
    if task.schema is not None:
        from jsonschema import validators

        validator = validators.validator_for(task.schema)(task.schema)
    declared = task.answer_key_fields
    items = {"exact_match": [], "field_accuracy": [], "schema_valid": [], "json_valid": []}
    per_field: dict[str, list[bool]] = {}
    for i, (prediction, reference) in enumerate(zip(predictions, references)):
        expected = parse_json_answer(reference)
        if expected is None:
            raise ValueError(f"reference {i}: holds no JSON object")
        answer = parse_json_answer(prediction)
        keys = declared or list(expected)
        # A key counts only when both sides have it: a missing key never matches by None == None.
        hits = [answer is not None and key in answer and key in expected and same_json(answer[key], expected[key])
                for key in keys]
        for key, hit in zip(keys, hits):
            per_field.setdefault(key, []).append(hit)
        whole = answer is not None and same_json(answer, expected)  # no key fields: the whole object
        items["json_valid"].append(float(answer is not None))
        items["schema_valid"].append(float(answer is not None and (validator is None or validator.is_valid(answer))))
        items["field_accuracy"].append(sum(hits) / len(keys) if keys else float(whole))
        items["exact_match"].append(float(all(hits)) if keys else float(whole))
    return items, {"per_field": {key: sum(h) / len(h) for key, h in per_field.items()}}


def same_json(a, b) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1 (Python's == says it is)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    return a == b


# --- generation -----------------------------------------------------------------------------


class _WordTokenizer:
    """rouge-score's own tokenizer keeps only [a-z0-9] ("café" -> "caf", Greek -> nothing); this
    one keeps letters of every script and splits the same way on ASCII text."""

    def tokenize(self, text: str) -> list[str]:
        import re

        return re.findall(r"[^\W_]+", text.lower())


def _generation(task, predictions, references) -> tuple[dict, dict]:
    import sacrebleu
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_WordTokenizer())
    rouge = [scorer.score(ref or "", pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references)]
    chrf = [sacrebleu.sentence_chrf(pred, [ref or ""]).score / 100 for pred, ref in zip(predictions, references)]
    return {"rouge_l": rouge, "chrf": chrf}, {}


# --- math -----------------------------------------------------------------------------------


def _math(task, predictions, references) -> tuple[dict, dict]:
    matches, unparsable = [], 0
    for i, (prediction, reference) in enumerate(zip(predictions, references)):
        gold = extract_number(reference, task.answer_regex)
        if gold is None:
            raise ValueError(f"reference {i}: no final answer found with the task's answer_pattern")
        answer = extract_number(prediction, task.answer_regex)
        unparsable += answer is None
        matches.append(float(answer is not None and same_answer(answer, gold)))
    return {"numeric_match": matches}, {"unparsable": unparsable}


def same_answer(answer: str, gold: str) -> bool:
    """math-verify's equivalence (1/2 = 0.5 = \\frac{1}{2}), else equal as floats (1e6 = 1000000)."""
    import threading

    from math_verify import parse, verify

    # math-verify's timeout is signal.alarm, which only the main thread may set.
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    parsed_gold, parsed = parse(gold, parsing_timeout=timeout), parse(answer, parsing_timeout=timeout)
    if parsed_gold and parsed and verify(parsed_gold, parsed, timeout_seconds=timeout):
        return True
    try:
        return math.isclose(float(answer), float(gold), rel_tol=1e-9)
    except ValueError:
        return False
