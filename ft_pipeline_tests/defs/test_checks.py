"""Each gate, called directly on bad input, fails; on good input, passes (Dagster University style)."""
import json
from pathlib import Path

import pytest

from ft_pipeline.defs.data import checks as data_checks
from ft_pipeline.defs.evaluation import checks as evaluation_checks
from ft_pipeline.defs.fit import checks as fit_checks

ANSWER = '{"intent": "card_lost", "priority": "urgent"}'
DEMO_TASK = Path(__file__).resolve().parents[2] / "configs" / "tasks" / "demo-triage.yaml"


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def record(i, verified=True, text="I lost my card", labels=None):
    r = {"id": f"r{i}", "task": "chat", "messages": [{"role": "user", "content": text},
                                                     {"role": "assistant", "content": ANSWER}],
         "label_verified": verified, "annotator": "ann-01", "verified_at": "2026-10-01T10:00:00Z" if verified else None,
         "attributes": {"region": "EU"}}
    if labels:
        r["labels"] = [{"annotator": "a", "label": labels[0]}, {"annotator": "b", "label": labels[1]}]
    return r


@pytest.mark.parametrize("unverified, passed", [(0, True), (5, True), (6, False)])
def test_labels_are_verified(tmp_path, unverified, passed):
    rows = [record(i, verified=i >= unverified) for i in range(100)]
    result = data_checks.labels_are_verified(data_checks.LabelGateConfig(), {"path": write_jsonl(tmp_path / "r.jsonl", rows)})
    assert result.passed is passed


def test_annotators_agree_fails_on_disagreement(tmp_path):
    rows = [record(i, labels=("card_lost", "billing_dispute" if i % 2 else "card_lost")) for i in range(20)]
    rows += [record(100 + i, labels=("billing_dispute", "card_lost" if i % 2 else "billing_dispute")) for i in range(20)]
    result = data_checks.annotators_agree(data_checks.LabelGateConfig(), {"path": write_jsonl(tmp_path / "r.jsonl", rows)})
    assert not result.passed


def test_redacted_dataset_confidential_gate(tmp_path):
    clean = data_checks.redacted_dataset_has_no_confidential_content({"path": write_jsonl(tmp_path / "a.jsonl", [record(0)])})
    leaked = data_checks.redacted_dataset_has_no_confidential_content(
        {"path": write_jsonl(tmp_path / "b.jsonl", [record(1, text="CONFIDENTIAL - internal only. I lost my card")])})
    assert clean.passed and not leaked.passed


def bias(attributes, judged=True, reason=None, require=False):
    verdict = "FAIL" if not all(a["passed"] for a in attributes.values()) else "PASS" if judged else "NOT JUDGED"
    return {"summary": {"attributes": attributes, "judged": judged, "not_judged_reason": reason, "verdict": verdict},
            "config": {}, "require_judgement": require}


def test_bias_gate():
    assert data_checks.bias_is_within_bounds(bias({"region": {"passed": True}})).passed
    result = data_checks.bias_is_within_bounds(bias({"region": {"passed": True}, "segment": {"passed": False}}))
    assert not result.passed and "segment" in result.description


def test_bias_gate_says_when_nothing_was_judged():
    nothing = bias({}, judged=False, reason="the records carry no attributes to group by: nothing was audited")
    result = data_checks.bias_is_within_bounds(nothing)
    assert result.passed and result.description.startswith("NOT JUDGED") and "no attributes" in result.description
    assert result.metadata["judged"].value is False
    # A deployment that requires a judgement fails instead of passing on nothing.
    assert not data_checks.bias_is_within_bounds({**nothing, "require_judgement": True}).passed


def export_dir(tmp_path, user_text):
    from ft_pipeline.core.task import TaskConfig

    d = tmp_path / "export"
    d.mkdir(parents=True)
    TaskConfig.from_yaml(DEMO_TASK).to_yaml(d / "task.yaml")
    write_jsonl(d / "train.jsonl", [{"id": "a", "messages": [{"role": "user", "content": user_text},
                                                             {"role": "assistant", "content": ANSWER}]}])
    return {"path": str(d)}


def test_export_schema_gate(tmp_path):
    good = export_dir(tmp_path, "hello")
    assert data_checks.export_schema_is_valid(good).passed
    (tmp_path / "export" / "train.jsonl").write_text('{"id": "a", "messages": [{"role": "user", "content": "hi"}]}\n')
    assert not data_checks.export_schema_is_valid(good).passed


def test_export_schema_gate_checks_answers_against_the_task(tmp_path):
    """The demo's task is structured JSON: a bare label is not an answer of that task."""
    export = export_dir(tmp_path, "hello")
    write_jsonl(tmp_path / "export" / "train.jsonl", [{"id": "a", "messages": [
        {"role": "user", "content": "hello"}, {"role": "assistant", "content": "card_lost"}]}])
    result = data_checks.export_schema_is_valid(export)
    assert not result.passed and "train.jsonl" in result.description


def test_residual_pii_gate(tmp_path):
    assert data_checks.export_has_no_residual_pii(export_dir(tmp_path / "ok", "My name is <PERSON_1>, I lost my card")).passed
    leaked = data_checks.export_has_no_residual_pii(export_dir(tmp_path / "bad", "Write to jane.roe@example.com please"))
    assert not leaked.passed
    assert "jane" not in json.dumps({k: str(v) for k, v in leaked.metadata.items()}).lower()


def test_residual_pii_gate_keeps_what_the_policy_keeps(tmp_path):
    # A bank's data: the redactor keeps currencies and countries, and so must its check.
    assert data_checks.export_has_no_residual_pii(export_dir(tmp_path, "I changed over Russian Ruble to UK pounds")).passed


def test_data_gates_use_the_config_the_data_was_redacted_with(tmp_path):
    from ft_pipeline.core.data.redaction import RedactionConfig
    from ft_pipeline.core.data.screening import ScreeningConfig

    # A product named like a person, on the user's allow list; a code name on the deny terms.
    export = export_dir(tmp_path, "Ask Amara Okonkwo about the premium plan for Project Falcon")
    assert not data_checks.export_has_no_residual_pii(export).passed, "the default config sees a person"
    assert data_checks.export_has_no_confidential_content(export).passed, "no deny terms by default"
    config = RedactionConfig(allow_list=["Amara Okonkwo"],
                             screening=ScreeningConfig(deny_terms=["Project Falcon"], protected_documents=[]))
    recorded = {**export, "redaction_config": config.to_dict()}
    assert data_checks.export_has_no_residual_pii(recorded).passed
    assert not data_checks.export_has_no_confidential_content(recorded).passed
    redacted = {"path": write_jsonl(tmp_path / "r.jsonl", [record(0, text="about Project Falcon")]),
                "redaction_config": config.to_dict()}
    assert not data_checks.redacted_dataset_has_no_confidential_content(redacted).passed


def test_export_confidential_gate(tmp_path):
    assert data_checks.export_has_no_confidential_content(export_dir(tmp_path / "ok", "I lost my card")).passed
    key = "AKIA" + "Q" * 16
    assert not data_checks.export_has_no_confidential_content(export_dir(tmp_path / "bad", f"my key is {key}")).passed


FIT = {"recommendation": "fine_tune", "override": False, "override_reason": "",
       "cost": {"usd": 12.0, "device_hours": 3.0, "gpu_type": "A10G", "flops": 1e18}, "budget_usd": 20.0}


@pytest.mark.parametrize("changes, passed", [
    ({}, True),
    ({"recommendation": "prompt_engineering"}, False),
    ({"recommendation": "rag", "override": True, "override_reason": ""}, False),
    ({"recommendation": "rag", "override": True, "override_reason": "regulator asked for an on-prem model"}, True),
])
def test_fine_tuning_is_warranted(changes, passed):
    assert fit_checks.fine_tuning_is_warranted({**FIT, **changes}).passed is passed


@pytest.mark.parametrize("budget, passed", [(20.0, True), (10.0, False), (None, True)])
def test_training_cost_within_budget(budget, passed):
    assert fit_checks.training_cost_within_budget({**FIT, "budget_usd": budget}).passed is passed


def judged_report(tuned_right: int, base_right: int, n: int = 200, leaks: int = 0):
    """An eval_report output built the way the asset builds it (report.judge on scores)."""
    from ft_pipeline.core.evaluation import report
    from ft_pipeline.core.evaluation.evaluation import evaluate_variants
    from ft_pipeline.core.evaluation.gates import GateConfig
    from ft_pipeline.core.task import TaskConfig

    task = TaskConfig.from_yaml(DEMO_TASK)
    wrong = '{"intent": "billing_dispute", "priority": "low"}'
    records = [{"id": f"r{i}", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ANSWER}]}
               for i in range(n)]
    variants = {name: [ANSWER if i < right else wrong for i in range(n)]
                for name, right in (("base", base_right), ("prompt_baseline", base_right), ("tuned", tuned_right))}
    scores = evaluate_variants(task, records, variants).scores
    capability = {"base": [1.0] * 50 + [0.0] * 50, "tuned": [1.0] * 50 + [0.0] * 50}
    config = GateConfig(n_boot=200)
    judged = report.judge(task, scores, {"region": ["north", "south"] * (n // 2)}, config=config,
                          leakage={"canary_leaks": leaks, "canaries": 2, "generations": n}, capability=capability)
    return judged, report.render(judged, config)


@pytest.mark.parametrize("tuned_right, base_right, leaks, all_pass", [(180, 40, 0, True), (60, 40, 1, False)])
def test_release_checks_and_the_report_show_the_same_verdicts(tuned_right, base_right, leaks, all_pass):
    """One implementation: every blocking check returns the report's verdict, passing and failing."""
    judged, markdown = judged_report(tuned_right, base_right, leaks=leaks)
    output = judged.as_dict()
    for name in evaluation_checks.GATES:
        result = getattr(evaluation_checks, name)(output)
        verdict = judged.verdicts.get(name)
        if verdict is None:
            assert name == "tuned_beats_best_alternative" and result.passed
            continue
        assert result.passed is verdict.passed and result.description == verdict.detail
        assert f"| {name} | {'PASS' if verdict.passed else 'FAIL'} |" in markdown
    assert all(v.passed for v in judged.verdicts.values()) is all_pass


def test_contamination_gate_catches_what_the_export_left(tmp_path):
    from ft_pipeline.core.data import export

    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()
    records = [{"id": f"r{i}", "task": "chat", "split": split, "messages": [
        {"role": "user", "content": " ".join(f"{w}{i}" for w in words)}, {"role": "assistant", "content": ANSWER}]}
        for i, split in enumerate(["train", "test", "eval"])]
    out = tmp_path / "export"
    written = export.write_export(lambda: records, out, sidecar_dir=tmp_path / "sidecars")
    value = {"path": str(out), "sidecars": str(tmp_path / "sidecars"), "splits": written["splits"]}
    assert data_checks.export_has_no_train_test_overlap(value).passed
    # a hand-edited export: a train row copied into test
    (out / "test.jsonl").write_text((out / "train.jsonl").read_text().replace('"id":"r0"', '"id":"r9"').replace(
        '"id": "r0"', '"id": "r9"'))
    with open(tmp_path / "sidecars" / "splits.jsonl", "a") as fh:
        fh.write(json.dumps({"id": "r9", "split": "test", "group": None}) + "\n")
    result = data_checks.export_has_no_train_test_overlap(value)
    assert not result.passed and "near-copy a train record" in result.description
