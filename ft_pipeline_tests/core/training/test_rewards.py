"""GRPO rewards per task type, called the way trl calls them."""
from __future__ import annotations

import pytest

from ft_pipeline.core.task import TaskConfig
from ft_pipeline.core.training.rewards import reward_funcs

SCHEMA = {
    "type": "object",
    "properties": {"intent": {"type": "string"}, "priority": {"type": "string", "enum": ["low", "high"]}},
    "required": ["intent", "priority"],
    "additionalProperties": False,
}
TASKS = {
    "structured": TaskConfig(name="tickets", type="structured", schema=SCHEMA),
    "math": TaskConfig(name="gsm", type="math"),
    "classification": TaskConfig(name="sentiment", type="classification", labels=["positive", "negative", "neutral"]),
    "generation": TaskConfig(name="summaries", type="generation", max_new_tokens=8),
}
TICKET = '{"intent": "billing_dispute", "priority": "high"}'


def conv(text):
    return [{"role": "assistant", "content": text}]


def rewards(kind: str, completion: str, reference: str, **kw) -> tuple[float, float]:
    """(correctness, format) as trl would compute them, with its extra keyword arguments."""
    correctness, fmt = reward_funcs(TASKS[kind])
    call = dict(prompts=[[{"role": "user", "content": "q"}]], completions=[conv(completion)], reference=[reference],
                trainer_state=None, log_extra=None, log_metric=None, **kw)
    return correctness(**call)[0], fmt(**call)[0]


@pytest.mark.parametrize("kind, completion, reference, correct, form", [
    # structured: correct = exact match on the key fields; format = nothing but a JSON object fitting the schema
    ("structured", TICKET, TICKET, 1.0, 1.0),
    ("structured", '{"priority":"high","intent":"billing_dispute"}', TICKET, 1.0, 1.0),
    ("structured", '{"intent": "claim_status", "priority": "high"}', TICKET, 0.0, 1.0),
    ("structured", '{"intent": "billing_dispute"}', TICKET, 0.0, 0.0),
    ("structured", '{"intent": "billing_dispute", "priority": "asap"}', TICKET, 0.0, 0.0),
    ("structured", '{"intent": "billing_dispute", "priority": "high", "x": 1}', TICKET, 1.0, 0.0),
    ("structured", f"Sure! {TICKET}", TICKET, 1.0, 0.0),
    ("structured", '{"intent": "billing_dispute", "priority": ', TICKET, 0.0, 0.0),
    ("structured", "", TICKET, 0.0, 0.0),
    # math: correct = numeric match of the final answers; format = the task's answer_pattern
    ("math", "The answer is 42", "6 * 7 = 42\n#### 42", 1.0, 0.0),
    ("math", "6 * 7 = 42\n#### 42", "#### 42", 1.0, 1.0),
    ("math", "#### 41", "#### 42", 0.0, 1.0),
    ("math", "#### 1,000", "#### 1000", 1.0, 1.0),
    ("math", "no idea", "#### 42", 0.0, 0.0),
    # classification: correct = accuracy after parsing; format = names exactly one label
    ("classification", "Positive.", "positive", 1.0, 1.0),
    ("classification", "I think it is negative", "positive", 0.0, 1.0),
    ("classification", "positive or negative", "positive", 0.0, 0.0),
    ("classification", "great", "positive", 0.0, 0.0),
    # generation: correct = ROUGE-L; format = non-empty within max_new_tokens
    ("generation", "the cat sat on the mat", "the cat sat on the mat", 1.0, 1.0),
    ("generation", "the cat on the mat", "the cat sat on the mat", 10 / 11, 1.0),
    ("generation", "   ", "the cat sat", 0.0, 0.0),
    ("generation", "one two three four five six seven eight nine", "one two", 2 / 11 * 2, 0.0),
])
def test_rewards_per_type(kind, completion, reference, correct, form):
    assert rewards(kind, completion, reference) == (pytest.approx(correct), form)


def test_generation_format_counts_tokens_when_trl_passes_them():
    assert rewards("generation", "short", "short", completion_ids=[list(range(8))])[1] == 1.0
    assert rewards("generation", "short", "short", completion_ids=[list(range(9))])[1] == 0.0


def test_one_reward_per_completion_in_order_plain_or_conversational():
    correctness, fmt = reward_funcs(TASKS["structured"])
    completions = [conv(TICKET), "nope", conv('{"intent": "x", "priority": "low"}')]
    assert correctness(prompts=[None] * 3, completions=completions, reference=[TICKET] * 3) == [1.0, 0.0, 0.0]
    assert fmt(prompts=[None] * 3, completions=completions, reference=[TICKET] * 3) == [1.0, 0.0, 1.0]
    assert [f.__name__ for f in (correctness, fmt)] == ["correctness_reward", "format_reward"]  # trl's log keys


def test_classification_reads_the_full_label_set_not_the_batch():
    # Against this batch's labels alone ("positive"), naming every label would parse as "positive".
    correctness, fmt = reward_funcs(TaskConfig(name="s", type="classification"), labels=["positive", "negative"])
    hedge = dict(completions=["positive or negative"], reference=["positive"])
    assert correctness(**hedge) == [0.0] and fmt(**hedge) == [0.0]


def test_preference_task_has_no_grpo_reward():
    with pytest.raises(ValueError, match="train it with DPO"):
        reward_funcs(TaskConfig(name="p", type="preference"))
