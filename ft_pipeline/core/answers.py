"""The structured answer the demo task trains for, and how a record's label is read from it.

Kept apart from evaluation so the bias audit, label checks and export can read labels without
pulling in model code.
"""
from __future__ import annotations

import json


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


def parse_json_answer(text: str | None) -> dict | None:
    """The first JSON object in `text`, or None; models often wrap the object in prose."""
    if not text:
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


def record_label(record: dict, field: str = "intent") -> str | None:
    """The label `field` of a record's answer (e.g. its intent), or None when it has none."""
    answer = parse_json_answer(last_assistant(record))
    value = answer.get(field) if answer else None
    return value if isinstance(value, str) else None


def label_space(records, fields: tuple[str, ...] = ("intent", "priority")) -> dict[str, list[str]]:
    """The values each answer field takes in `records` (normally the training split)."""
    seen: dict[str, set] = {f: set() for f in fields}
    for record in records:
        answer = parse_json_answer(last_assistant(record)) or {}
        for f in fields:
            if isinstance(answer.get(f), str):
                seen[f].add(answer[f])
    return {f: sorted(values) for f, values in seen.items()}


def task_system_prompt(space: dict[str, list[str]]) -> str:
    """The prompt-only baseline's instructions: everything a model needs to answer without tuning."""
    fields = ", ".join(f'"{f}"' for f in space)
    allowed = "; ".join(f"{f}: {', '.join(values)}" for f, values in space.items())
    example = "{" + ", ".join(f'"{f}": "{values[0]}"' for f, values in space.items() if values) + "}"
    return (
        "You triage customer messages. Reply with only a JSON object with the keys "
        f"{fields} and nothing else. Allowed values — {allowed}. Example reply: {example}"
    )


def prompt_turns(record: dict) -> list[dict]:
    """The turns a model sees: everything before the final assistant answer."""
    messages = record["messages"]
    return messages[:-1] if messages and messages[-1]["role"] == "assistant" else messages


# --- reading answers the way the task declares them -------------------------------------------

def answer_label(task, text: str | None) -> str | None:
    """A record's label as its task defines it: a classification answer as a whole, a structured
    answer's label field; other task types have none."""
    if text is None:
        return None
    if task.type == "classification":
        return text.strip() or None
    field = task.record_label_field
    if task.type == "structured" and field:
        answer = parse_json_answer(text)
        value = answer.get(field) if answer else None
        return value if isinstance(value, str) else None
    return None


def answer_field(task, text: str | None, field: str) -> str | None:
    """The value of an answer field (the bias audit's outcome); `label` means the record's label."""
    if field == "label":
        return answer_label(task, text)
    answer = parse_json_answer(text)
    value = answer.get(field) if answer else None
    return str(value) if isinstance(value, (str, int, float, bool)) else None


def check_answer(task, text: str | None, labels: list[str] | None = None) -> str | None:
    """Why a reference answer does not fit the task's type (None when it fits); never the answer."""
    if not text or not text.strip():
        return "empty_answer"
    if task.type == "classification" and labels and text.strip() not in labels:
        return "unknown_label"
    if task.type == "structured" and parse_json_answer(text) is None:
        return "not_json"
    return None
