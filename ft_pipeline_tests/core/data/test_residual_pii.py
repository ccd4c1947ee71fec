"""The export gates judge only what came from records, and say where; the task's own text is
checked once, when the task loads (real Presidio and spaCy throughout)."""
import json

import pytest

from ft_pipeline.core.data import residual_pii
from ft_pipeline.core.data.export import write_export
from ft_pipeline.core.data.redaction import RedactionConfig, analyze_texts
from ft_pipeline.core.data.task_text import check_task_text
from ft_pipeline.core.task import TaskConfig
from ft_pipeline.core.task_file import TaskError

# A dialogue-summary instruction that spaCy's small model reads as naming a person ("Speaker B.").
TRIPS_NER = "Write a one-sentence summary of the conversation. Refer to the speakers as Speaker A and Speaker B."
RESIDUAL = "Speaker A: my manager Daniel Okafor says the parcel is late. Speaker B: sorry to hear that."


TOPICS = ["the parcel is late", "my invoice shows a double charge", "the app crashes at login",
          "can I change the delivery slot", "the refund never arrived", "my card was declined twice"]


def dialogue(i, text=None):
    text = text or f"Speaker A: {TOPICS[i % len(TOPICS)]}. Speaker B: sorry to hear that, let me check."
    return {"id": f"d{i}", "task": "chat", "messages": [
        {"role": "user", "content": text}, {"role": "assistant", "content": f"A customer says {TOPICS[i % len(TOPICS)]}."}]}


def summary_task(prompt=TRIPS_NER, **extra):
    return TaskConfig(name="dialogue-summary", type="generation", system_prompt=prompt, **extra)


def export(tmp_path, records, task=None):
    out = tmp_path / "export"
    write_export(lambda: iter(records), out, task=task or summary_task(), sidecar_dir=tmp_path / "sidecars")
    return out


def test_the_instruction_does_trip_the_ner_on_its_own():
    """What makes the tests below mean something: scanned as text, the task's prompt is a finding."""
    assert [s.entity for s in analyze_texts([TRIPS_NER], RedactionConfig())[0]] == ["PERSON"]


def test_a_task_prompt_that_trips_the_ner_loads_and_the_export_scan_leaves_it_out(tmp_path):
    task = summary_task()
    check_task_text(task)  # NER alone, no known name in it: not a task-file error
    out = export(tmp_path, [dialogue(i) for i in range(6)], task)
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert rows and all(r["messages"][0] == {"role": "system", "content": TRIPS_NER} for r in rows)
    scan = residual_pii.scan_export(out, RedactionConfig())
    assert scan.findings == [] and scan.rows == 6 and scan.task_texts == 1


def test_a_records_own_system_turn_is_still_judged(tmp_path):
    record = dialogue(0)
    record["messages"].insert(0, {"role": "system", "content": "Ticket opened by Daniel Okafor."})
    scan = residual_pii.scan_export(export(tmp_path, [record]), RedactionConfig())
    assert [(f.id, f.turn, f.entity) for f in scan.findings] == [("d0", "messages[0]", "PERSON")]


def test_a_residual_name_is_located_not_quoted(tmp_path):
    out = export(tmp_path, [dialogue(0), dialogue(1, RESIDUAL)])
    scan = residual_pii.scan_export(out, RedactionConfig())
    (found,) = scan.findings
    split_file = next(p.name for p in out.glob("*.jsonl") if "d1" in p.read_text())
    assert (found.file, found.id, found.turn, found.entity) == (split_file, "d1", "messages[1]", "PERSON")
    assert RESIDUAL[found.start:found.end] == "Daniel Okafor"
    assert found.recognizer == "SpacyRecognizer" and 0 < found.score <= 1
    assert scan.records == [f"{split_file}:d1"] and scan.by_entity == {"PERSON": 1}
    assert "Okafor" not in json.dumps(scan.table())
    [(_, shown)] = list(residual_pii.report(out, scan))
    assert shown == "Speaker A: my manager <<PERSON>> says the parcel is late. Speaker…"


def test_context_masks_every_finding_in_its_window():
    text = "one two three Jane Roe and John Doe four five six seven eight"
    jane = residual_pii.Finding("t", "a", "messages[0]", 14, 22, "PERSON", "r", 1.0)
    john = residual_pii.Finding("t", "a", "messages[0]", 27, 35, "PERSON", "r", 1.0)
    assert residual_pii.context(text, jane, [jane, john], words=4) == "one two three <<PERSON>> and <<PERSON>> four…"


@pytest.mark.parametrize("prompt, span, entity", [
    ("You assist Maria Gonzalez with her tickets.", "'Maria Gonzalez'", "PERSON"),
    ("Escalate to +1 415 555 0199 when unsure.", "'+1 415 555 0199'", "PHONE_NUMBER"),
])
def test_a_real_name_or_number_in_the_system_prompt_is_a_task_file_error(tmp_path, prompt, span, entity):
    path = tmp_path / "task.yaml"
    path.write_text(f"name: t\ntype: generation\nsystem_prompt: {prompt}\n")
    with pytest.raises(TaskError) as caught:
        check_task_text(TaskConfig.from_yaml(path))
    start = prompt.index(span.strip("'"))
    assert caught.value.field == "system_prompt" and caught.value.line == 3
    assert f"characters {start}-{start + len(span) - 2} ({span}) read as {entity}" in str(caught.value)


def test_the_allow_list_clears_a_name_the_task_means(tmp_path):
    check_task_text(summary_task("You assist Maria Gonzalez.", redaction={"allow_list": ["Maria Gonzalez"]}))


def test_a_task_is_checked_once_per_digest(monkeypatch):
    import ft_pipeline.core.data.redaction.engine as engine

    check_task_text(summary_task("Summarize the call between the agent and Speaker C."))
    monkeypatch.setattr(engine, "analyzer_for", lambda config: pytest.fail("analyzed again"))
    check_task_text(summary_task("Summarize the call between the agent and Speaker C."))
    with pytest.raises(BaseException, match="analyzed again"):  # a changed prompt is a new digest
        check_task_text(summary_task("Summarize the call between the agent and Speaker D."))


def test_a_deny_term_in_the_system_prompt_is_a_task_file_error():
    """The export's confidential-content gate leaves the task's text out too: it is screened here."""
    with pytest.raises(TaskError, match=r"field system_prompt: trips the confidential-content screen \(deny_term\)"):
        check_task_text(summary_task("Summarize the Project Falcon calls.", redaction={"deny_terms": ["Project Falcon"]}))
