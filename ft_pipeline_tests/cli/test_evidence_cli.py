"""ft-pipeline evidence: a promoted version's bundle validates against its schema, regenerates
byte for byte, and a tampered run-log line is found by its number; user mistakes exit 2, one line."""
import json
import zipfile

import pytest

from ft_pipeline.cli import main
from ft_pipeline.core.release import evidence, release
from ft_pipeline.core.training.privacy import spent, total_privacy
from ft_pipeline_tests.core.release.test_release import TASK, _export, _model_with_adapter

PRIVACY = {"dp": True, "epsilon": 7.9, "delta": 1e-3, "target_epsilon": 8.0, "max_grad_norm": 1.0,
           "noise_multiplier": 0.9, "steps": 40, "sample_rate": 0.01, "sampling": "poisson",
           "privacy_unit": "one training example (conversation)"}
MEMORIZATION = {"passed": True, "outcome": "clean",
                "detail": "1000 planted canaries vs 1000 held-out twins: TPR at 1% FPR 0.010 (95% interval 0.003–0.024)"}


def lineage_of(staged) -> dict:
    """A lineage as promoted_model freezes it: assets with digests and counts, checks, training, evaluation."""
    assets = [
        {"asset": "raw_dataset", "partition": "tickets.jsonl", "materialized": True, "run_id": "run-0",
         "timestamp": "2026-12-01T10:00:00+00:00", "code_version": "3", "sha256": "a" * 64,
         "metadata": {"source": "data/tickets.jsonl", "source_sha256": {"tickets.jsonl": "b" * 64}, "records": 400,
                      "quarantined": 3, "quarantine_reasons": {"confidential_marker": 2}}},
        {"asset": "redacted_dataset", "partition": "tickets.jsonl", "materialized": True, "run_id": "run-0",
         "timestamp": "2026-12-01T10:01:00+00:00", "code_version": "5", "sha256": "c" * 64,
         "metadata": {"entities_redacted": {"EMAIL_ADDRESS": 41, "PERSON": 120}, "quarantine_reasons": {"secret": 1}}},
        {"asset": "bias_report", "materialized": True, "run_id": "run-1", "timestamp": "2026-12-01T10:02:00+00:00",
         "code_version": "2", "sha256": "d" * 64, "metadata": {"verdict": "within_bounds", "failed_attributes": []}},
        {"asset": "jsonl_export", "materialized": True, "run_id": "run-1", "timestamp": "2026-12-01T10:03:00+00:00",
         "code_version": "2", "sha256": "e" * 64, "metadata": {}},
    ]
    checks = [{"check": "labels_are_verified", "asset": "redacted_dataset", "partition": "tickets.jsonl",
               "blocking": True, "passed": True, "status": "SUCCEEDED", "run_id": "run-0",
               "description": "398 of 400 labels verified (99.5% >= 95%)"},
              {"check": "bias_is_within_bounds", "asset": "bias_report", "blocking": True, "passed": True,
               "status": "SUCCEEDED", "run_id": "run-1", "description": "every attribute within bounds"},
              {"check": "no_canary_memorization", "asset": "eval_report", "blocking": True, "passed": True,
               "status": "SUCCEEDED", "run_id": "run-2", "description": MEMORIZATION["detail"]}]
    adapter_weights = {"config": {"method": "sft", "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct"},
                       "metrics": {"steps": 40, "final_loss": 0.4, "privacy": PRIVACY, "total_params": 134_515_008,
                                   "trainable_params": 921_600, "train_tokens": 1_200_000, "train_examples": 387},
                       # the fit assessment's two DP pilots spent as much again each (fit.pilot: true)
                       "privacy_total": total_privacy(PRIVACY, [spent(PRIVACY, "pilot 25%"), spent(PRIVACY, "pilot 50%")])}
    report = {"metric": "rouge_l", "variants": {}, "verdicts": {
        "tuned_beats_base": {"passed": True, "outcome": "clears_margin",
                             "detail": "tuned is ahead of base by 0.21 (95% interval 0.12–0.30, p < 0.001, n = 102)"},
        "no_canary_memorization": MEMORIZATION}}
    return {"name": TASK.name, "version": "v1", "promoted_at": "2026-12-01T10:30:00+00:00", "run_id": "run-3",
            "code_version": "abc123", "assets": assets, "checks": checks, "erasures": [],
            **release.record(TASK, {"sha256": "f" * 64, "path": "configs/tasks/smoke.yaml"}, adapter_weights, report,
                             {}, staged)}


@pytest.fixture
def promoted(ft_home, tiny_model_dir, tmp_path):
    base, adapter = _model_with_adapter(tiny_model_dir, tmp_path, mute=False)
    root = ft_home / "registry"
    staged = release.stage(root, TASK, base, adapter, _export(tmp_path / "export"), smoke_examples=1)
    path = release.publish(root, TASK.name, staged, lineage_of(staged), trained_on={"trained_on": []})
    log = ft_home / "audit" / "erasures.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(json.dumps({"request_id": "req-1", "at": "2026-12-02T09:00:00+00:00", "records_erased": 2,
                               "models_marked": ["smoke/v1"], "models_retired": []}) + "\n"
                   + json.dumps({"request_id": "req-2", "at": "2026-12-03T09:00:00+00:00", "records_erased": 1,
                                 "models_marked": ["other/v4"], "models_retired": []}) + "\n")
    return path


def bundle(tmp_path, out="bundle", *extra) -> tuple:
    assert main(["evidence", "--name", "smoke", "--version", "v1", "--out", str(tmp_path / out), *extra]) == 0
    return tmp_path / out / "smoke-v1", tmp_path / out / "smoke-v1.zip"


def test_the_bundle_validates_and_fills_every_annex_iv_section(promoted, tmp_path, capsys):
    folder, archive = bundle(tmp_path)
    manifest = evidence.verify(folder)
    evidence.validate_manifest(manifest)
    assert [s["heading"][:2] for s in manifest["annex_iv"]] == [f"{i}." for i in range(1, 10)]
    assert all(s["status"] == "filled" or len(s["reason"]) > 20 for s in manifest["annex_iv"])
    sheet = json.loads((folder / "datasheet.json").read_text())
    assert sheet["sources"][0]["files_sha256"] == {"tickets.jsonl": "b" * 64}
    assert sheet["redaction"]["entities_redacted"] == {"EMAIL_ADDRESS": 41, "PERSON": 120}
    assert sheet["quarantine_reasons"] == {"confidential_marker": 2, "secret": 1}
    assert sheet["label_gate"][0]["passed"] and sheet["bias_audit"]["verdict"] == "within_bounds"
    compute = manifest["compute"]
    assert compute["flops"] == 6 * 134_515_008 * 1_200_000 and compute["gpai_provider"] == "no"
    assert compute["ratio"] == pytest.approx(compute["flops"] / (6 * 135e6 * 2e12))
    assert manifest["privacy"]["epsilon"] == 7.9 and manifest["memorization"]["outcome"] == "clean"
    assert "interval 0.12–0.30" in (folder / "gates.md").read_text()
    assert "spent ε = 7.90" in (folder / "model_card.md").read_text()
    # the run's epsilon and the data's total with its pilots, in the manifest and the card
    assert manifest["privacy_total"]["epsilon"] == pytest.approx(3 * 7.9) and manifest["privacy_total"]["runs"] == 3
    assert "pilot run(s): ε = 23.70 (7.90 + 7.90 + 7.90, basic composition)" in (folder / "model_card.md").read_text()
    ledger = [json.loads(line) for line in (folder / "erasure_ledger.jsonl").read_text().splitlines()]
    assert [e["request_id"] for e in ledger] == ["req-1"]
    with zipfile.ZipFile(archive) as zf:
        assert zf.namelist() == sorted(zf.namelist()) and "smoke-v1/manifest.json" in zf.namelist()
    with pytest.raises(evidence.EvidenceError, match="compute"):
        evidence.validate_manifest({**manifest, "compute": {**compute, "gpai_provider": "maybe"}})


def test_an_unknown_base_model_gets_an_unknown_verdict_with_its_reason():
    from ft_pipeline.core.release.evidence_sections import compute

    verdict = compute({"training": {"base_model": "acme/secret-7b", "total_params": 7e9, "train_tokens": 1e6}}, ".")
    assert verdict["gpai_provider"] == "unknown" and "not in the table" in verdict["verdict"]


def test_regenerating_gives_byte_identical_output(promoted, tmp_path):
    first, first_zip = bundle(tmp_path, "one")
    second, second_zip = bundle(tmp_path, "two")
    assert first_zip.read_bytes() == second_zip.read_bytes()
    assert {p.name: p.read_bytes() for p in first.iterdir()} == {p.name: p.read_bytes() for p in second.iterdir()}
    bundle(tmp_path, "one")  # written again over itself: the same bytes
    assert first_zip.read_bytes() == second_zip.read_bytes()


@pytest.mark.parametrize("line", [1, 3, "last"])
def test_an_edited_run_log_line_is_found_by_its_number(promoted, tmp_path, capsys, line):
    folder, _ = bundle(tmp_path)
    log = folder / "run_log.jsonl"
    lines = log.read_text().splitlines()
    n = len(lines) if line == "last" else line
    entry = json.loads(lines[n - 1])
    entry["passed" if entry["event"] == "check" else "run_id"] = "tampered"
    lines[n - 1] = json.dumps(entry, sort_keys=True)
    log.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["evidence", "--verify", str(folder)]) == 1
    assert f"run_log.jsonl line {n}: edited" in capsys.readouterr().out


def test_the_run_log_chains_every_line_to_the_one_before(promoted, tmp_path):
    folder, _ = bundle(tmp_path)
    lines = (folder / "run_log.jsonl").read_bytes().splitlines()
    import hashlib

    assert json.loads(lines[0])["prev_sha256"] == "0" * 64
    for before, line in zip(lines, lines[1:]):
        assert json.loads(line)["prev_sha256"] == hashlib.sha256(before).hexdigest()
    events = [json.loads(line)["event"] for line in lines]
    assert events.count("promotion") == 1 and events[-1] == "erasure"


@pytest.mark.parametrize("argv, says", [
    (["--name", "smoke", "--version", "v9"], "no version 'v9'"),
    (["--name", "nope"], "no current version"),
    (["--name", "smoke", "--version", "latest"], "not a registry version"),
    (["--verify", "/nonexistent/bundle"], "not an evidence bundle folder"),
])
def test_user_mistakes_exit_2_with_one_line(promoted, argv, says, capsys):
    assert main(["evidence", *argv]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err


def test_out_that_is_a_file_is_a_user_mistake(promoted, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["evidence", "--name", "smoke", "--out", str(tmp_path / "file")]) == 2
    assert "not a folder" in capsys.readouterr().err
