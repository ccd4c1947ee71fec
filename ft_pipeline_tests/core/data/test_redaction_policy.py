"""The entity policy (what is redacted, pseudonymized or kept), the config's round trip and its
construction from a task file, and escaped contact blocks, with the real Presidio + spaCy model."""
from __future__ import annotations

import json

import pytest

from ft_pipeline.core.data.redaction import DEFAULT_POLICY, RedactionConfig, Redactor, place_type, strictest
from ft_pipeline.core.data.screening import ScreeningConfig
from ft_pipeline.core.paths import REPO_ROOT

NO_DOCS = ScreeningConfig(protected_documents=[])


def redact(text: str, **config) -> str:
    redactor = Redactor(RedactionConfig(screening=NO_DOCS, **config))
    [(out, _)] = list(redactor.redact_records([{"id": "r", "messages": [{"role": "user", "content": text}]}]))
    return out["messages"][0]["content"]


# (text, what must survive, what must go) under the default (HIPAA Safe Harbor) policy.
DEFAULT_CASES = [
    ("I changed over Russian Ruble to UK pounds", ["I changed over Russian Ruble to UK pounds"], []),
    ("I moved from Springfield, Illinois to Canada.", ["Illinois", "Canada"], ["Springfield"]),
    ("Please send it to 637 Strojírenská 1006\nSvratka\nCzech Republic 45098",
     ["Czech Republic"], ["637", "Strojírenská", "Svratka", "45098"]),
    ("The German and Japanese teams paid in euros and Swiss francs.", ["German", "Japanese", "Swiss"], []),
    ("They had 6: Troy, Katie, David, Hannah, Chad and Danny.", [], ["Chad", "Hannah"]),
]


@pytest.mark.parametrize("text, kept, gone", DEFAULT_CASES, ids=range(len(DEFAULT_CASES)))
def test_default_policy_keeps_countries_states_nationalities_currencies(text, kept, gone):
    out = redact(text)
    assert all(k in out for k in kept), f"over-redacted: {out!r}"
    assert not [g for g in gone if g in out], f"left behind: {[g for g in gone if g in out]}"


@pytest.mark.parametrize("value, kind", [("UK", "COUNTRY"), ("the United States", "COUNTRY"), ("Ontario", "STATE"),
                                         ("NSW", "STATE"), ("Russian Ruble", "CURRENCY"), ("Norwegian", "NRP"),
                                         ("Springfield", None), ("New York", None), ("Utrecht", None)])
def test_place_type(value, kind):
    assert place_type(value) == kind


def test_the_residual_finder_agrees_with_the_redactor():
    # The check re-analyzes redacted text with the same policy: what was kept is not PII there.
    redactor = Redactor(RedactionConfig(screening=NO_DOCS))
    texts = ["I changed over Russian Ruble to UK pounds", "Transfer to Germany, 300 Swiss francs"]
    assert redactor.find_pii(texts) == [[], []]
    text = "Anna Berg lives in Hamar, Norway"
    assert [text[s:e] for _, s, e, _ in redactor.find_pii([text])[0]] == ["Anna Berg", "Hamar"]


@pytest.mark.parametrize("policy, text, kept, placeholder", [
    ({"LOCATION": "keep"}, "I moved from Springfield to Canada.", "Springfield", None),
    ({"COUNTRY": "redact"}, "I moved from Springfield to Canada.", None, "<COUNTRY_1>"),
    ({"DATE_OF_BIRTH": "keep"}, "My date of birth is March 14, 1985.", "March 14, 1985", None),
    ({"PERSON": "pseudonymize"}, "My name is Chloe Dubois.", None, "Alex Morgan"),
    ({"EMPLOYEE_ID": "keep"}, "The adjuster's employee id is EMP-40211.", "EMP-40211", None),
])
def test_a_user_policy_overrides_the_default(policy, text, kept, placeholder):
    out = redact(text, policy=policy)
    assert kept is None or kept in out, out
    assert placeholder is None or placeholder in out, out


@pytest.mark.parametrize("policy, error", [({"PERSON": "hide"}, "expected one of"), ({"IBAN_CODE": "pseudonymize"}, "surrogate"),
                                           ({"person": "keep"}, "upper case")])
def test_a_bad_policy_is_refused(policy, error):
    with pytest.raises(ValueError, match=error):
        RedactionConfig(policy=policy, screening=NO_DOCS)


def test_escaped_contact_block_keeps_its_escapes():
    text = r"Name: Bernd Frey\nMobile: 040-073-983\nDesk: 09827649793\nFax:\n9749 0982\nCountry: Germany"
    assert redact(text) == (r"Name: <PERSON_1>\nMobile: <PHONE_NUMBER_1>\nDesk: <PHONE_NUMBER_2>\nFax:\n"
                            r"<PHONE_NUMBER_3>\nCountry: Germany")


def test_task_patterns_redact_the_tasks_own_identifiers():
    patterns = {"POLICY_NUMBER": [r"\bNW-POL-\d{4,}\b"], "TICKET_ID": r"\bTK-\d{6}\b"}  # a list or one regex
    assert redact("See NW-POL-4821937 and TK-104233 attached.", patterns=patterns) == (
        "See <POLICY_NUMBER_1> and <TICKET_ID_1> attached.")
    config = RedactionConfig(patterns=patterns, screening=NO_DOCS)
    assert config.patterns["TICKET_ID"] == [r"\bTK-\d{6}\b"] and config.action("TICKET_ID") == "redact"


# --- the config: round trip, task section ---------------------------------------------------


@pytest.mark.parametrize("config", [
    RedactionConfig(screening=NO_DOCS),
    RedactionConfig(allow_list=["Northwind"], deny_list=["Bluebird"], patterns={"POLICY_NUMBER": [r"\bNW-\d+\b"]},
                    policy={"LOCATION": "keep", "PERSON": "pseudonymize"}, mode="surrogate", n_process=2,
                    screening=ScreeningConfig(deny_terms=["Project Falcon"], protected_documents=[])),
])
def test_config_round_trips_through_a_dict(config):
    data = config.to_dict()
    assert json.loads(json.dumps(data)) == data, "the dict must be JSON (it goes into run metadata)"
    assert RedactionConfig.from_dict(data) == config
    assert RedactionConfig.from_dict(data).policy == {**DEFAULT_POLICY, **config.policy}


def test_from_dict_refuses_unknown_keys():
    with pytest.raises(ValueError, match="unknown keys colour"):
        RedactionConfig.from_dict({**RedactionConfig(screening=NO_DOCS).to_dict(), "colour": "red"})


def test_from_task_section_reads_the_demo_task():
    from ft_pipeline.core.task import TaskConfig

    task = TaskConfig.from_yaml(REPO_ROOT / "configs" / "tasks" / "demo-triage.yaml")
    config = RedactionConfig.from_task_section(task.redaction, n_process=1, score_threshold=0.5)
    assert config.patterns["POLICY_NUMBER"] and config.action("POLICY_NUMBER") == "redact"
    assert "Northwind" in config.allow_list and config.n_process == 1 and config.score_threshold == 0.5
    assert config.screening.protected_documents and all(p.endswith(".txt") for p in config.screening.protected_documents)
    assert RedactionConfig.from_task_section({}).screening.protected_documents == []


@pytest.mark.parametrize("section, error", [
    ({"allow": ["x"]}, r"redaction\.allow: unknown key"),
    ({"patterns": {"POLICY_NUMBER": ["(unclosed"]}}, r"patterns\.POLICY_NUMBER: regex"),
    ({"protected_documents": "/nonexistent/*.txt"}, "no file matches /nonexistent"),
])
def test_from_task_section_names_the_bad_field(section, error):
    with pytest.raises(ValueError, match=error):
        RedactionConfig.from_task_section(section)


def test_a_runs_knobs_are_added_to_the_tasks_redaction_never_put_in_its_place(tmp_path):
    from ft_pipeline.core.task import TaskConfig

    task = TaskConfig.from_yaml(REPO_ROOT / "configs" / "tasks" / "demo-triage.yaml")
    (tmp_path / "memo.txt").write_text("an internal memo")
    config = RedactionConfig.for_task(task, allow_list=["Acme"], deny_list=["Falcon"], deny_terms=["Project Falcon"],
                                      protected_documents=str(tmp_path / "*.txt"), score_threshold=0.6,
                                      n_process=1, surrogates=True)
    assert {"Northwind", "Acme"} <= set(config.allow_list) and "Falcon" in config.deny_list
    assert "Project Falcon" in config.screening.deny_terms
    task_documents = RedactionConfig.from_task_section(task.redaction).screening.protected_documents
    assert set(config.screening.protected_documents) == {*task_documents, str(tmp_path / "memo.txt")}
    assert (config.score_threshold, config.n_process, config.mode) == (0.6, 1, "surrogate")
    assert RedactionConfig.for_task(None).allow_list == [] and RedactionConfig.for_task(None).mode == "placeholder"
    with pytest.raises(ValueError, match=rf"^{task.source_path}: field .*no file matches /nonexistent"):
        RedactionConfig.for_task(task, protected_documents="/nonexistent/*.txt")


def test_strictest_of_several_partitions_configs():
    a = RedactionConfig(allow_list=["Northwind", "Acme"], policy={"LOCATION": "keep"}, screening=NO_DOCS)
    b = RedactionConfig(allow_list=["Acme"], deny_list=["Falcon"], patterns={"TICKET_ID": [r"TK-\d+"]},
                        screening=ScreeningConfig(deny_terms=["Project Falcon"], protected_documents=[]))
    merged = strictest([a, b])
    assert merged.allow_list == ["Acme"] and merged.deny_list == ["Falcon"] and merged.patterns == b.patterns
    assert merged.action("LOCATION") == "redact" and merged.action("COUNTRY") == "keep"
    assert merged.screening.deny_terms == ["Project Falcon"]
    assert strictest([a, RedactionConfig.from_dict(a.to_dict())]) == a


@pytest.mark.parametrize("cores, available_mb, workers", [(4, 64_000, 4), (4, 900, 2), (4, 100, 1), (1, 64_000, 1)])
def test_workers_default_to_the_cores_memory_allows(monkeypatch, cores, available_mb, workers):
    import os
    from types import SimpleNamespace

    import psutil

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=available_mb * 2**20))
    assert RedactionConfig(screening=NO_DOCS).workers() == workers
    assert RedactionConfig(n_process=3, screening=NO_DOCS).workers() == 3
