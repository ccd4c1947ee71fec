"""Reads the export directory (train/eval/test chat JSONL, preference JSONL) into trl datasets.

Every line is validated as it streams past; a bad line stops training with file, line and
field named — a model trained on silently dropped rows would not be the model the audit describes.
The rows go through `datasets.Dataset.from_generator`, which writes Arrow to disk in batches,
so memory does not grow with the file.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from ft_pipeline.core.data.canaries import CANARY_FILE, planted_chats
from ft_pipeline.core.digest import sha256_file

ROLES = {"system", "user", "assistant"}
CHAT_FILES = {"train": "train.jsonl", "eval": "eval.jsonl", "test": "test.jsonl"}
PREFERENCE_FILES = {"train": "preference_train.jsonl", "eval": "preference_eval.jsonl"}
TASK_FILE = "task.yaml"  # the task the export was made for; GRPO's rewards read its verifier


class DataError(ValueError):
    """A bad export file: the message names file, line and field (never the text itself)."""


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: a line must be a JSON object")
            yield lineno, row


def _check_messages(msgs, where: str, field: str, last_role: str | None = None) -> list[dict]:
    if not isinstance(msgs, list) or not msgs:
        raise DataError(f"{where}: field {field!r} must be a non-empty list of messages")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise DataError(f"{where}: field {field}[{i}] must be {{role: system|user|assistant, content: str}}")
    if last_role and msgs[-1]["role"] != last_role:
        raise DataError(f"{where}: field {field!r} must end with an {last_role} turn")
    return [{"role": m["role"], "content": m["content"]} for m in msgs]


def iter_chat(path: Path) -> Iterator[dict]:
    """{"messages": [...]} rows whose last turn is the assistant's answer."""
    for lineno, row in iter_jsonl(path):
        yield {"messages": _check_messages(row.get("messages"), f"{path}:{lineno}", "messages", "assistant")}


def iter_grpo(path: Path) -> Iterator[dict]:
    """GRPO rows from the chat export: the prompt turns, and the answer as the reward's reference."""
    for chat in iter_chat(path):
        msgs = chat["messages"]
        if len(msgs) < 2:
            raise DataError(f"{path}: a GRPO row needs at least one prompt turn before the answer")
        yield {"prompt": msgs[:-1], "reference": msgs[-1]["content"]}


def iter_preference(path: Path) -> Iterator[dict]:
    for lineno, row in iter_jsonl(path):
        where = f"{path}:{lineno}"
        yield {
            "prompt": _check_messages(row.get("prompt"), where, "prompt"),
            "chosen": _check_messages(row.get("chosen"), where, "chosen", "assistant"),
            "rejected": _check_messages(row.get("rejected"), where, "rejected", "assistant"),
        }


def _rows(kind: str, path: str, sha256: str):  # sha256 is only there to key the datasets cache
    readers = {"chat": iter_chat, "grpo": iter_grpo, "preference": iter_preference,
               "planted": lambda p: planted_chats(p.parent)}
    yield from readers[kind](Path(path))


def _dataset(kind: str, path: Path):
    from datasets import Dataset

    from ft_pipeline.core import paths

    # The cache key must change when the file does: the path alone would serve stale rows.
    try:
        return Dataset.from_generator(
            _rows, gen_kwargs={"kind": kind, "path": str(path), "sha256": sha256_file(path)},
            cache_dir=str(paths.datasets_cache()),
        )
    except Exception as exc:
        # datasets wraps generator errors in DatasetGenerationError; surface our own message.
        cause = exc
        while cause is not None and not isinstance(cause, DataError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise DataError(str(cause)) from None
        raise


def _nonempty(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0 and any(True for _ in iter_jsonl(path))


def load_datasets(method: str, data_dir: Path) -> tuple:
    """(train, eval or None) datasets in the format trl expects for `method`."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data directory not found: {data_dir}")
    files, kind = {
        "sft": (CHAT_FILES, "chat"),
        "grpo": (CHAT_FILES, "grpo"),
        "dpo": (PREFERENCE_FILES, "preference"),
    }[method]
    train_path, eval_path = data_dir / files["train"], data_dir / files["eval"]
    if not _nonempty(train_path):
        raise FileNotFoundError(f"{method}: training file missing or empty: {train_path}")
    train = _dataset(kind, train_path)
    canaries = data_dir / CANARY_FILE
    if kind == "chat" and method == "sft" and _nonempty(canaries):
        from datasets import concatenate_datasets

        # The task's memorization gate planted secret canaries: train on them as on any record.
        train = concatenate_datasets([train, _dataset("planted", canaries)])
    evaluation = _dataset(kind, eval_path) if _nonempty(eval_path) else None
    return train, evaluation


def data_digest(method: str, data_dir: Path) -> str:
    """sha256 of the files `method` trains and evaluates on: what a checkpoint was trained on."""
    files = PREFERENCE_FILES if method == "dpo" else CHAT_FILES
    parts = [f"{role}:{sha256_file(data_dir / files[role]) if (data_dir / files[role]).is_file() else '-'}"
             for role in ("train", "eval")]
    if method == "sft" and (data_dir / CANARY_FILE).is_file():  # planted canaries are trained on too
        parts.append(f"canaries:{sha256_file(data_dir / CANARY_FILE)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def export_task(data_dir: Path):
    """The TaskConfig the export directory was made for (its task.yaml)."""
    from ft_pipeline.core.task import TaskConfig

    path = Path(data_dir) / TASK_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no task file; GRPO scores answers with the task's verifier, "
                                f"so the export directory must hold the {TASK_FILE} jsonl_export writes")
    return TaskConfig.from_yaml(path)


def count_tokens(method: str, dataset, tokenizer, max_completion_length: int = 0) -> int:
    """Tokens one epoch feeds the model, through the same chat template the trainer uses."""

    def n(messages, **kw) -> int:
        out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kw)
        return len(out["input_ids"])

    total = 0
    for row in dataset:
        if method == "sft":
            total += n(row["messages"])
        elif method == "dpo":
            total += n(row["prompt"] + row["chosen"]) + n(row["prompt"] + row["rejected"])
        else:  # grpo: the prompt plus at most max_completion_length sampled tokens
            total += n(row["prompt"], add_generation_prompt=True) + max_completion_length
    return total
