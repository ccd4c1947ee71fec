"""Each gate, called directly on bad input, fails; on good input, passes (Dagster University style)."""
import json

import pytest

from ft_pipeline.defs.data import checks as data_checks
from ft_pipeline.defs.release import checks as release_checks
from ft_pipeline.defs.release.configs import EvalGateConfig
from ft_pipeline.defs.training import checks as training_checks

ANSWER = '{"intent": "card_lost", "priority": "urgent"}'


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


def test_bias_gate():
    ok = {"summary": {"region": {"passed": True}}, "config": {}}
    bad = {"summary": {"region": {"passed": True}, "segment": {"passed": False}}, "config": {}}
    assert data_checks.bias_is_within_bounds(ok).passed
    result = data_checks.bias_is_within_bounds(bad)
    assert not result.passed and "segment" in result.description


def export_dir(tmp_path, user_text):
    d = tmp_path / "export"
    d.mkdir(parents=True)
    write_jsonl(d / "train.jsonl", [{"id": "a", "messages": [{"role": "user", "content": user_text},
                                                             {"role": "assistant", "content": ANSWER}]}])
    return {"path": str(d)}


def test_export_schema_gate(tmp_path):
    good = export_dir(tmp_path, "hello")
    assert data_checks.export_schema_is_valid(good).passed
    (tmp_path / "export" / "train.jsonl").write_text('{"id": "a", "messages": [{"role": "user", "content": "hi"}]}\n')
    assert not data_checks.export_schema_is_valid(good).passed


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
    assert training_checks.fine_tuning_is_warranted({**FIT, **changes}).passed is passed


@pytest.mark.parametrize("budget, passed", [(20.0, True), (10.0, False), (None, True)])
def test_training_cost_within_budget(budget, passed):
    assert training_checks.training_cost_within_budget({**FIT, "budget_usd": budget}).passed is passed


def report(tuned=0.8, base=0.1, baseline=0.3, gap=0.1, leaks=0):
    return {"variants": {"tuned": {"exact_match": tuned}, "base": {"exact_match": base},
                         "prompt_baseline": {"exact_match": baseline}},
            "largest_gaps": {"tuned": {"region": {"gap": gap}}},
            "leakage": {"canary_leaks": leaks, "generations": 10, "pii_by_type": {}}}


def test_release_gates_pass_on_a_good_report():
    config = EvalGateConfig()
    good = report()
    assert release_checks.tuned_beats_base(config, good).passed
    assert release_checks.tuned_beats_prompt_baseline(config, good).passed
    assert release_checks.no_group_gap_above_bound(config, good).passed
    assert release_checks.no_canary_leakage(good).passed


@pytest.mark.parametrize("check, bad", [
    ("tuned_beats_base", report(tuned=0.15, base=0.1)),
    ("tuned_beats_prompt_baseline", report(tuned=0.3, baseline=0.3)),
    ("no_group_gap_above_bound", report(gap=0.5)),
])
def test_release_gates_fail(check, bad):
    assert not getattr(release_checks, check)(EvalGateConfig(), bad).passed


def test_canary_leak_fails_release():
    assert not release_checks.no_canary_leakage(report(leaks=1)).passed
