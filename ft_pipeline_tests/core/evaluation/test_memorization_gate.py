"""The memorization gate (gates.memorization): planted canaries, the attacks' statistics against
scikit-learn, and the gate on the tiny Llama both ways: it fails a run that memorized its canaries
and passes canaries the same model never saw."""
import dataclasses
import json
import shutil

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from ft_pipeline.core.data.canaries import (MemorizationConfig, make_canaries, planted_chats, read_canaries,
                                            write_canaries)
from ft_pipeline.core.evaluation import memorization_gate as mg
from ft_pipeline.core.evaluation.gates import EvalEvidence, GateConfig, release_gates
from ft_pipeline.core.task import TaskConfig, TaskError
from ft_pipeline_tests.core.training.helpers import tiny_config, tiny_task, write_export

# What the tiny model needs to memorize 8 canaries at 10x (measured: 120 steps of 8 rows, ~15 s on
# one core; 10x exposure reaches its 6-bit ceiling, 1x ~2-3 bits, twins ~1 bit).
STEPS, FAST = 120, {"references": 63, "exposure_canaries": 8}


# --- statistics against scikit-learn -------------------------------------------------------

def sklearn_tpr(members, others, target=0.01):
    labels = np.r_[np.ones(len(members)), np.zeros(len(others))]
    fpr, tpr, _ = roc_curve(labels, np.r_[members, others], drop_intermediate=False)
    return float(tpr[fpr <= target].max())


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_out", [50, 100, 250])
def test_vectorized_auc_and_tpr_match_scikit_learn_with_ties(seed, n_out):
    rng = np.random.default_rng(seed)
    members = rng.integers(0, 30, (20, 80)).astype(float)  # many ties
    others = rng.integers(-5, 25, (20, n_out)).astype(float)
    labels = np.r_[np.ones(80), np.zeros(n_out)]
    expected_auc = [roc_auc_score(labels, np.r_[m, o]) for m, o in zip(members, others)]
    np.testing.assert_allclose(mg._auc_rows(members, others), expected_auc)
    for target in (0.01, 0.05, 0.2):
        assert list(mg._tpr_rows(members, others, target)) == [sklearn_tpr(m, o, target) for m, o in zip(members, others)]


def test_tpr_at_fpr_on_a_known_roc():
    # 200 non-members: 1% FPR admits 2 of them; members above the third-highest non-member count.
    others = np.arange(200.0)  # highest: 199, 198, 197
    members = np.array([300, 250, 198.5, 197.5, 197, 10])
    labels = np.r_[np.ones(6), np.zeros(200)]
    assert mg.tpr_at_fpr(labels, np.r_[members, others]) == pytest.approx(4 / 6)
    assert mg._tpr_rows(members[None], others[None], 0.01)[0] == pytest.approx(4 / 6)


def test_the_interval_brackets_the_estimate_and_separates_leaks_from_chance():
    rng = np.random.default_rng(0)
    chance = mg.attack_summary(rng.normal(size=1000), rng.normal(size=1000), n_boot=500)
    leak = mg.attack_summary(rng.normal(3, 1, 1000), rng.normal(size=1000), n_boot=500)
    for a in (chance, leak):
        assert a["tpr_low"] <= a["tpr_at_1pct_fpr"] <= a["tpr_high"] and a["auc_low"] <= a["auc"] <= a["auc_high"]
    assert chance["tpr_high"] < 0.03 and chance["auc_low"] < 0.5 < chance["auc_high"]
    assert leak["tpr_low"] > 0.3 and leak["auc_low"] > 0.9
    # few non-members cannot bound a 1% FPR: the interval says so
    small = mg.attack_summary(rng.normal(size=16), rng.normal(size=16), n_boot=500)
    assert small["tpr_high"] > 0.03


# --- the verdict ---------------------------------------------------------------------------

def result(tpr=0.01, low=0.0, high=0.02, exposure=1.4):
    attack = {"auc": 0.5, "auc_low": 0.45, "auc_high": 0.55, "tpr_at_1pct_fpr": tpr, "tpr_low": low,
              "tpr_high": high, "members": 1000, "nonmembers": 1000}
    level = {"canaries": 8, "mean_exposure": exposure, "max_exposure": exposure, "mean_fitted_exposure": exposure}
    return {"planted": 1000, "twins": 1000, "attacks": {"loss": attack},
            "exposure": {"1x": level, "10x": level, "twins": {**level, "mean_exposure": 1.4}}}


@pytest.mark.parametrize("measured, passed, outcome", [
    (result(), True, "clean"),
    (result(tpr=0.02, low=0.0, high=0.05), False, "cannot_rule_out"),  # the point estimate alone would pass
    (result(tpr=0.4, low=0.2, high=0.6), False, "memorized"),
    (result(exposure=5.0), False, "memorized"),  # exposed secrets, even when no attack separates
])
def test_the_gate_judges_the_upper_bound_and_the_exposure(measured, passed, outcome):
    ok, got, detail, numbers = mg.verdict(measured, MemorizationConfig())
    assert (ok, got) == (passed, outcome) and "TPR at 1% FPR" in detail and "exposure" in detail


def test_an_attack_proving_more_than_the_claimed_epsilon_flags_a_dp_bug():
    audit = {"claimed_epsilon": 2.0, "delta": 1e-3, "members": 1000, "nonmembers": 2000}
    honest = mg.verdict({**result(), "dp_audit": {**audit, "epsilon_lower_bound": 0.4}}, MemorizationConfig())
    broken = mg.verdict({**result(), "dp_audit": {**audit, "epsilon_lower_bound": 3.1}}, MemorizationConfig())
    assert honest[:2] == (True, "clean") and "prove epsilon >= 0.40 (claimed 2.00)" in honest[2]
    assert broken[:2] == (False, "dp_bound_broken")


def test_no_canaries_is_not_run_and_fails_only_when_required():
    evidence = EvalEvidence(metric="accuracy", binary=True, variants={"tuned": [1.0], "base": [0.0]})
    verdict = release_gates(evidence, GateConfig())["no_canary_memorization"]
    assert verdict.passed and verdict.outcome == "not_run"
    strict = release_gates(evidence, GateConfig(memorization={"required": True}))["no_canary_memorization"]
    assert not strict.passed and "required" in strict.detail


@pytest.mark.parametrize("section, field", [
    ({"canaries": -1}, "gates.memorization.canaries"),
    ({"repetitions": [1, 1]}, "gates.memorization.repetitions"),
    ({"max_tpr_at_1pct_fpr": 2}, "gates.memorization.max_tpr_at_1pct_fpr"),
    ({"canaries": "many"}, "gates.memorization.canaries"),
    ({"canary": 5}, "gates.memorization.canary"),
])
def test_a_bad_memorization_setting_is_named_in_the_task_file(section, field):
    with pytest.raises(TaskError) as exc:
        TaskConfig(name="t", type="classification", gates={"memorization": section})
    assert exc.value.field == field


# --- planting ------------------------------------------------------------------------------

def test_canaries_have_twins_from_one_template_and_are_planted_as_often_as_asked(tmp_path):
    config = MemorizationConfig(canaries=3, repetitions=[1, 10])
    rows = make_canaries(config, "t")
    assert rows == make_canaries(config, "t") and rows != make_canaries(config, "other")
    assert [r["repetitions"] for r in rows] == [1] * 3 + [10] * 3 + [0] * 6
    assert len({r["secret"] for r in rows}) == len({r["prefix"] for r in rows}) == 12
    task = dataclasses.replace(tiny_task(), gates={"memorization": {"canaries": 3}})
    assert write_canaries(tmp_path / "export", tmp_path / "sidecars", task) == 3 + 30
    planted = list(planted_chats(tmp_path / "export"))
    assert len(planted) == 3 + 30
    book = read_canaries(tmp_path / "sidecars")  # the bookkeeping, twins included, beside the export
    assert [r["repetitions"] for r in book] == [1] * 3 + [10] * 3 + [0] * 6 and all(r["secret"] for r in book)
    twins = {json.dumps(r["messages"]) for r in book if not r["repetitions"]}
    assert not twins & {json.dumps(p["messages"]) for p in planted}


def test_the_trainer_adds_planted_canaries_to_the_training_split(tmp_path):
    from ft_pipeline.core.training.data import data_digest, load_datasets

    export = write_export(tmp_path / "export", repeats=1)
    plain = len(load_datasets("sft", export)[0])
    digest = data_digest("sft", export)
    write_canaries(export, tmp_path / "sidecars", dataclasses.replace(tiny_task(), gates={"memorization": {"canaries": 2}}))
    assert len(load_datasets("sft", export)[0]) == plain + 2 * 1 + 2 * 10
    assert data_digest("sft", export) != digest and len(load_datasets("dpo", export)[0]) == plain


# --- both ways on the tiny Llama -----------------------------------------------------------

@pytest.fixture(scope="module")
def memorized(tiny_model_dir, tmp_path_factory):
    """A non-DP run trained until it memorized 8 canaries at 10x (and 8 at 1x)."""
    from ft_pipeline.core.training.train import train

    root = tmp_path_factory.mktemp("memorized")
    export = write_export(root / "export")
    task = dataclasses.replace(tiny_task(), gates={"memorization": {"canaries": 8, **FAST}})
    write_canaries(export, root / "sidecars", task)
    metrics = train(tiny_config(tiny_model_dir, max_steps=STEPS, per_device_batch_size=8, max_length=128,
                                learning_rate=1e-2, lora_rank=16), export, root / "adapter")
    return {"root": root, "export": export, "sidecars": root / "sidecars", "adapter": root / "adapter",
            "metrics": metrics}


def test_the_gate_fails_a_run_that_memorized_its_canaries(memorized, tiny_model_dir):
    config = MemorizationConfig(canaries=8, **FAST)
    measured = mg.measure(tiny_model_dir, memorized["adapter"], memorized["sidecars"], config)
    passed, outcome, detail, _ = mg.verdict(measured, config)
    assert not passed and outcome == "memorized", detail
    assert measured["dp_audit"] is None  # no DP claimed, nothing to audit
    assert measured["exposure"]["10x"]["mean_exposure"] > config.max_exposure > measured["exposure"]["twins"]["mean_exposure"]
    # planted canaries told apart from their twins: the loss attack's AUC interval well above chance
    # (16 against 16, so its lower end moves with the training order: 0.71 to 0.9 seen)
    assert measured["attacks"]["loss"]["auc_low"] > 0.65


def test_the_gate_passes_canaries_the_same_run_never_saw(memorized, tiny_model_dir, tmp_path):
    # The same adapter, judged on 1,000 canaries per level (and 2,000 twins) it was not trained on.
    # With 1,000 of each, unseen canaries sat on the bound (TPR at 1% FPR 0.020, interval up to
    # 0.032, for the strongest of three attacks): the null's sampling noise alone crossed 3% there.
    # Twice as many halve the variance: the bound sits ~4 standard errors above the null's TPR.
    unseen = tmp_path / "unseen"
    shutil.copytree(memorized["export"], unseen)
    task = dataclasses.replace(tiny_task(), gates={"memorization": {"canaries": 1000, "seed": 1, **FAST}})
    write_canaries(unseen, tmp_path / "sidecars", task)
    config = MemorizationConfig.of_task(task)
    measured = mg.measure(tiny_model_dir, memorized["adapter"], tmp_path / "sidecars", config)
    passed, outcome, detail, _ = mg.verdict(measured, config)
    assert passed and outcome == "clean", detail
    assert measured["planted"] == measured["twins"] == 2000


def test_a_dp_run_does_not_memorize_canaries_seen_once(tiny_model_dir, tmp_path):
    # DP's unit is one training example, so the canaries here are planted once each. Measured with
    # the same settings without DP (bench/RESULTS.md): AUC 0.91, TPR at 1% FPR 0.56, `memorized`.
    # 32 canaries cannot bound TPR at 1% FPR under 3% (that takes ~1,000, the test above), so the
    # DP run is judged `cannot_rule_out`, never `memorized`, with every attack at chance.
    from ft_pipeline.core.training.train import train

    export = write_export(tmp_path / "export")
    task = dataclasses.replace(tiny_task(), gates={"memorization": {"canaries": 32, "repetitions": [1], **FAST}})
    write_canaries(export, tmp_path / "sidecars", task)
    config = MemorizationConfig.of_task(task)
    metrics = train(tiny_config(tiny_model_dir, max_steps=STEPS, per_device_batch_size=8, max_length=128,
                                learning_rate=1e-2, lora_rank=16, privacy={"dp": True, "target_epsilon": 8}),
                    export, tmp_path / "adapter")
    assert 0 < metrics["privacy"]["epsilon"] <= 8
    measured = mg.measure(tiny_model_dir, tmp_path / "adapter", tmp_path / "sidecars", config)
    passed, outcome, detail, _ = mg.verdict(measured, config)
    assert outcome == "cannot_rule_out", detail
    assert all(a["auc_low"] < 0.5 < a["auc_high"] for a in measured["attacks"].values()), measured["attacks"]
    # At the twins' level, the chance baseline (~2.4 bits on this model: 2.5 as a fixed bound sat on
    # it, and a DP run's draws landed at 2.57 once the RNG was restored for resumes).
    exposure = measured["exposure"]
    assert exposure["1x"]["mean_exposure"] < exposure["twins"]["mean_exposure"] + 0.5, exposure
    audit = measured["dp_audit"]  # the run's claimed epsilon stands: the attack proves far less
    assert audit["members"] == 32 and audit["epsilon_lower_bound"] < audit["claimed_epsilon"]
