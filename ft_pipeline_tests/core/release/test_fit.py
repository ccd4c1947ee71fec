"""The fit assessment (prompt / RAG / fine-tune) and the prompt-only baseline's prompt."""
from __future__ import annotations

import pytest

from ft_pipeline.core.release.fit import assess_fit, build_prompt, render_markdown

CLASSIFICATION = {"task": "classification", "needs_fresh_facts": False}


def _baseline(exact_match, json_valid=1.0, schema_valid=1.0, intent_acc=None, n=50):
    return {"exact_match": exact_match, "intent_acc": intent_acc if intent_acc is not None else exact_match,
            "json_valid": json_valid, "schema_valid": schema_valid, "rouge_l": 0.5, "n": n}


def test_baseline_meeting_target_means_prompt_engineering():
    out = assess_fit(_baseline(0.86), 0.8, task_profile=CLASSIFICATION)
    assert out["recommendation"] == "prompt_engineering"
    assert "0.860" in out["reasons"][0] and "0.800" in out["reasons"][0]
    assert out["baseline"]["exact_match"] == 0.86 and out["target"] == 0.8


def test_close_to_target_with_clean_format_means_prompt_engineering():
    out = assess_fit(_baseline(0.78), 0.8, task_profile=CLASSIFICATION)
    assert out["recommendation"] == "prompt_engineering"


@pytest.mark.parametrize("profile", [{"task": "classification", "needs_fresh_facts": True}, {"task": "knowledge"}])
def test_missing_facts_mean_rag(profile):
    out = assess_fit(_baseline(0.3, json_valid=0.95, schema_valid=0.9), 0.8, task_profile=profile)
    assert out["recommendation"] == "rag"
    assert any("0.300" in r for r in out["reasons"])
    assert any("90.0%" in r for r in out["reasons"])


def test_format_failures_on_classification_mean_fine_tune():
    out = assess_fit(_baseline(0.1, json_valid=0.4, schema_valid=0.25, intent_acc=0.2), 0.8, task_profile=CLASSIFICATION)
    assert out["recommendation"] == "fine_tune"
    text = " ".join(out["reasons"])
    for number in ("0.100", "0.700", "75.0%", "40.0%", "25.0%"):
        assert number in text, f"reasons do not cite {number}"
    assert out["failure_profile"] == {"format_failures": 0.75, "content_failures": 0.15}


def test_well_formed_but_mislabelled_far_below_target_means_fine_tune():
    out = assess_fit(_baseline(0.4, intent_acc=0.5), 0.8, task_profile=CLASSIFICATION)
    assert out["recommendation"] == "fine_tune"
    assert any("mislabelled" in r and "0.500" in r for r in out["reasons"])
    assert "fine tune" in render_markdown(out)


def test_target_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="target"):
        assess_fit(_baseline(0.5), 1.5, task_profile=CLASSIFICATION)


CONVERSATION = [
    {"role": "system", "content": "original system"},
    {"role": "user", "content": "my card was charged twice"},
]
SHOT = {"id": "s1", "messages": [
    {"role": "system", "content": "shot system"},
    {"role": "user", "content": "please update my address"},
    {"role": "assistant", "content": '{"intent": "address_change", "priority": "low"}'},
]}


def test_build_prompt_replaces_system_and_prepends_shots():
    turns = build_prompt(CONVERSATION, "Reply with JSON", [SHOT])
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "user"]
    assert turns[0]["content"] == "Reply with JSON"
    assert turns[1]["content"] == "please update my address"
    assert turns[-1] == CONVERSATION[-1]


def test_build_prompt_keeps_original_system_without_replacement():
    assert build_prompt(CONVERSATION, None, []) == CONVERSATION
    no_system = build_prompt(CONVERSATION[1:], "Reply with JSON")
    assert no_system[0] == {"role": "system", "content": "Reply with JSON"} and len(no_system) == 2


def test_build_prompt_rejects_shot_without_answer():
    with pytest.raises(ValueError, match="few-shot record s2"):
        build_prompt(CONVERSATION, "x", [{"id": "s2", "messages": [{"role": "user", "content": "q"}]}])
