"""GRPO rewards computed from the dataset itself: is the answer valid JSON, and is it the right one.

trl calls each reward function as f(prompts=..., completions=..., <dataset columns>...) and
expects one float per completion; `reference` is the column data.iter_grpo adds.
"""
from __future__ import annotations

import json


def completion_text(completion) -> str:
    """Conversational completions arrive as [{"role": "assistant", "content": ...}]."""
    if isinstance(completion, list):
        return "".join(m.get("content", "") for m in completion if isinstance(m, dict))
    return str(completion)


def parse_answer(text: str) -> dict | None:
    """The answer as a JSON object, or None. Strict: surrounding chatter makes it invalid."""
    try:
        value = json.loads(text.strip())
    except (json.JSONDecodeError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def format_reward(completions, reference, **_) -> list[float]:
    """1.0 when the completion is a JSON object with exactly the reference's keys."""
    rewards = []
    for completion, ref in zip(completions, reference):
        answer, expected = parse_answer(completion_text(completion)), parse_answer(ref)
        keys_ok = answer is not None and (expected is None or set(answer) == set(expected))
        rewards.append(1.0 if keys_ok else 0.0)
    return rewards


def exact_match_reward(completions, reference, **_) -> list[float]:
    """1.0 when the parsed completion equals the parsed reference (key order and spacing ignored)."""
    rewards = []
    for completion, ref in zip(completions, reference):
        answer, expected = parse_answer(completion_text(completion)), parse_answer(ref)
        if expected is None:  # a free-text reference: compare the stripped strings
            rewards.append(1.0 if completion_text(completion).strip() == ref.strip() else 0.0)
        else:
            rewards.append(1.0 if answer == expected else 0.0)
    return rewards


REWARD_FUNCS = [format_reward, exact_match_reward]
