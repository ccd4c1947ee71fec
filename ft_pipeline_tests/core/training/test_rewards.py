import pytest

from ft_pipeline.core.training.rewards import exact_match_reward, format_reward, parse_answer

REF = '{"intent": "billing_dispute", "priority": "high"}'


def conv(text):
    return [{"role": "assistant", "content": text}]


@pytest.mark.parametrize(
    ("completion", "fmt", "exact"),
    [
        ('{"intent": "billing_dispute", "priority": "high"}', 1.0, 1.0),
        ('{"priority":"high","intent":"billing_dispute"}', 1.0, 1.0),  # order and spacing don't matter
        ('{"intent": "claim_status", "priority": "high"}', 1.0, 0.0),  # valid, wrong
        ('{"intent": "billing_dispute"}', 0.0, 0.0),  # missing key
        ('{"intent": "billing_dispute", "priority": "high", "x": 1}', 0.0, 0.0),  # extra key
        ('Sure! {"intent": "billing_dispute", "priority": "high"}', 0.0, 0.0),  # chatter around it
        ('{"intent": "billing_dispute", "priority": ', 0.0, 0.0),  # truncated
        ('["billing_dispute", "high"]', 0.0, 0.0),  # JSON, not an object
        ("", 0.0, 0.0),
    ],
)
def test_rewards(completion, fmt, exact):
    assert format_reward([conv(completion)], [REF]) == [fmt]
    assert exact_match_reward([conv(completion)], [REF]) == [exact]
    assert format_reward([completion], [REF]) == [fmt]  # plain-text completions too


def test_one_reward_per_completion_in_order():
    completions = [conv(REF), conv("nope"), conv('{"intent": "x", "priority": "y"}')]
    assert exact_match_reward(completions, [REF] * 3) == [1.0, 0.0, 0.0]
    assert format_reward(completions, [REF] * 3) == [1.0, 0.0, 1.0]


def test_parse_answer_is_strict():
    assert parse_answer(' {"a": 1}\n') == {"a": 1}
    assert parse_answer('x {"a": 1}') is None
