"""Redaction with the real Presidio + spaCy model: each entity type, whole-value removal,
consistent pseudonyms, the residual-PII finder, and redact_file's accounting."""
from __future__ import annotations

import json
import re

import pytest

from ft_pipeline.core.data.redaction import RedactionConfig, Redactor, redact_file
from ft_pipeline.core.data.screening import ScreeningConfig
from ft_pipeline.core.digest import keyed_digest
from ft_pipeline.core.paths import REPO_ROOT
from ft_pipeline_tests.conftest import DEMO_RECORDS, read_jsonl

# (entity, sentence, the PII substrings that must all disappear)
CASES = [
    ("PERSON", "Hi, my name is Amara Okonkwo and I need help.", ["Amara", "Okonkwo"]),
    ("PERSON", "Dr. Hiroshi Tanaka signed the referral.", ["Hiroshi", "Tanaka"]),
    ("EMAIL_ADDRESS", "Write to me at amara.o@example.net please.", ["amara.o@example.net"]),
    ("PHONE_NUMBER", "Call me back on (312) 555-0155 tonight.", ["555-0155"]),
    ("PHONE_NUMBER", "My mobile is +44 20 7946 0721 if you need it.", ["7946", "0721"]),
    ("US_SSN", "For verification, my SSN is 489-03-4697.", ["489-03-4697"]),
    ("CREDIT_CARD", "Card on file is 4023 3190 5854 9014.", ["4023 3190 5854 9014"]),
    ("IBAN_CODE", "Refund to IBAN GB66 NWBK 9195 2453 1824 35 please.", ["GB66", "9195 2453"]),
    ("IP_ADDRESS", "I'm logged in from 203.0.113.39 right now.", ["203.0.113.39"]),
    ("STREET_ADDRESS", "I moved to 4821 Lakeview Boulevard, Springfield, IL 62704 last week.",
     ["4821", "Lakeview", "Springfield", "62704"]),
    ("STREET_ADDRESS", "Ship it to 77 Highland Avenue Apt 4B, Portland, OR 97205.", ["77 Highland", "4B", "97205"]),
    ("MEDICAL_RECORD_NUMBER", "The hospital lists MRN: 00482913 on the bill.", ["00482913"]),
    ("POLICY_NUMBER", "My policy number is NW-POL-4821937.", ["4821937"]),
    ("EMPLOYEE_ID", "The adjuster's employee id is EMP-40211.", ["40211"]),
    ("DATE_OF_BIRTH", "My date of birth is March 14, 1985.", ["March 14, 1985"]),
    ("DATE_OF_BIRTH", "DOB 1975-10-28, patient since 2019.", ["1975-10-28"]),
    ("HEALTH_PLAN_ID", "My member id is XQH482913776 on the card.", ["XQH482913776"]),
    ("CLAIM_NUMBER", "What's the status of claim CLM-26-058186?", ["058186"]),
    # Phone numbers in national groupings, found by digit count + a phone word nearby.
    ("PHONE_NUMBER", "I got no message on my registered 87 47 98. Could you check?", ["87 47 98"]),
    ("PHONE_NUMBER", "Fax: (07700)553419 after six.", ["07700", "553419"]),
    ("PHONE_NUMBER", "Stockholm desk +46 (0)8 515 691 54-Office", ["515", "691 54"]),
    ("PHONE_NUMBER", "My registered number is 05.53.18.69.64.", ["05.53", "69.64"]),
    # Names NER misses or cuts short: gazetteer names, initials, particles, hyphens, credentials.
    ("PERSON", "Helena C. Carlsen\n\nMental health assistant", ["Helena", "Carlsen", "C."]),
    ("PERSON", "My name is Christiane S de Vaan but everyone calls me Chris.", ["Christiane", "Vaan"]),
    ("PERSON", "My grandmother was called Amy-leigh Paterson.", ["Amy", "leigh", "Paterson"]),
    ("PERSON", "Tennis player Ms. Aimee McGregor DVM was detained.", ["Aimee", "McGregor", "DVM"]),
    # Street formats beyond "number + name + suffix".
    ("STREET_ADDRESS", "Change my address to the corner of 262 Thisseos Avenue and Semmens Greens for post mail.",
     ["262", "Thisseos", "Semmens", "Greens"]),
    ("STREET_ADDRESS", "I once lived in 4733 40 avenue Ferdinand de Lesseps Suite 842 GRASSE France.",
     ["4733", "Ferdinand", "Lesseps", "842", "GRASSE"]),
    ("STREET_ADDRESS", "Please send it to 2774 Koepenicker Str. 38 Apt. 487\nOuter Kaiti, nan 82650",
     ["Koepenicker", "38", "487", "Kaiti", "82650"]),
    ("STREET_ADDRESS", "Our offices are located at Monika and Turjaška 48", ["Monika", "Turjaška", "48"]),
    ("STREET_ADDRESS", "}} 90878 Martin Linges veg 149 \n}} Suite 12\n}} HEIMDAL \n}} Norway 13372",
     ["90878", "Linges", "149", "12", "HEIMDAL", "13372"]),
    # Contact blocks exported with literal "\n" escapes between the fields (CRM and CSV exports).
    ("PHONE_NUMBER", r"Rue de la Sarthe 45\nMobile: 040-073-983\nDesk: 09827649793\nFax: 06 12 34 56 78",
     ["040-073-983", "09827649793", "06 12 34 56 78"]),
    ("PHONE_NUMBER", r"Personal Info:\nPhone:\n9749 0982\n\nE-mail:", ["9749 0982"]),
    ("PERSON", r"Name: Bernd Frey\nPhone: 041-442-943", ["Bernd", "Frey", "041-442-943"]),
    ("PHONE_NUMBER", r"Lisa Haas\tMobile:\t0176 4432 1187\tDesk:\t030 8812 44", ["0176 4432 1187", "030 8812 44"]),
    # Document numbers after their cue words.
    ("DRIVER_LICENSE", "My driver's license number is D6101-40706-60905 and it expires soon.", ["D6101", "40706"]),
    ("DRIVER_LICENSE", "Driving licence no: 123 456 789", ["123 456 789"]),
    ("PASSPORT_NUMBER", "My passport number is X4385629, issued in 2019.", ["X4385629"]),
    ("ZIP_CODE", "ZIP: 7736 PJ", ["7736 PJ"]),
    # Geography below a state: the city goes, the country stays (see test_redaction_policy.py).
    ("LOCATION", "Leigha Mackay\n\nLa Sagne\nSwitzerland", ["La Sagne"]),
    ("LOCATION", "We moved here from Sint Anthonis last year.", ["Sint Anthonis"]),
]


# Record ids leave redaction as keyed digests under the home's key: each test has its own home.
pytestmark = pytest.mark.usefixtures("ft_home")


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(RedactionConfig(screening=ScreeningConfig(protected_documents=[])))


def chat(*turns: str, rid: str = "r1") -> dict:
    roles = ["user", "assistant"]
    return {"id": rid, "task": "chat", "messages": [{"role": roles[i % 2], "content": t} for i, t in enumerate(turns)],
            "label_verified": False, "annotator": None, "verified_at": None, "attributes": {}, "source": None,
            "split": None}


@pytest.mark.parametrize("entity, text, secrets", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_entity_is_fully_redacted(redactor, entity, text, secrets):
    [(out, counts)] = list(redactor.redact_records([chat(text, '{"intent": "other"}')]))
    redacted = out["messages"][0]["content"]
    leaked = [i for i, s in enumerate(secrets) if s in redacted]
    assert not leaked, f"{entity}: parts {leaked} of the value survived"
    assert f"<{entity}_1>" in redacted, f"{entity} placeholder missing; got types {sorted(counts)}"
    assert out["messages"][1]["content"] == '{"intent": "other"}'


def test_pseudonyms_are_consistent_across_turns_and_fields(redactor):
    record = chat(
        "This is Maria Kowalski, email maria.k@example.org. My husband Tomasz Kowalski is on the policy.",
        "Thanks Maria, we will write to maria.k@example.org.",
        "Please also copy Tomasz.",
    )
    [(out, counts)] = list(redactor.redact_records([record]))
    texts = [m["content"] for m in out["messages"]]
    assert not any(name in t for t in texts for name in ("Maria", "Tomasz", "Kowalski", "maria.k@")), "name survived"
    maria, tomasz = texts[0].split(",")[0].split()[-1], re.search(r"husband (<PERSON_\d>)", texts[0]).group(1)
    assert maria == "<PERSON_1>" and tomasz == "<PERSON_2>"
    assert "Thanks <PERSON_1>, we will write to <EMAIL_ADDRESS_1>." == texts[1]
    assert texts[2] == "Please also copy <PERSON_2>."
    assert counts["EMAIL_ADDRESS"] == 2


def test_dpo_fields_share_the_record_pseudonyms(redactor):
    record = {**chat("I am Grace Murphy, phone 312-555-0199."), "task": "dpo",
              "chosen": "Hello Grace Murphy.", "rejected": "Call 312-555-0199."}
    [(out, _)] = list(redactor.redact_records([record]))
    assert out["chosen"] == "Hello <PERSON_1>."
    assert out["rejected"] == "Call <PHONE_NUMBER_1>."


def test_redacting_twice_changes_nothing(redactor):
    [(once, _)] = list(redactor.redact_records([chat("I'm Ingrid Silva, call 312-555-0142.")]))
    [(twice, counts)] = list(redactor.redact_records([once]))
    assert twice == once and counts == {}


def test_what_the_residual_gate_would_find_in_redacted_text_is_redacted_too(redactor):
    """A placeholder changes what NER sees: after "Mastercard" became <PERSON_1>, spaCy read "Visa"
    in "Do you use <PERSON_1> or Visa?" as a person, and export_has_no_residual_pii (the same
    config, on the redacted text) stopped a public banking dataset. Redaction runs again on its
    own output until nothing more is found, so the gate and the redactor agree."""
    text = "Do you use Mastercard or Visa?"
    single_pass = redactor.find_pii([text])[0]
    assert [text[s:e] for _, s, e, _ in single_pass] == ["Mastercard"]  # what one pass redacts
    once = text.replace("Mastercard", "<PERSON_1>")
    assert [once[s:e] for _, s, e, _ in redactor.find_pii([once])[0]] == ["Visa"]  # what the gate then found
    [(out, counts)] = list(redactor.redact_records([chat(text)]))
    redacted = out["messages"][0]["content"]
    assert redactor.find_pii([redacted]) == [[]] and counts == {"PERSON": 2}
    assert redacted == "Do you use <PERSON_1> or <PERSON_2>?"


def test_find_pii_ignores_placeholders_and_json_answers(redactor):
    texts = ['{"intent": "billing_dispute", "priority": "high"}',
             "Hello <PERSON_1>, we wrote to <EMAIL_ADDRESS_1> about <POLICY_NUMBER_1> at <STREET_ADDRESS_2>.",
             "Contact Ethan Walker at ethan.w@example.com."]
    found = redactor.find_pii(texts)
    assert found[0] == [] and found[1] == []
    assert {e for e, *_ in found[2]} == {"PERSON", "EMAIL_ADDRESS"}
    assert all(isinstance(s, int) and isinstance(e, int) and 0 < score <= 1 for _, s, e, score in found[2])


def test_gazetteer_catches_names_the_ner_model_misses(redactor):
    # The small spaCy model tags these as ORG or nothing; without the gazetteer they leak, with it they go.
    texts = ["They detained top-flight tennis player Rebecca Salsbury over visa disputes.",
             "Sue, can I please speak to your boss?",
             "They had 6: Platt, David, Rosa and Tom."]
    secrets = [["Rebecca", "Salsbury"], ["Sue"], ["David", "Rosa"]]
    plain = Redactor(RedactionConfig(name_gazetteer=False, screening=redactor.config.screening))
    outs = {}
    for name, r in (("with", redactor), ("without", plain)):
        records = [chat(t, rid=f"g{i}") for i, t in enumerate(texts)]
        outs[name] = [o["messages"][0]["content"] for o, _ in r.redact_records(records)]
    leaks = lambda out: [any(x in text for x in s) for text, s in zip(out, secrets)]  # noqa: E731
    assert leaks(outs["with"]) == [False, False, False], "a gazetteer name survived"
    assert any(leaks(outs["without"])), "the NER model alone caught all: this test no longer shows the gazetteer"


def test_gazetteer_skips_common_words_and_labels():
    from ft_pipeline.core.data.redaction import name_gazetteer

    names = name_gazetteer()
    assert {"David", "Rebecca", "Rosa"} <= names
    assert not {"Will", "May", "Summer", "Page", "Desk", "Fax"} & names


def test_known_names_do_not_redact_capitalized_common_words(redactor):
    found = redactor.find_pii(["Will the new Summer plan cover Page two of my claim form?",
                               "Desk: please note the Fax cover page."])
    assert found == [[], []]


def test_context_ignores_placeholders_and_amounts_dates_are_not_phones(redactor):
    found = redactor.find_pii(["The bill on <POLICY_NUMBER_1> says $1994.23 but my quote was lower.",
                               "Please call me about the 2018-05-03 visit, it cost 1994.23 in total.",
                               "Call <PERSON_1> about 1994.23 on the phone number list."])
    assert not [e for spans in found for e, *_ in spans if e == "PHONE_NUMBER"]


def test_engines_import_without_transformers_and_torch():
    # Presidio's package imports transformers + torch for an engine we do not use: ~10 s per
    # worker. They must stay unimported, and importable afterwards.
    import subprocess
    import sys

    code = ("import sys; from ft_pipeline.core.data.redaction import RedactionConfig, analyze_texts; "
            "analyze_texts(['Call John Smith on 312-555-0100'], RedactionConfig()); "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'; "
            "import torch, transformers; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_allow_and_deny_lists():
    redactor = Redactor(RedactionConfig(allow_list=["Northwind Mutual"], deny_list=["Bluebird"],
                                        screening=ScreeningConfig(protected_documents=[])))
    [(out, counts)] = list(redactor.redact_records([chat("Is Bluebird covered by Northwind Mutual?")]))
    assert out["messages"][0]["content"] == "Is <DENY_LIST_1> covered by Northwind Mutual?"


def test_surrogate_mode_writes_fake_values_the_finder_accepts():
    redactor = Redactor(RedactionConfig(mode="surrogate", screening=ScreeningConfig(protected_documents=[])))
    [(out, _)] = list(redactor.redact_records([chat("My name is Chloe Dubois, email chloe.d@example.com.")]))
    text = out["messages"][0]["content"]
    assert "Chloe" not in text and "Dubois" not in text and "Alex Morgan" in text
    assert redactor.find_pii([text]) == [[]]


def test_parallel_workers_match_in_process(redactor):
    records = [chat(f"I'm Omar Haddad, call 312-555-01{i:02d}.", rid=f"p{i}") for i in range(12)]
    parallel = Redactor(RedactionConfig(n_process=2, chunk_records=4, screening=redactor.config.screening))
    assert list(parallel.redact_records(records)) == list(redactor.redact_records(records))


# --- redact_file ----------------------------------------------------------------------------


def test_redact_file_accounting_and_quarantine(tmp_path, redactor):
    aws = "AKIA" + "ABCDEFGHIJKLMNOP"
    lines = [
        json.dumps({"id": "a", "prompt": "I'm Leila Rossi, SSN 489-03-4697.", "completion": '{"intent": "x"}'}),
        "{broken",
        json.dumps({"id": "b", "prompt": f"key {aws}", "completion": "ok"}),
        json.dumps({"id": "a", "prompt": "duplicate", "completion": "ok"}),
        json.dumps({"id": "c", "messages": [{"role": "robot", "content": "x"}]}),
        "",
        json.dumps({"id": "d", "prompt": "INTERNAL ONLY: reserve table", "completion": "ok"}),
        json.dumps({"id": "e", "prompt": "Is dental covered?", "completion": '{"intent": "coverage_question"}'}),
    ]
    src = tmp_path / "raw.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ticks = []
    summary = redact_file(src, tmp_path / "red.jsonl", tmp_path / "raw" / "q.jsonl", config=redactor.config,
                          progress=lambda done, total: ticks.append((done, total)))
    out, quarantine = read_jsonl(tmp_path / "red.jsonl"), read_jsonl(tmp_path / "raw" / "q.jsonl")
    assert summary["in"] == 7 == summary["out"] + summary["quarantined"]
    assert [r["id"] for r in out] == [keyed_digest("a"), keyed_digest("e")]
    assert {q["line"]: q["reason"] for q in quarantine} == {
        2: "broken_json", 3: "secret:aws_access_key", 4: "duplicate_id", 5: "unknown_role", 7: "confidential_marker"}
    assert summary["entities"] == {"PERSON": 1, "US_SSN": 1}
    text = out[0]["messages"][0]["content"]
    assert text == "I'm <PERSON_1>, SSN <US_SSN_1>."
    assert ticks[-1] == (7, 7)
    assert not any(v in json.dumps(summary) for v in ("Leila", "489-03", aws)), "summary leaks raw values"


def test_redact_file_failure_leaves_no_output(tmp_path, redactor):
    with pytest.raises(ValueError):
        redact_file(tmp_path / "absent.jsonl", tmp_path / "red.jsonl", tmp_path / "q.jsonl", config=redactor.config)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        redact_file(empty, tmp_path / "red.jsonl", tmp_path / "q.jsonl", config=redactor.config)
    assert not (tmp_path / "red.jsonl").exists()


@pytest.mark.skipif(not DEMO_RECORDS.exists(), reason="demo records not generated")
def test_demo_slice_has_no_residual_pii(tmp_path):
    from ft_pipeline.core.task import TaskConfig

    src = tmp_path / "demo.jsonl"
    with open(DEMO_RECORDS, encoding="utf-8") as fh:
        src.write_text("".join(line for _, line in zip(range(80), fh)), encoding="utf-8")
    task = TaskConfig.from_yaml(REPO_ROOT / "configs" / "tasks" / "demo-triage.yaml")
    config = RedactionConfig.from_task_section(task.redaction)
    summary = redact_file(src, tmp_path / "red.jsonl", tmp_path / "q.jsonl", config=config)
    redactor = Redactor(config)
    texts = [m["content"] for r in read_jsonl(tmp_path / "red.jsonl") for m in r["messages"]]
    residual = sum(len(found) for found in redactor.find_pii(texts))
    assert residual == 0, f"{residual} residual PII spans in the redacted demo slice"
    assert "NW-POL-" not in (tmp_path / "red.jsonl").read_text(), "the task's own policy-number format survived"
    assert summary["quarantine_reasons"], "the demo slice holds confidential records that must be quarantined"
