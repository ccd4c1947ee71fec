"""screen_record: secrets, markers, deny terms and protected-document excerpts are caught;
ordinary support chats are not."""
from __future__ import annotations

from pathlib import Path

import re

import pytest

from ft_pipeline.core.data.screening import ScreeningConfig, screen_record


def rec(*user_texts: str, **extra) -> dict:
    messages = []
    for text in user_texts:
        messages += [{"role": "user", "content": text}, {"role": "assistant", "content": '{"intent": "other"}'}]
    return {"id": "s1", "task": "chat", "messages": messages, **extra}


@pytest.fixture(scope="module")
def config() -> ScreeningConfig:
    return ScreeningConfig(deny_terms=["Project Bluebird"])


# Secrets are assembled at run time so that no scanner flags this file as leaking them.
AWS = "AKIA" + "IOSFODNN7" + "EXAMPLE"
POSITIVES = {
    "secret:aws_access_key": f"my keys are {AWS} for the upload",
    "secret:private_key": "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    "secret:github_token": "token " + "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8" + " works",
    "secret:slack_token": "use " + "xoxb-" + "123456789012-abcdefghijkl",
    "secret:bearer_token": "Authorization: Bearer " + "eyJhbGciOiJIUzI1NiJ9abcdefghijklmnop",
    "secret:password_assignment": "the admin password: Hunter2!x for the portal",
    "confidential_marker": "CONFIDENTIAL - settlement guidance attached",
    "deny_term": "is project bluebird launching next month?",
}


@pytest.mark.parametrize("reason", list(POSITIVES))
def test_positive_screens(config, reason):
    assert screen_record(rec(POSITIVES[reason]), config) == reason


@pytest.mark.parametrize(
    "marker", ["This memo is INTERNAL ONLY.", "Internal use only", "Please do not distribute this.",
               "Strictly confidential: the reserve model"],
)
def test_marker_variants(config, marker):
    assert screen_record(rec(f"I got a letter. {marker} What does it mean?"), config) == "confidential_marker"


@pytest.mark.parametrize(
    "text",
    [
        "I need a password reset, I forgot my password.",
        "Is my medical information kept confidential?",
        "My claim number is CLM-26-048317 and my card ends in 9841.",
        "Please share the policy document with my spouse.",
        '{"intent": "billing_dispute", "priority": "high"}',
        "The adjuster said reserves are reviewed after two weeks; why is my claim still open?",
        "My password was reset yesterday but the app still says it is wrong.",
    ],
    ids=["password_reset", "confidential_lowercase", "numbers", "share", "json_answer", "claims_words",
         "password_word"],
)
def test_ordinary_text_passes(config, text):
    assert screen_record(rec(text), config) is None


def test_reason_never_contains_the_secret(config):
    for text in POSITIVES.values():
        reason = screen_record(rec(text), config)
        secrets = re.findall(r"[A-Za-z0-9_\-]{12,}", text)
        assert not any(s in reason for s in secrets), "screening reason echoes the secret"


def test_system_turn_and_dpo_fields_are_screened(config):
    record = {"id": "x", "task": "dpo", "messages": [{"role": "user", "content": "hi"}],
              "chosen": "fine", "rejected": f"here is {AWS}"}
    assert screen_record(record, config) == "secret:aws_access_key"


# --- protected documents ---------------------------------------------------------------------

DOC = (
    "Northwind pricing memo. The base rate for coastal homes is raised eleven percent in the second "
    "quarter because hurricane losses exceeded the modelled expectation by a wide margin. Agents must "
    "not quote the legacy discount for bundled auto policies after the first of April. The retention "
    "team may offer a loyalty credit of up to forty dollars when a customer threatens to cancel, but "
    "only once in a policy year and only after the second call. Underwriters should decline new "
    "business in the three flood zones listed in appendix B until the reinsurance treaty is renewed. "
    "Commission on renewals drops to six percent for brokers whose loss ratio exceeds seventy percent."
)


@pytest.fixture()
def doc_config(tmp_path) -> ScreeningConfig:
    path = tmp_path / "pricing_memo.txt"
    path.write_text(DOC, encoding="utf-8")
    return ScreeningConfig(protected_documents=[str(path)])


def test_lightly_edited_excerpt_matches(doc_config):
    sentences = DOC.split(". ")[2:5]
    excerpt = ". ".join(sentences).replace("percent", "%").replace("Agents", "agents").replace("forty", "40")
    text = f"Hi, a friend sent me this, is it true? {excerpt}. Can I get the loyalty credit?"
    assert screen_record(rec(text), doc_config) == "protected_document:pricing_memo.txt"


def test_excerpt_split_across_turns_matches(doc_config):
    sentences = DOC.split(". ")
    record = rec(". ".join(sentences[1:3]), ". ".join(sentences[3:5]))
    assert screen_record(record, doc_config) == "protected_document:pricing_memo.txt"


@pytest.mark.parametrize(
    "text",
    [
        "Hi, I want to cancel my home policy because the premium went up again this quarter and the agent "
        "could not explain why. I have been a customer for eleven years and never filed a flood claim.",
        "My car was hit in the parking lot yesterday and the bumper is cracked. The other driver left a note "
        "with an insurance number; what do I need to send you to open a claim and get a rental car?",
    ],
    ids=["same_topic", "other_topic"],
)
def test_ordinary_text_does_not_match_protected(doc_config, text):
    assert screen_record(rec(text), doc_config) is None


def test_missing_protected_document_is_a_config_error(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        ScreeningConfig(protected_documents=[str(tmp_path / "absent.txt")])


def test_protected_documents_come_from_the_task_not_from_a_default():
    from ft_pipeline.core.data.redaction import RedactionConfig
    from ft_pipeline.core.task import TaskConfig

    assert ScreeningConfig().protected_documents == []  # the demo's documents are the demo's
    demo = TaskConfig.from_yaml(Path(__file__).resolve().parents[3] / "configs" / "tasks" / "demo-triage.yaml")
    names = {p.rsplit("/", 1)[-1] for p in RedactionConfig.from_task_section(demo.redaction).screening.protected_documents}
    assert {"claims_adjustment_playbook.txt", "pricing_model_memo.txt"} <= names
