"""After an erasure and a retrain, the erased records are as unknown to the model as records it
never saw: secret canaries go into the training data as customers' records (raw ids in the raw
zone, keyed digests in the export, as redaction writes them), the tiny Llama memorizes them, `forget`
erases them by id, the adapter is retrained on what is left with the same seed and steps, and the
memorization gate's attacks can no longer tell the erased canaries from their held-out twins."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ft_pipeline.core.data.canaries import CANARY_FILE, MemorizationConfig, make_canaries
from ft_pipeline.core.digest import keyed_digest
from ft_pipeline.core.erasure.requests import forget
from ft_pipeline.core.evaluation import memorization_gate as mg
from ft_pipeline.core.training.train import train
from ft_pipeline_tests.core.evaluation.test_memorization_gate import FAST, STEPS
from ft_pipeline_tests.core.training.helpers import tiny_config, write_export

CONFIG = MemorizationConfig(canaries=8, **FAST)


def _jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _train_and_measure(tiny_model_dir, export: Path, judge: Path, out: Path) -> dict:
    train(tiny_config(tiny_model_dir, max_steps=STEPS, per_device_batch_size=8, max_length=128,
                      learning_rate=1e-2, lora_rank=16), export, out)
    return mg.measure(tiny_model_dir, out, judge, CONFIG)


@pytest.fixture
def home_with_canary_records(ft_home, tmp_path):
    """The raw zone holds each planted canary as a customer's record; the export holds it under
    its keyed digest, repeated as often as its level says; the judge folder lists planted rows and
    twins for the attacks (canaries.jsonl, never trained on as such)."""
    rows = make_canaries(CONFIG, "erasure")
    planted = [r for r in rows if r["repetitions"]]
    raw = [{"id": f"cust-{i:03d}", "messages": r["messages"]} for i, r in enumerate(planted)]
    _jsonl(ft_home / "raw/raw_dataset/run1/records.jsonl", raw)
    export = write_export(ft_home / "data/jsonl_export/run1")
    ordinary = [json.loads(line) for line in (export / "train.jsonl").read_text().splitlines()]
    canary_rows = [{"id": keyed_digest(rec["id"]), "messages": rec["messages"]}
                   for rec, row in zip(raw, planted) for _ in range(row["repetitions"])]
    _jsonl(export / "train.jsonl", ordinary + canary_rows)
    judge = tmp_path / "judge"
    _jsonl(judge / CANARY_FILE, rows)
    return {"export": export, "judge": judge, "ids": [r["id"] for r in raw], "ordinary": len(ordinary)}


def test_erased_canaries_are_indistinguishable_from_their_twins_after_a_retrain(
        home_with_canary_records, tiny_model_dir, tmp_path):
    setup = home_with_canary_records
    before = _train_and_measure(tiny_model_dir, setup["export"], setup["judge"], tmp_path / "v1")
    assert mg.verdict(before, CONFIG)[1] == "memorized"  # the attack works: the test is not vacuous
    # ... and clearly: the loss attack's AUC interval lies well above chance (16 planted against 16
    # twins, so its lower end moves with the training order; 0.79 to 0.9 seen).
    assert before["attacks"]["loss"]["auc_low"] > 0.65

    [summary] = forget(ids=setup["ids"])
    assert summary["records_erased"] == len(setup["ids"])
    left = [json.loads(line) for line in (setup["export"] / "train.jsonl").read_text().splitlines()]
    assert len(left) == setup["ordinary"]  # every repetition of every canary left the export

    after = _train_and_measure(tiny_model_dir, setup["export"], setup["judge"], tmp_path / "v2")
    for name, attack in after["attacks"].items():  # no attack tells erased canaries from twins
        assert attack["auc_low"] < 0.5 < attack["auc_high"] or abs(attack["auc"] - 0.5) < 0.15, (name, attack)
    top, twins = after["exposure"]["10x"]["mean_exposure"], after["exposure"]["twins"]["mean_exposure"]
    assert top < CONFIG.max_exposure and abs(top - twins) < 1.5, after["exposure"]
    assert mg.verdict(after, CONFIG)[1] != "memorized"
