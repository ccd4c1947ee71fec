"""GRPO rewards from the task's own verifier: is the answer right, and is it in the task's form.

Correctness is the per-item primary metric the evaluation reports (metrics.score): numeric match
for math, accuracy for classification, exact match for structured, ROUGE-L for generation, so
GRPO optimizes what the release gates judge. Format rewards the shape an answer must have for
the verifier to read it reliably.

trl calls each reward function as f(prompts=..., completions=..., completion_ids=...,
<dataset columns>...) and expects one float per completion; `reference` is the column
data.iter_grpo adds. trl logs each function under its __name__.
"""
from __future__ import annotations

from typing import Callable

from ft_pipeline.core.answers import extract_number, parse_label, schema_error, strict_json_object
from ft_pipeline.core.metrics import score

Reward = Callable[..., list[float]]


def completion_text(completion) -> str:
    """Conversational completions arrive as [{"role": "assistant", "content": ...}]."""
    if isinstance(completion, list):
        return "".join(m.get("content") or "" for m in completion if isinstance(m, dict))
    return "" if completion is None else str(completion)


def reward_funcs(task, labels: list[str] | None = None) -> list[Reward]:
    """[correctness_reward, format_reward] for `task`; `labels` (classification) default to the
    task's. Pass the full label set: scored against a batch's labels only, an answer naming
    every label would read as the batch's one label."""
    if task.type == "preference":
        raise ValueError(f"task {task.name}: a preference task has no verifiable answer for GRPO; train it with DPO")
    labels = labels or task.labels

    def correctness_reward(completions, reference, **_) -> list[float]:
        texts = [completion_text(c) for c in completions]
        return score(task, texts, list(reference), labels=labels).primary_items()

    def format_reward(completions, completion_ids=None, **_) -> list[float]:
        lengths = [len(ids) for ids in completion_ids] if completion_ids is not None else [None] * len(completions)
        return [float(well_formed(task, completion_text(c), labels, n)) for c, n in zip(completions, lengths)]

    return [correctness_reward, format_reward]


def well_formed(task, text: str, labels: list[str] | None = None, n_tokens: int | None = None) -> bool:
    """Does `text` have the form the task's verifier reads? math: a final answer in the task's
    answer_pattern (the last-number fallback is for scoring, not a format); structured: nothing
    but a JSON object that fits the schema; classification: names exactly one label; generation:
    a non-empty answer within the task's token budget."""
    if task.type == "math":
        return extract_number(text, task.answer_regex, last_number=False) is not None
    if task.type == "structured":
        answer = strict_json_object(text)
        return answer is not None and (task.schema is None or schema_error(task.schema, answer) is None)
    if task.type == "classification":
        return parse_label(text, labels or task.labels) is not None
    n_tokens = n_tokens if n_tokens is not None else len(text.split())
    return bool(text.strip()) and n_tokens <= task.max_new_tokens
