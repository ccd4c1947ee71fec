"""The prompt-only baseline's instructions: the task's system prompt plus what the task file says
about the answer (answers.answer_instructions), spelled out so an untuned model has a fair chance
without any training.

A fine-tuned model learns the label set, the schema or the answer format from examples; a
prompt-only baseline must be told. This is what prompt engineering can do without a human in the
loop, and so the bar a fine-tune has to clear.
"""
from __future__ import annotations

from typing import Iterable

from ft_pipeline.core.answers import answer_instructions, answer_label, last_assistant
from ft_pipeline.core.task import TaskConfig


def label_set(task: TaskConfig, train_records: Iterable[dict]) -> list[str] | None:
    """classification: the task's labels, else the labels found in the training answers."""
    if task.type != "classification":
        return None
    if task.labels:
        return list(task.labels)
    found = {answer_label(task, last_assistant(r)) for r in train_records}
    return sorted(label for label in found if label)


def baseline_system_prompt(task: TaskConfig, labels: list[str] | None = None) -> str:
    parts = [task.system_prompt.strip(), answer_instructions(task, labels)]
    return "\n".join(part for part in parts if part)
