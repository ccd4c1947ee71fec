import json

import pytest

from ft_pipeline.core.release import audit, model_card, registry


def stage(root, name, marker):
    path = registry.staging_dir(root, name)
    (path / "weights.txt").write_text(marker)
    return path


def test_publish_versions_and_current_pointer(tmp_path):
    assert registry.publish(tmp_path, "m", stage(tmp_path, "m", "one")) == "v1"
    assert registry.publish(tmp_path, "m", stage(tmp_path, "m", "two")) == "v2"
    assert registry.versions(tmp_path, "m") == ["v1", "v2"]
    assert registry.current_version(tmp_path, "m") == "v2"
    assert (registry.resolve(tmp_path, "m") / "weights.txt").read_text() == "two"


def test_rollback_moves_pointer_back_and_forth(tmp_path):
    for marker in ("one", "two", "three"):
        registry.publish(tmp_path, "m", stage(tmp_path, "m", marker))
    assert registry.rollback(tmp_path, "m") == ("v3", "v2")
    assert (registry.resolve(tmp_path, "m") / "weights.txt").read_text() == "two"
    assert registry.rollback(tmp_path, "m", "v3") == ("v2", "v3")
    assert registry.current_version(tmp_path, "m") == "v3"


@pytest.mark.parametrize("setup, to", [(0, None), (1, None), (2, "v9")])
def test_rollback_errors_are_user_errors(tmp_path, setup, to):
    for i in range(setup):
        registry.publish(tmp_path, "m", stage(tmp_path, "m", str(i)))
    with pytest.raises(registry.RegistryError):
        registry.rollback(tmp_path, "m", to)


LINEAGE = {
    "name": "m", "version": "v1", "promoted_at": "2026-11-28T12:00:00+00:00", "run_id": "run-1", "code_version": "abc",
    "assets": [{"asset": "raw_dataset", "materialized": True, "run_id": "run-0", "timestamp": "t", "code_version": "1",
                "sha256": "f" * 64, "config": {"source": "x.jsonl"},
                "metadata": {"source_sha256": {"x.jsonl": "e" * 64}}}],
    "checks": [{"check": "labels_are_verified", "asset": "redacted_dataset", "blocking": True, "passed": True,
                "status": "SUCCEEDED", "run_id": "run-0"}],
    "training": {"base_model": "b", "method": "sft", "lora_r": 16, "lora_alpha": 32, "steps": 10, "final_loss": 0.5},
    "evaluation": {"variants": {"tuned": {"exact_match": 0.9, "json_valid": 1.0, "rouge_l": 0.95}}},
    "erasures": [{"at": "t2", "request_id": "req-1", "training_records_erased": 2, "retired_at": None,
                  "files_rewritten": 9, "records_erased": 2, "models_marked": 1}],
}


def test_audit_renders_trail_to_raw_file_hash():
    md = audit.render(LINEAGE, "md")
    assert "e" * 64 in md and "labels_are_verified" in md
    assert "| `req-1` | t2 | 2 | 9 / 2 / 1 | kept |" in md
    assert json.loads(audit.render(LINEAGE, "json"))["assets"][0]["sha256"] == "f" * 64


def test_model_card_has_data_hashes_gates_and_eval():
    card = model_card.render(LINEAGE)
    assert "ffffffffffffffff" in card and "labels_are_verified | redacted_dataset | passed" in card
    assert "| tuned | 0.900 |" in card
    assert "- Differential privacy: none" in card


def test_model_card_states_the_privacy_spent_by_a_dp_run():
    privacy = {"dp": True, "epsilon": 7.9957, "delta": 0.0026, "target_epsilon": 8.0, "max_grad_norm": 1.0,
               "noise_multiplier": 0.612, "steps": 48, "sample_rate": 0.0104, "sampling": "poisson",
               "privacy_unit": "one training example (conversation)"}
    card = model_card.render({**LINEAGE, "training": {**LINEAGE["training"], "privacy": privacy}})
    assert ("- Differential privacy: DP-SGD (Opacus), spent ε = 8.00 at δ = 0.0026 (target ε 8), per-example clip "
            "norm 1, noise multiplier 0.612, 48 steps at sampling rate 0.0104 (poisson)") in card
