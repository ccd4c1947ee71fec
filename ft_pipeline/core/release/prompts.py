"""The prompt-only baseline's instructions: the task's system prompt plus what the task file says
about the answer, spelled out so an untuned model has a fair chance without any training.

A fine-tuned model learns the label set, the schema or the answer format from examples; a
prompt-only baseline must be told. This is what prompt engineering can do without a human in the
loop, and so the bar a fine-tune has to clear.
"""
from __future__ import annotations

import json

from ft_pipeline.core.task import GSM8K_ANSWER, TaskConfig


def baseline_system_prompt(task: TaskConfig, labels: list[str] | None = None) -> str:
    parts = [task.system_prompt.strip()] if task.system_prompt.strip() else []
    if task.type == "classification":
        labels = labels or task.labels
        if labels:
            parts.append("Answer with exactly one of these labels and nothing else: " + ", ".join(labels) + ".")
    elif task.type == "structured":
        if task.schema:
            parts.append("Reply with only a JSON object that fits this JSON Schema: "
                         + json.dumps(task.schema, separators=(",", ":")))
        else:
            parts.append("Reply with only a JSON object.")
    elif task.type == "math":
        if task.answer_pattern in (None, GSM8K_ANSWER):
            parts.append("Reason step by step, then give the final answer on its own line as '#### <number>'.")
    return "\n".join(parts)
