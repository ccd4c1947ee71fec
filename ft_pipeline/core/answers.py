"""Reading answers the way the task declares them: a label, a JSON object, a final number, free text.

Kept apart from evaluation so the bias audit, label review, export checks and GRPO rewards can read
answers without pulling in model or metric code; nothing heavy is imported at module level.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import TYPE_CHECKING

from ft_pipeline.core import user_regex

if TYPE_CHECKING:
    from ft_pipeline.core.task import TaskConfig

# A number as people write it: "-3", "1,234", "0.5", ".5".
_LAST_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?|-?\.\d+")
# A comma between digits is a thousands separator ("1,234"); elsewhere it may separate a tuple.
_THOUSANDS = re.compile(r"(?<=\d),(?=\d)")
# What a model wraps a label in: quotes, brackets, a closing full stop.
_WRAPPING = "\"'`“”‘’«»()[]{}<>*"
_TRAILING = ".,;:!?。"


def last_assistant(record: dict) -> str | None:
    """The answer a record teaches: the final assistant turn, the DPO `chosen`, or the GRPO reference."""
    if record.get("chosen"):
        return record["chosen"]
    if record.get("reference"):
        return record["reference"]
    for message in reversed(record.get("messages") or []):
        if message.get("role") == "assistant":
            return message.get("content")
    return None


def prompt_turns(record: dict) -> list[dict]:
    """The turns a model sees: everything before the final assistant answer."""
    messages = record["messages"]
    return messages[:-1] if messages and messages[-1]["role"] == "assistant" else messages


def parse_json_answer(text: str | None) -> dict | None:
    """The first JSON object in `text`, or None; models often wrap the object in prose."""
    if not text or not isinstance(text, str):
        return None
    start = text.find("{")
    while start != -1:
        try:
            obj, _ = json.JSONDecoder().raw_decode(text[start:])
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        return obj if isinstance(obj, dict) else None
    return None


def strict_json_object(text: str | None) -> dict | None:
    """The answer as a JSON object when it is nothing else (no prose around it), else None."""
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text.strip())
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


# --- labels -------------------------------------------------------------------------------


def _normal(text: str) -> str:
    """casefold, strip wrapping quotes and a closing full stop; `_`, `-` and spaces read alike."""
    text = text.strip().strip(_WRAPPING).strip().rstrip(_TRAILING).strip().strip(_WRAPPING).strip()
    return re.sub(r"[\s_-]+", " ", text.casefold())


@lru_cache(maxsize=64)
def _label_patterns(labels: tuple[str, ...]) -> tuple[tuple[str, re.Pattern], ...]:
    out = []
    for label in labels:
        words = [re.escape(w) for w in _normal(label).split(" ") if w]
        if words:  # a whole word or phrase: no word character may touch it on either side
            out.append((label, re.compile(r"(?<![\w-])" + r"[\s_-]+".join(words) + r"(?![\w-])")))
    return tuple(out)


def parse_label(text: str | None, labels) -> str | None:
    """The one label a free-text answer names, or None when it names none or several.

    An answer that is a label (ignoring case, quotes and a closing full stop) is that label;
    otherwise the label appearing as a whole word or phrase, where a longer label covering a
    shorter one wins ("very positive" over "positive"), and two distinct labels are ambiguous.
    """
    if not text or not labels:
        return None
    labels = tuple(str(label) for label in labels)
    wanted = _normal(text)
    for label in labels:
        if _normal(label) == wanted:
            return label
    folded = text.casefold()
    spans = [(m.start(), m.end(), label) for label, pattern in _label_patterns(labels)
             for m in pattern.finditer(folded)]
    # A match inside a longer match of another label is that longer label's word, not its own.
    kept = {label for start, end, label in spans
            if not any(s <= start and end <= e and (e - s) > (end - start) for s, e, _ in spans)}
    return kept.pop() if len(kept) == 1 else None


# --- numbers ------------------------------------------------------------------------------


def extract_number(text: str | None, pattern: str | None = None, *, last_number: bool = True) -> str | None:
    """The final answer of a worked solution: the first group (or whole match) of `pattern`
    (default GSM8K's `#### N`), else, with `last_number`, the last number in the text.
    Thousands separators are removed ("1,234" -> "1234")."""
    from ft_pipeline.core.task import GSM8K_ANSWER

    if not text:
        return None
    match = user_regex.search(pattern, text, "answer_pattern") if pattern else re.search(GSM8K_ANSWER, text)
    if match:
        found = match.group(1) if match.re.groups and match.group(1) is not None else match.group(0)
    elif last_number:
        numbers = _LAST_NUMBER.findall(text)
        found = numbers[-1] if numbers else None
    else:
        found = None
    found = _THOUSANDS.sub("", found).strip().rstrip(".") if found else None
    return found or None


# --- what the task reads from an answer ----------------------------------------------------


def answer_label(task: "TaskConfig", answer_text: str | None) -> str | None:
    """A record's label for label review and the bias audit: a classification answer itself,
    the task's label field of a structured answer, None for other types."""
    if task.type == "classification":
        return (answer_text.strip() or None) if isinstance(answer_text, str) else None
    if task.type == "structured" and task.record_label_field:
        return _scalar((parse_json_answer(answer_text) or {}).get(task.record_label_field))
    return None


def answer_field(task: "TaskConfig", answer_text: str | None, field: str) -> str | None:
    """The value the bias audit reads as an outcome: `label` is answer_label, any other name a
    field of the JSON answer."""
    from ft_pipeline.core.task import ANSWER_LABEL

    if field == ANSWER_LABEL:
        return answer_label(task, answer_text)
    return _scalar((parse_json_answer(answer_text) or {}).get(field))


def _scalar(value) -> str | None:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, (str, int, float)) else None


def answer_instructions(task: "TaskConfig", labels=None) -> str:
    """What an answer must look like for the task's verifier, in words: appended to the task's
    system prompt for the prompt-only baseline, which has no training to learn the form from.
    `labels` (classification) default to the task's; a structured schema's enums are listed."""
    from ft_pipeline.core.task import GSM8K_ANSWER

    if task.type == "classification":
        allowed = labels or task.labels
        return f"Answer with exactly one of these labels and nothing else: {', '.join(allowed)}." if allowed else ""
    if task.type == "structured":
        properties = (task.schema or {}).get("properties") or {}
        keys = task.answer_key_fields or list(properties)
        text = "Reply with only a JSON object" + (f" with the keys {', '.join(keys)}" if keys else "") + "."
        enums = [f"{key}: {', '.join(map(str, spec['enum']))}" for key, spec in properties.items()
                 if isinstance(spec, dict) and isinstance(spec.get("enum"), list)]
        return text + (f" Allowed values — {'; '.join(enums)}." if enums else "")
    if task.type == "math" and task.answer_regex == GSM8K_ANSWER:
        return "Work it out step by step, then give the final answer on its own last line as: #### <number>"
    return ""


def check_answer(task: "TaskConfig", answer_text, labels=None) -> str | None:
    """Why a reference answer does not fit the task's type, or None when it fits.

    The reason is a short phrase naming the rule, never the answer's content, so it can go in an
    error message or a quarantine reason. `labels` (else the task's) are the allowed classes.
    A preference answer is the pair (chosen, rejected), or one side of it.
    """
    if task.type == "preference" and isinstance(answer_text, (tuple, list)):
        for side, text in zip(("chosen", "rejected"), answer_text):
            if not isinstance(text, str) or not text.strip():
                return f"{side} is empty"
        return None
    if not isinstance(answer_text, str) or not answer_text.strip():
        return "empty answer"
    if task.type == "classification":
        allowed = labels or task.labels
        if allowed and answer_text.strip() not in set(map(str, allowed)):
            return "not one of the task's labels"
    elif task.type == "structured":
        return _check_structured(task, answer_text)
    elif task.type == "math" and extract_number(answer_text, task.answer_regex) is None:
        return "no final answer found with the task's answer_pattern"
    return None


def _check_structured(task: "TaskConfig", answer_text: str) -> str | None:
    obj = strict_json_object(answer_text)
    if obj is None:
        return "not a JSON object"
    if task.schema is not None:
        error = schema_error(task.schema, obj)
        if error:
            return f"fails the task's schema ({error})"
    for key in task.answer_key_fields or []:
        if key not in obj:
            return f"lacks key field {key!r}"
    return None


def schema_error(schema: dict, obj) -> str | None:
    """Where `obj` breaks `schema`, as the schema path of the rule it broke (never the value)."""
    from jsonschema import validators

    validator = validators.validator_for(schema)(schema)
    error = next(iter(sorted(validator.iter_errors(obj), key=lambda e: list(e.schema_path))), None)
    if error is None:
        return None
    return "/".join(str(part) for part in error.schema_path) or "top level"
