"""The task file's `fields:` section and keyed digests: what each non-text field becomes when it
leaves the raw zone, the section's one-line errors, and a digest key per home."""
from __future__ import annotations

import json
import multiprocessing as mp
import stat

import pytest

from ft_pipeline.core import digest
from ft_pipeline.core.data.redaction import RedactionConfig, Redactor
from ft_pipeline.core.data.redaction.fields import audited, check_fields
from ft_pipeline.core.records import parse_record
from ft_pipeline.core.task import TaskConfig, TaskError

RECORD = {
    "id": "cust-4471", "annotator": "ann-07", "source": "wilhelmina.fox@gmail.com",
    "labels": [{"annotator": "ann-02", "label": "claim_status"}],
    "messages": [{"role": "user", "content": "Hi, Peregrine Ashcombe here."}, {"role": "assistant", "content": "ok"}],
    "attributes": {"region": "EU", "customer_email": "cordelia.marchbank@yahoo.com", "age_band": "30-44", "tier": "gold"},
}


def redact(record: dict, fields: dict) -> dict:
    [(out, _)] = Redactor(RedactionConfig(fields=fields, n_process=1)).redact_records([parse_record(record)])
    return out


def test_undeclared_fields_are_screened_and_ids_and_annotators_digested(ft_home):
    out = redact(RECORD, {"attributes.region": "keep", "attributes.tier": "redact", "attributes.age_band": "pseudonymize"})
    assert out["id"] == digest.keyed_digest("cust-4471") and len(out["id"]) == 64
    assert out["annotator"] == digest.keyed_digest("ann-07")
    assert out["labels"] == [{"annotator": digest.keyed_digest("ann-02"), "label": "claim_status"}]
    assert out["source"] == "<EMAIL_ADDRESS_1>"  # screened, numbered with the record's texts
    assert out["attributes"] == {"region": "EU", "customer_email": "<EMAIL_ADDRESS_2>",
                                 "age_band": digest.keyed_digest("30-44")}  # tier redacted: dropped
    assert "Peregrine" not in json.dumps(out)


def test_a_value_found_in_the_text_gets_the_same_placeholder_in_a_field(ft_home):
    record = {**RECORD, "source": "Peregrine Ashcombe"}
    out = redact(record, {})
    assert out["source"] == "<PERSON_1>" and out["messages"][0]["content"] == "Hi, <PERSON_1> here."


def test_only_attributes_declared_keep_reach_the_bias_audit():
    fields = {"attributes.region": "keep", "attributes.age_band": "pseudonymize"}
    assert audited({"region": "EU", "age_band": "x", "email": "<EMAIL_ADDRESS_1>"}, fields) == {"region": "EU"}


@pytest.mark.parametrize("section, says", [
    ({"id": "keep"}, "fields.id: must be pseudonymize"),
    ({"annotator": "redact"}, "fields.annotator: must be pseudonymize"),
    ({"attributes.region": "show"}, "fields.attributes.region: 'show' is not an action"),
    ({"messages": "keep"}, "fields.messages: is not a field this section governs"),
    ({"attributes.": "keep"}, "fields.attributes.: is not a field"),
    (["id"], "fields: must map a record field"),
])
def test_bad_declarations_are_refused_naming_the_field(section, says):
    with pytest.raises(ValueError, match=says.replace(".", r"\.").replace("(", r"\(")):
        check_fields(section)


def test_a_task_file_mistake_names_the_file_the_line_and_the_field(tmp_path):
    path = tmp_path / "task.yaml"
    path.write_text("name: t\ntype: classification\nfields:\n  id: pseudonymize\n  attributes.region: keep\n"
                    "  source: publish\n")
    with pytest.raises(TaskError) as err:
        TaskConfig.from_yaml(path)
    assert str(err.value) == (f"{path} line 6: field fields.source: 'publish' is not an action; "
                              "use one of pseudonymize, redact, keep, screen")


def test_the_demo_task_keeps_the_attributes_its_bias_audit_compares():
    from ft_pipeline_tests.defs.pipeline_helpers import DEMO_TASK

    fields = TaskConfig.from_yaml(DEMO_TASK).fields
    assert {k for k, v in fields.items() if v == "keep" and k.startswith("attributes.")} == {
        "attributes.region", "attributes.language", "attributes.segment", "attributes.age_band"}


def test_keyed_digests_are_stable_within_a_home_and_differ_between_homes(tmp_path, monkeypatch):
    monkeypatch.setenv("FT_PIPELINE_HOME", str(tmp_path / "a"))
    first = digest.keyed_digest("nw-000001")
    digest._KEYS.clear()  # a new process: read back from the file
    assert digest.keyed_digest("nw-000001") == first != digest.keyed_digest("nw-000002")
    key = tmp_path / "a" / "raw" / digest.KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == digest.KEY_BYTES
    monkeypatch.setenv("FT_PIPELINE_HOME", str(tmp_path / "b"))
    assert digest.keyed_digest("nw-000001") != first
    import hashlib

    assert first != hashlib.sha256(b"nw-000001").hexdigest()  # not the enumerable unkeyed hash


def _digest_in_new_process(home: str, queue) -> None:
    import os

    os.environ["FT_PIPELINE_HOME"] = home
    queue.put(digest.keyed_digest("same-id"))


def test_processes_creating_the_key_at_once_agree(tmp_path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_digest_in_new_process, args=(str(tmp_path), queue)) for _ in range(4)]
    for p in procs:
        p.start()
    results = {queue.get(timeout=60) for _ in procs}
    for p in procs:
        p.join(60)
    assert len(results) == 1
    assert [p.name for p in (tmp_path / "raw").iterdir()] == [digest.KEY_FILE]  # no temp file left behind


def test_forget_by_id_finds_the_redacted_copy_by_its_keyed_digest(ft_home):
    from ft_pipeline.core.erasure import requests as erasure
    from ft_pipeline.core.data.redaction import redact_file

    raw = ft_home / "raw" / "raw_dataset" / "run-1" / "records.jsonl"
    raw.parent.mkdir(parents=True)
    raw.write_text(json.dumps(RECORD) + "\n" + json.dumps({**RECORD, "id": "cust-9"}) + "\n")
    out = ft_home / "data" / "redacted_dataset" / "run-2" / "redacted.jsonl"
    redact_file(raw, out, ft_home / "raw" / "q.jsonl", RedactionConfig(n_process=1))
    assert "cust-4471" not in out.read_text()
    [summary] = erasure.forget(ids=["cust-4471"])
    assert summary["files"]["data/redacted_dataset/redacted.jsonl"] == {"files": 1, "records": 1}
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [digest.keyed_digest("cust-9")]
    log = erasure.log_path().read_text()
    pseudonym = digest.keyed_digest("cust-4471")
    assert "cust-4471" not in log and pseudonym not in log and digest.keyed_digest(pseudonym, digest.TRAINED) in log


def test_knowledge_documents_are_redacted_before_they_reach_a_prompt(tmp_path, ft_home):
    from ft_pipeline.core.fit.retrieval import load_knowledge, redacted_knowledge

    (tmp_path / "guide.md").write_text("Claims desk lead: Peregrine Ashcombe, cordelia.marchbank@yahoo.com.\n\n"
                                       "Lost cards are blocked at once.\n")
    chunks = redacted_knowledge(load_knowledge(tmp_path), RedactionConfig(n_process=1))
    text = " ".join(c.text for c in chunks)
    assert "Ashcombe" not in text and "marchbank" not in text
    assert "<PERSON_1>" in text and "Lost cards are blocked at once." in text


def test_a_knowledge_document_named_after_a_person_is_cited_by_its_alias(tmp_path, ft_home):
    from ft_pipeline.core.fit.retrieval import load_knowledge, redacted_knowledge

    (tmp_path / "cordelia.marchbank@yahoo.com.md").write_text("Her claim was settled in March.\n")
    (tmp_path / "refund-policy.md").write_text("Refunds take five days.\n")
    sources = sorted(c.source for c in redacted_knowledge(load_knowledge(tmp_path), RedactionConfig(n_process=1)))
    assert sources[0] == "refund-policy.md" and sources[1].startswith("source-") and "marchbank" not in sources[1]
