"""The record schema: one raw record in, one normalized dict out, or a RecordError.

Raw formats (DESIGN.md): `messages`, `prompt`+`completion` (SFT), `prompt`+`chosen`+`rejected`
(DPO), `prompt`+`reference` (GRPO). The normalized dict is the brief's schema; keys not in it are
dropped. Errors name the field and the kind of problem, never the value: the value may be PII and
errors end up in logs and metadata.

Control characters (C0/C1 other than tab, newline, carriage return) make a record quarantined
rather than silently stripped: they mean a corrupted export or binary data, and editing text we
cannot read back is not a decision a pipeline should make on its own.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

ROLES = ("system", "user", "assistant")
SPLITS = ("train", "eval", "test")
TEXT_FIELDS_HELP = "messages[].content, chosen, rejected, reference"

# Quarantine reasons, one word each so they aggregate into counts.
NOT_OBJECT = "not_object"
MISSING = "missing_field"
EMPTY = "empty_field"
WRONG_TYPE = "wrong_type"
UNKNOWN_ROLE = "unknown_role"
BAD_TIMESTAMP = "bad_timestamp"
BAD_VALUE = "invalid_value"
AMBIGUOUS = "ambiguous_format"
CONTROL_CHARS = "control_characters"
BAD_UNICODE = "invalid_unicode"
NO_ASSISTANT = "no_assistant_turn"

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class RecordError(ValueError):
    """A record that cannot be normalized. `reason` is one of the constants above."""

    def __init__(self, reason: str, field: str | None = None):
        self.reason = reason
        self.field = field
        super().__init__(f"{reason}" + (f" (field {field!s})" if field else ""))


def _present(obj: dict, key: str) -> bool:
    return obj.get(key) is not None


def _text(value: Any, field: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise RecordError(WRONG_TYPE, field)
    if not allow_empty and not value.strip():
        raise RecordError(EMPTY, field)
    if _CONTROL.search(value):
        raise RecordError(CONTROL_CHARS, field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from "\ud800"-style JSON escapes
        raise RecordError(BAD_UNICODE, field) from None
    return value


def _optional_text(obj: dict, key: str) -> str | None:
    return _text(obj[key], key) if _present(obj, key) else None


def _messages(value: Any, field: str) -> list[dict]:
    if not isinstance(value, list):
        raise RecordError(WRONG_TYPE, field)
    if not value:
        raise RecordError(EMPTY, field)
    out = []
    for i, turn in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(turn, dict):
            raise RecordError(WRONG_TYPE, where)
        if not _present(turn, "role"):
            raise RecordError(MISSING, f"{where}.role")
        if not isinstance(turn["role"], str):
            raise RecordError(WRONG_TYPE, f"{where}.role")
        if turn["role"] not in ROLES:
            raise RecordError(UNKNOWN_ROLE, f"{where}.role")
        if not _present(turn, "content"):
            raise RecordError(MISSING, f"{where}.content")
        out.append({"role": turn["role"], "content": _text(turn["content"], f"{where}.content")})
    return out


def _prompt_turns(obj: dict) -> list[dict] | None:
    """`messages` or `prompt` (a string, or a list of turns as in trl's conversational format)."""
    if _present(obj, "messages") and _present(obj, "prompt"):
        raise RecordError(AMBIGUOUS, "messages")
    if _present(obj, "messages"):
        return _messages(obj["messages"], "messages")
    if _present(obj, "prompt"):
        if isinstance(obj["prompt"], list):
            return _messages(obj["prompt"], "prompt")
        return [{"role": "user", "content": _text(obj["prompt"], "prompt")}]
    return None


def _task_and_turns(obj: dict) -> tuple[str, list[dict], dict]:
    turns = _prompt_turns(obj)
    if turns is None:
        has_answer = any(_present(obj, k) for k in ("completion", "chosen", "rejected", "reference"))
        raise RecordError(MISSING, "prompt" if has_answer else "messages")
    is_dpo = _present(obj, "chosen") or _present(obj, "rejected")
    is_grpo = _present(obj, "reference")
    is_sft = _present(obj, "completion")
    if is_dpo + is_grpo + is_sft > 1:
        raise RecordError(AMBIGUOUS, "chosen" if is_dpo else "reference")
    if is_dpo:
        for key in ("chosen", "rejected"):
            if not _present(obj, key):
                raise RecordError(MISSING, key)
        extra = {"chosen": _text(obj["chosen"], "chosen"), "rejected": _text(obj["rejected"], "rejected")}
        return "dpo", turns, extra
    if is_grpo:
        return "grpo", turns, {"reference": _text(obj["reference"], "reference")}
    if is_sft:
        turns = turns + [{"role": "assistant", "content": _text(obj["completion"], "completion")}]
    elif _present(obj, "prompt"):
        raise RecordError(MISSING, "completion")
    if not any(t["role"] == "assistant" for t in turns):
        raise RecordError(NO_ASSISTANT, "messages")
    return "chat", turns, {}


def _record_id(obj: dict) -> str:
    if not _present(obj, "id"):
        raise RecordError(MISSING, "id")
    value = obj["id"]
    # Integer ids are common in Parquet/CSV exports and unambiguous; bools are not ids.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value, "id").strip()


def _verified_at(obj: dict) -> str | None:
    if not _present(obj, "verified_at"):
        return None
    value = _text(obj["verified_at"], "verified_at")
    try:
        datetime.fromisoformat(value.strip())
    except ValueError:
        raise RecordError(BAD_TIMESTAMP, "verified_at") from None
    return value.strip()


def _label_verified(obj: dict) -> bool:
    value = obj.get("label_verified", False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RecordError(WRONG_TYPE, "label_verified")
    return value


def _labels(obj: dict) -> list[dict] | None:
    if not _present(obj, "labels"):
        return None
    value = obj["labels"]
    if not isinstance(value, list):
        raise RecordError(WRONG_TYPE, "labels")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise RecordError(WRONG_TYPE, f"labels[{i}]")
        for key in ("annotator", "label"):
            if not _present(item, key):
                raise RecordError(MISSING, f"labels[{i}].{key}")
        out.append({"annotator": _text(item["annotator"], f"labels[{i}].annotator"),
                    "label": _text(item["label"], f"labels[{i}].label")})
    return out


def _attributes(obj: dict) -> dict[str, str]:
    if not _present(obj, "attributes"):
        return {}
    value = obj["attributes"]
    if not isinstance(value, dict):
        raise RecordError(WRONG_TYPE, "attributes")
    out = {}
    for key, item in value.items():
        field = f"attributes.{key}" if isinstance(key, str) and len(key) <= 64 else "attributes"
        if item is None:
            continue  # an unknown attribute is absent, which the bias audit already handles
        # Numbers and bools are stringified so the audit sees one type per attribute.
        if isinstance(item, (bool, int, float)):
            item = str(item)
        out[_text(key, "attributes")] = _text(item, field)
    return out


def _split(obj: dict) -> str | None:
    if not _present(obj, "split"):
        return None
    value = _text(obj["split"], "split")
    if value not in SPLITS:
        raise RecordError(BAD_VALUE, "split")
    return value


def parse_record(obj: Any) -> dict:
    """Normalizes one raw record; raises RecordError naming the first problem found."""
    if not isinstance(obj, dict):
        raise RecordError(NOT_OBJECT, None)
    record_id = _record_id(obj)
    task, turns, extra = _task_and_turns(obj)
    record = {"id": record_id, "task": task, "messages": turns, **extra}
    record["label_verified"] = _label_verified(obj)
    record["annotator"] = _optional_text(obj, "annotator")
    record["verified_at"] = _verified_at(obj)
    labels = _labels(obj)
    if labels is not None:
        record["labels"] = labels
    record["attributes"] = _attributes(obj)
    record["source"] = _optional_text(obj, "source")
    record["split"] = _split(obj)
    return record


def text_fields(record: dict) -> list[tuple[str, str]]:
    """(field path, text) for every field that can hold PII, in a fixed order."""
    out = [(f"messages[{i}].content", turn["content"]) for i, turn in enumerate(record["messages"])]
    out += [(key, record[key]) for key in ("chosen", "rejected", "reference") if key in record]
    return out


def with_texts(record: dict, texts: list[str]) -> dict:
    """A copy of `record` with its text fields replaced, in `text_fields` order."""
    new = dict(record)
    n = len(record["messages"])
    new["messages"] = [{"role": t["role"], "content": texts[i]} for i, t in enumerate(record["messages"])]
    rest = iter(texts[n:])
    for key in ("chosen", "rejected", "reference"):
        if key in record:
            new[key] = next(rest)
    return new
